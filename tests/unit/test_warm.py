"""The warm runner (workbench/train/warm.py): a runner process waiting, imports done, for Start."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import workbench as wb
from tests.conftest import wait_for


@pytest.fixture
def warm_session(session, chat_rows, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WARM_RUNNER", "1")
    session.load_dataset(chat_rows * 8)
    return session


def small_config(steps: int = 2) -> wb.TrainConfig:
    return wb.TrainConfig(method="lora", max_steps=steps, batch_size=2, max_length=64)


def test_the_next_run_is_trained_by_the_waiting_process(warm_session):
    assert warm_session.warm_runner()
    warm = warm_session._warm
    assert warm_session.warm_runner() and warm_session._warm is warm  # one at a time
    wait_for(lambda: warm.ready, timeout=120, what="the warm runner's imports")
    environ = Path(f"/proc/{warm.process.pid}/environ").read_bytes().split(b"\0")
    assert b"THP_MEM_ALLOC_ENABLE=1" in environ  # started as a cold runner would be
    run = warm_session.train(small_config())
    assert run.status.pid == warm.process.pid
    assert not warm_session.warm_runner()  # none while a run trains: it would slow the run
    status = run.wait(timeout=240)
    assert status.state == "finished", status.message + run.log_tail()
    assert run.adapter_path is not None and len([m for m in run.metrics if "loss" in m]) == 2
    log = run.folder.log_file.read_text()  # what it printed before and after it took the run
    assert log.index("warm runner ready") < log.index("[workbench] lora run run-1")
    assert not warm.early_log.exists()
    assert warm_session.warm_runner() and warm_session._warm is not warm  # ready for the next


def test_an_unused_warm_runner_ends_with_its_session(warm_session):
    assert warm_session.warm_runner()
    warm = warm_session._warm
    warm_session.close()
    assert warm.process.poll() is not None and not warm.early_log.exists()


def test_a_run_needing_another_environment_starts_cold(warm_session, monkeypatch):
    warm_session.warm_runner()
    warm = warm_session._warm
    monkeypatch.setenv("WORKBENCH_TEST_CHANGED", "1")  # e.g. a token set after the launcher showed
    run = warm_session.train(small_config())
    assert run.status.pid != warm.process.pid and warm.alive  # still waits for a run like it
    assert run.wait(timeout=240).state == "finished", run.log_tail()


def test_a_warm_runner_that_died_is_replaced_by_a_cold_start(warm_session):
    warm_session.warm_runner()
    warm = warm_session._warm
    os.kill(warm.process.pid, signal.SIGKILL)
    wait_for(lambda: warm.process.poll() is not None, timeout=30, what="the warm runner to die")
    run = warm_session.train(small_config())
    assert run.status.pid != warm.process.pid
    assert run.wait(timeout=240).state == "finished", run.log_tail()


def test_none_starts_when_turned_off_or_read_only(warm_session, monkeypatch):
    with wb.Session.open(warm_session.path, read_only=True) as looking:
        assert not looking.warm_runner()
    monkeypatch.setenv("WORKBENCH_WARM_RUNNER", "0")
    assert not warm_session.warm_runner() and warm_session._warm is None


def test_a_run_on_a_gpu_is_trained_by_the_waiting_process(warm_session, monkeypatch):
    """On a GPU machine (Colab) the warm runner is started seeing the GPU the queue will give
    the next run, so it takes that run. The CPU build ignores CUDA_VISIBLE_DEVICES and trains."""
    import workbench.train.queue as queue

    monkeypatch.setattr(queue, "machine_devices", lambda: ["cuda:0"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert warm_session.warm_runner()
    warm = warm_session._warm
    environ = Path(f"/proc/{warm.process.pid}/environ").read_bytes().split(b"\0")
    assert b"CUDA_VISIBLE_DEVICES=0" in environ
    run = warm_session.train(small_config())
    assert run.status.devices == ["cuda:0"] and run.status.pid == warm.process.pid
    assert run.wait(timeout=240).state == "finished", run.log_tail()


def test_the_warm_runner_sees_the_gpu_no_run_holds(tmp_path):
    """With cuda:0 held by a running run, the next one-process run (and so the warm runner)
    gets cuda:1; with both held, none."""
    from workbench.train.queue import RunQueue

    class Held:
        def __init__(self, devices):
            self.name = "run-x"
            self.status = wb.train.RunStatus("running", devices=devices)
            self.process_alive = True

    queue = RunQueue(tmp_path / "queue.json", tmp_path, devices=lambda: ["cuda:0", "cuda:1"])
    assert queue.next_devices({}) == ["cuda:0"]
    assert queue.next_devices({"run-x": Held(["cuda:0"])}) == ["cuda:1"]
    assert queue.next_devices({"run-x": Held(["cuda:0", "cuda:1"])}) == []
