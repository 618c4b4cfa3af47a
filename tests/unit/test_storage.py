"""The workspace's disk: a full one is said plainly and loses nothing; its room can be freed."""

from __future__ import annotations

import subprocess

import pytest

import workbench as wb
from tests.conftest import wait_for
from workbench.resources import folder_bytes
from workbench.train import TrainConfig
from workbench.train.estimate import GB, disk_bytes
from workbench.train.folder import checkpoint_complete

SAVED = ("session.json", "edits.jsonl", "preferences.jsonl")


@pytest.fixture
def small_disk(tmp_path):
    """A 160 MB filesystem of its own (tmpfs): it can really fill up. Needs root to mount."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the file-size-limit tests cover the same code")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk, leave: int = 0):
    """Write a ballast file until only about `leave` bytes are free on `disk`; returns its path."""
    import shutil

    ballast = disk / "ballast.bin"
    with open(ballast, "ab", buffering=0) as f:
        while (free := shutil.disk_usage(disk).free) > leave:
            try:
                f.write(b"\1" * min(free - leave, 1 << 20))
            except OSError:
                break
    return ballast


def _workspace_with_state(path, model_dir, rows):
    s = wb.Session.open(path)
    s.set_model(str(model_dir))
    s.load_dataset(rows * 8)
    s.flag(1, "typo")
    s.record_vote([{"role": "user", "content": "2+2?"}], ("base", "4"), ("tuned", "5"), "A")
    return s, {name: (path / name).read_bytes() for name in SAVED}


def test_a_run_that_fills_the_disk_fails_with_the_cause_and_nothing_saved_is_lost(
    small_disk, tiny_model_dir, chat_rows
):
    ws = small_disk / "ws"
    s, saved = _workspace_with_state(ws, tiny_model_dir, chat_rows)
    run = s.train(TrainConfig(method="lora", batch_size=2, max_steps=500, save_steps=1))
    saved = {name: (ws / name).read_bytes() for name in SAVED}  # session.json names the new run
    wait_for(lambda: run.status.step >= 2 or not run.status.active, timeout=240, what="step 2")
    ballast = fill(small_disk)
    status = wait_for(
        lambda: run.status if not run.status.active else None, timeout=240, what="the run to end"
    )
    assert status.state == "failed", (status.state, status.message)
    assert "no space left" in status.message and str(run.path) in status.message
    assert "free on the disk" in status.message
    assert all(checkpoint_complete(p) for p in run.folder.checkpoints())  # no half-written one
    s.close()
    fill(small_disk)  # the room the runner kept for its last word is taken again

    with pytest.warns(wb.WorkspaceWarning, match="open read-only") as told:
        s = wb.Session.open(ws)
    reason = str(told[0].message)
    assert "no space left on device" in reason and "of which checkpoints" in reason
    assert "free of" in reason and "clean_checkpoints()" in reason
    assert s.read_only and s.run(run.name).status.state == "failed"
    with pytest.raises(wb.ReadOnlyError, match="open read-only"):
        s.flag(2)
    assert {name: (ws / name).read_bytes() for name in SAVED} == saved

    assert s.clean_checkpoints() == 0  # a failed run resumes from its checkpoints: kept
    ballast.unlink()
    s.clean_checkpoints()  # room again: the workspace becomes writable
    assert not s.read_only
    s.flag(2, "after")
    assert len(s.preferences) == 1
    s.close()


def test_the_estimate_refuses_a_run_that_cannot_fit_on_the_disk(
    small_disk, tiny_model_dir, chat_rows
):
    s, _ = _workspace_with_state(small_disk / "ws", tiny_model_dir, chat_rows)
    config = TrainConfig(method="lora", lora_r=64, max_steps=30, save_steps=10)
    need = s.estimate(config).disk_gb
    assert need > 0.5 / 1024  # rank 64: over half a megabyte of adapter and Adam moments
    fill(small_disk, leave=int(need * GB / 2))
    assert "nearly full" in s.workspace.low_disk_warning()  # what Session.open warns with
    estimate = s.estimate(config)
    assert not estimate.disk_fits and estimate.disk_free_gb < need
    assert "will not fit on the disk" in estimate.warning and "MB free" in estimate.warning
    with pytest.raises(wb.DiskFullError, match="Not started"):
        s.train(config)
    assert not s.runs  # nothing was written
    s.close()


def test_clean_checkpoints_frees_a_finished_runs_room_and_keeps_its_adapter(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    config = TrainConfig(method="lora", batch_size=2, max_steps=4, save_steps=2)
    run = session.train(config)
    assert run.wait(timeout=240).state == "finished"
    checkpoint = folder_bytes(run.folder.last_checkpoint())
    adapter = folder_bytes(run.folder.adapter_dir)
    # the estimate's figure for one checkpoint and the adapter holds against what was written
    lora_params = session.estimate(config).lora_gb * GB / 4
    one = disk_bytes(int(lora_params), TrainConfig(max_steps=1, save_steps=1), 0, 0)
    assert 0.5 < one / (checkpoint + adapter) < 2, (one, checkpoint, adapter)

    assert session.clean_checkpoints() >= checkpoint
    assert not run.folder.checkpoints() and run.name in session.adapters
    assert (run.folder.adapter_dir / "adapter_model.safetensors").exists()


def test_a_workspace_that_cannot_be_written_opens_read_only_and_says_why(
    tmp_path, chat_rows, file_size_limit
):
    """Without root: a file-size limit of 0 bytes refuses every write, as a full disk does."""
    ws = tmp_path / "ws"
    s = wb.Session.open(ws)
    s.load_dataset(chat_rows)
    s.close()
    with file_size_limit(0), pytest.warns(wb.WorkspaceWarning, match="file too large"):
        s = wb.Session.open(ws)
    assert s.read_only and "runs 0 B" in s.workspace.read_only_reason
    assert len(s.dataset) == len(chat_rows)  # everything can still be looked at
    s.clean_checkpoints()
    assert not s.read_only  # the limit is gone: writable again
    s.close()
