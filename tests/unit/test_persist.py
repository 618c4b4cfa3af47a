"""Crash safety of workspace files: atomic state writes and append-only logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.persist import (
    DiskFullError,
    TornLogWarning,
    append_jsonl,
    atomic_write_json,
    read_jsonl,
    staged_folder,
    whole_folder,
)

WRITER = """
import sys
from workbench.persist import atomic_write_json
path = sys.argv[1]
i = 0
print("ready", flush=True)
while True:
    i += 1
    atomic_write_json(path, {"version": i, "payload": "x" * 2_000_000})
"""


def test_sigkill_during_state_writes_leaves_a_whole_file(tmp_path):
    path = tmp_path / "session.json"
    atomic_write_json(path, {"version": 0, "payload": ""})
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = json.loads(path.read_text())  # whole: the old or a new version, never a mix
        assert state["payload"] in ("", "x" * 2_000_000)
    assert state["version"] > 0, "the writer never completed a write; the test proved nothing"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "session.json"]
    assert all(name.endswith(".tmp") for name in leftovers)


FOLDER_WRITER = """
import sys
import workbench.persist as persist
if sys.argv[2] == "two-renames":  # a file system that cannot swap two names at once
    persist._exchange = lambda a, b: False
path, i = sys.argv[1], 0
print("ready", flush=True)
while True:
    i += 1
    with persist.staged_folder(path) as staging:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (staging / name).write_text(str(i) * 1_000_000)
"""


@pytest.mark.parametrize("swap", ["exchange", "two-renames"])
def test_sigkill_while_a_folder_is_replaced_leaves_a_whole_folder(tmp_path, swap):
    """An adapter (or a saved dataset) replaced by a newer one: a kill at any moment leaves
    one whole folder to read, the old or the new, never none and never a mix."""
    path = tmp_path / "adapter"
    with staged_folder(path) as staging:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (staging / name).write_text("0")
    versions = set()
    for delay in (0.05, 0.11, 0.23, 0.37):
        command = [sys.executable, "-c", FOLDER_WRITER, str(path), swap]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        folder = whole_folder(path)
        assert folder is not None, "no adapter left"
        texts = {
            (folder / n).read_text() for n in ("adapter_config.json", "adapter_model.safetensors")
        }
        assert len(texts) == 1  # both files of one version
        versions |= texts
    assert len(versions) > 1, "the writer never replaced the folder; the test proved nothing"


def test_a_crash_between_two_renames_leaves_the_old_folder_readable(tmp_path, monkeypatch):
    import workbench.persist as persist

    path = tmp_path / "adapter"
    with staged_folder(path) as staging:
        (staging / "weights").write_text("old")
    monkeypatch.setattr(persist, "_exchange", lambda a, b: False)
    real = os.replace

    def crash_on_the_second(src, dst):
        if not crash_on_the_second.calls:
            crash_on_the_second.calls += 1
            return real(src, dst)
        raise KeyboardInterrupt  # as an interrupt between the two renames

    crash_on_the_second.calls = 0
    monkeypatch.setattr(persist.os, "replace", crash_on_the_second)
    with pytest.raises(KeyboardInterrupt), staged_folder(path) as staging:
        (staging / "weights").write_text("new")
    monkeypatch.setattr(persist.os, "replace", real)
    assert (whole_folder(path) / "weights").read_text() == "old"
    with staged_folder(path) as staging:  # the next write tidies up
        (staging / "weights").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    assert (whole_folder(path) / "weights").read_text() == "new"


def test_torn_jsonl_tail_is_skipped_with_a_warning(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1})
    append_jsonl(log, {"n": 2})
    with open(log, "ab") as f:
        f.write(b'{"n": 3, "half')  # a power cut mid-append
    with pytest.warns(TornLogWarning):
        assert read_jsonl(log) == [{"n": 1}, {"n": 2}]


def test_append_after_a_torn_tail_keeps_every_whole_record(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1})
    with open(log, "ab") as f:
        f.write(b'{"n": 2, "ha')
    with pytest.warns(TornLogWarning):
        append_jsonl(log, {"n": 3})
    assert read_jsonl(log) == [{"n": 1}, {"n": 3}]


def test_a_broken_line_in_the_middle_is_an_error_naming_the_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"n": 1}\nnot json\n{"n": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(log)


def test_missing_log_reads_as_empty(tmp_path):
    assert read_jsonl(tmp_path / "absent.jsonl") == []


def test_a_state_write_without_room_keeps_the_old_file_and_says_so(tmp_path, file_size_limit):
    """A full disk (here: a file-size limit) refuses the new version; the old one is intact, no
    temporary file is left, and the error names the file, the free space and what to do."""
    path = tmp_path / "session.json"
    atomic_write_json(path, {"version": 1})
    before = path.read_bytes()
    with file_size_limit(64), pytest.raises(DiskFullError) as caught:
        atomic_write_json(path, {"version": 2, "payload": "x" * 200})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.json"]
    assert str(path) in str(caught.value) and "free on its disk" in str(caught.value)
    assert "clean_checkpoints()" in str(caught.value)


def test_an_append_without_room_leaves_no_half_record(tmp_path, file_size_limit):
    """A record that does not fit is not written at all: the log keeps every whole record and
    takes the next append cleanly once there is room."""
    path = tmp_path / "edits.jsonl"
    append_jsonl(path, {"n": 1})
    before = path.read_bytes()
    with file_size_limit(len(before) + 10), pytest.raises(DiskFullError):
        append_jsonl(path, {"n": 2, "text": "y" * 100})  # 10 bytes fit: they must not stay
    assert path.read_bytes() == before
    append_jsonl(path, {"n": 3})
    assert [r["n"] for r in read_jsonl(path)] == [1, 3]
