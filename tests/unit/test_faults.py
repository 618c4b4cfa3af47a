"""Why a run ended badly, in plain words: each way a full disk or lost memory shows up."""

from __future__ import annotations

import errno
import signal

import pytest

from workbench.train.faults import death_message, explain_failure, write_failure

SAFETENSORS = (
    "SafetensorError: Error while serializing: IoError(No space left on device (os error 28))"
)
TORCH = "RuntimeError: [enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed"  # noqa: E501


def _chained() -> RuntimeError:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/ws/runs/r/metrics.jsonl")
        except OSError as inner:
            raise RuntimeError("callback failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "error, cause, file",
    [
        (OSError(errno.ENOSPC, "No space left", "/ws/a.bin"), "no space left", "/ws/a.bin"),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "/q"), "disk quota exceeded", "/q"),
        (OSError(errno.EFBIG, "File too large", "/f"), "file too large (a file-size limit)", "/f"),
        (_chained(), "no space left", "/ws/runs/r/metrics.jsonl"),
        (RuntimeError(SAFETENSORS), "no space left", ""),
        (RuntimeError(TORCH), "a write failed (the disk may be full)", ""),
    ],
    ids=["ENOSPC", "EDQUOT", "EFBIG", "chained cause", "safetensors", "torch.save"],
)
def test_every_shape_of_a_failed_write_is_recognised(error, cause, file):
    assert write_failure(error) == (cause, file)


@pytest.mark.parametrize(
    "error", [ValueError("bad value"), OSError(errno.ENOENT, "missing", "/x"), KeyError("k")]
)
def test_other_errors_are_not_taken_for_a_full_disk(error):
    assert write_failure(error) is None


def test_a_full_disk_failure_names_the_file_the_free_space_and_what_to_do(tmp_path):
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoint-4"))
    message = explain_failure(error, tmp_path)
    assert "no space left" in message and str(tmp_path / "checkpoint-4") in message
    assert "free on the disk of" in message and "clean_checkpoints()" in message
    assert "resume" in message


def test_gpu_out_of_memory_says_which_settings_to_lower(tmp_path):
    message = explain_failure(RuntimeError("CUDA out of memory. Tried to allocate"), tmp_path)
    assert "GPU ran out of memory" in message and "batch_size" in message


@pytest.mark.parametrize(
    "log, exit_code, oom_kills, expected",
    [
        ("OSError: [Errno 28] No space left on device: 'x'", None, (None, None), "no space left"),
        ("loading weights...", -signal.SIGKILL, (3, 4), "out-of-memory killer"),
        ("loading weights...", -signal.SIGKILL, (3, 3), "killed (SIGKILL)"),
        ("loading weights...", -signal.SIGKILL, (None, None), "killed (SIGKILL)"),
        ("", 1, (0, 0), "exit code 1) before it could write its status"),
        ("loading weights...", None, (0, 0), "ended without a word"),
    ],
    ids=[
        "disk, from the log",
        "oom killer",
        "kill, no oom",
        "kill, system silent",
        "error exit",
        "unknown",
    ],
)
def test_a_runner_that_ended_without_a_status_is_told_apart(
    tmp_path, log, exit_code, oom_kills, expected
):
    message = death_message(log, exit_code, oom_kills, tmp_path)
    assert expected in message
    if "memory" in expected or "SIGKILL" in expected:
        assert "batch_size" in message  # which settings to lower
