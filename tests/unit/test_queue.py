"""The run queue: one run per device at a time, in start order, across kernel restarts."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest

import workbench as wb
from workbench.persist import read_json
from workbench.train import ConfigError, RunStatus, TrainConfig
from workbench.train.distributed import check_devices, visible_devices_env
from workbench.train.queue import QueueRepairedWarning, RunQueue
from workbench.train.run import NothingToStopWarning

FAST = {"method": "lora", "batch_size": 2, "max_steps": 2, "save_steps": 100, "logging_steps": 1}


def alive(pid: int | None) -> bool:
    """A process is alive: it exists and is no zombie (read from /proc, not the workbench)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (OSError, TypeError):
        return False


def watch_until_done(runs, timeout: float = 240) -> int:
    """Poll the runs until none is active; the most runner processes ever alive at once."""
    most, deadline = 0, time.time() + timeout
    while any(r.status.active for r in runs):
        assert time.time() < deadline, [r.status for r in runs]
        statuses = [r.folder.readable_status() for r in runs]
        assert sum(s.state == "running" for s in statuses) <= 1, statuses
        most = max(most, sum(alive(s.pid) or alive(s.worker_pid) for s in statuses))
        time.sleep(0.05)
    return most


@pytest.fixture
def loaded(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    return session


def test_three_runs_started_back_to_back_train_one_at_a_time_in_order(loaded):
    runs = [loaded.train(TrainConfig(**FAST)) for _ in range(3)]
    waiting = [(q.name, q.position) for q in loaded.queue]
    assert waiting == [(runs[1].name, 1), (runs[2].name, 2)]
    assert "#2 in line" in runs[2].status.message
    assert runs[1].name in runs[2].status.progress.waits_for  # waits for the run ahead
    assert watch_until_done(runs) <= 1  # never two runners alive at once
    statuses = [r.status for r in runs]
    assert [s.state for s in statuses] == ["finished"] * 3, [s.message for s in statuses]
    for before, after in zip(statuses, statuses[1:]):
        assert before.ended <= after.started  # each started after the one before ended
    assert loaded.queue == [] and read_json(loaded.workspace.run_queue_file)["runs"] == []


def test_stop_cancels_a_waiting_run_and_the_next_still_runs(loaded):
    first, second, third = (loaded.train(TrainConfig(**FAST)) for _ in range(3))
    assert second.status.waiting
    status = second.stop()
    assert status.state == "cancelled" and "never started" in status.message
    assert [q.name for q in loaded.queue] == [third.name]
    assert third.wait(timeout=240).state == "finished"
    assert second.status.state == "cancelled" and second.status.pid is None
    assert not second.folder.metrics_file.exists()  # it never trained
    assert first.status.state == "finished"
    with pytest.warns(NothingToStopWarning, match="already finished"):
        again = first.stop()
    assert again.state == "finished" and again.ended == first.status.ended  # no change


def test_a_kernel_restart_while_runs_wait_still_starts_them(tmp_path, tiny_model_dir, chat_rows):
    ws = tmp_path / "ws"
    kernel = f"""
        import workbench as wb
        s = wb.Session.open({str(ws)!r})
        s.set_model({str(tiny_model_dir)!r})
        s.set_max_length(64)
        s.load_dataset({chat_rows * 8!r})
        for _ in range(3):
            s.train(wb.TrainConfig(**{FAST!r}))
        print([q.name for q in s.queue])
    """  # the kernel ends while run-2 and run-3 wait
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(kernel)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "['run-2', 'run-3']" in done.stdout
    with wb.Session.open(ws) as s:  # the next kernel
        runs = s.runs
        assert [r.name for r in runs] == ["run-1", "run-2", "run-3"]
        assert watch_until_done(runs) <= 1
        assert [r.status.state for r in runs] == ["finished"] * 3


@pytest.fixture
def sleeper():
    """A live process that stands in for runners (they must look alive, yet never train)."""
    process = subprocess.Popen(["sleep", "300"])
    yield process.pid
    process.kill()
    process.wait()


def fake_start(started: list, pid: int):
    """A start that records the run and gives it a live process that does not train."""

    def start(run):
        status = run.folder.read_status()
        status.pid, status.heartbeat = pid, time.time()
        run.folder.write_status(status)
        started.append(run.name)
        return run

    return start


def prepared(session, chat_rows, n: int, **config) -> dict:
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    runs = [session.prepare(TrainConfig(**{**FAST, **config})) for _ in range(n)]
    return {r.name: r for r in runs}


def test_a_queue_file_left_by_a_crashed_kernel_is_repaired(session, chat_rows, sleeper):
    runs = prepared(session, chat_rows, 3)
    queue = RunQueue(session.workspace.run_queue_file, session.workspace.runs_dir)
    for run in runs.values():
        queue.add(run)
    started: list[str] = []
    queue.dispatch(runs, fake_start(started, sleeper))
    assert started == ["run-1"]
    session.workspace.run_queue_file.write_text('{"format": 1, "runs": [{"run": "run-')  # torn
    with pytest.warns(QueueRepairedWarning, match="run_queue.json") as told:
        queue.dispatch(runs, fake_start(started, sleeper))
    assert "cannot be read" in str(told[0].message)
    assert [(q.name, q.position) for q in queue.waiting(runs)] == [("run-2", 1), ("run-3", 2)]
    assert started == ["run-1"]  # run-1 still holds the CPU; nothing started twice
    # a kernel that started run-2 but died before rewriting the file: the folder is the truth
    runs["run-1"].folder.write_status(RunStatus("finished", ended=time.time() - 60))
    queue.dispatch(runs, fake_start(started, sleeper))
    assert started == ["run-1", "run-2"]
    session.workspace.run_queue_file.write_text(
        '{"format": 1, "runs": [{"run": "run-2", "queued_at": 0, "needs": "the CPU"}]}'
    )
    with pytest.warns(QueueRepairedWarning, match="run-2 is queued, not waiting"):
        queue.dispatch(runs, fake_start(started, sleeper))
    assert [q.name for q in queue.waiting(runs)] == ["run-3"] and started.count("run-2") == 1
    for run in runs.values():  # leave nothing that looks alive for the fixture to stop
        run.folder.write_status(RunStatus("finished"))


def test_gpus_are_shared_one_run_each_in_start_order(session, chat_rows, sleeper):
    gpus = ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    runs = prepared(session, chat_rows, 3)  # one process each, any GPU
    runs |= prepared(session, chat_rows, 1, num_processes=2)  # run-4: two GPUs
    runs |= prepared(session, chat_rows, 1, gpu=3)  # run-5: GPU 3 only
    queue = RunQueue(session.workspace.run_queue_file, session.workspace.runs_dir, lambda: gpus)
    for run in runs.values():
        queue.add(run)
    started: list[str] = []
    queue.dispatch(runs, fake_start(started, sleeper))
    assert started == ["run-1", "run-2", "run-3"]
    devices = {name: runs[name].status.devices for name in started}
    assert devices == {"run-1": ["cuda:0"], "run-2": ["cuda:1"], "run-3": ["cuda:2"]}
    place = {q.name: q for q in queue.waiting(runs)}
    assert place["run-4"].position == 1 and place["run-4"].waits_for.startswith("2 GPUs")
    assert place["run-5"].waits_for == "run-4, ahead of it in the queue"  # no overtaking
    runs["run-1"].folder.write_status(RunStatus("failed", ended=time.time() - 60))
    queue.dispatch(runs, fake_start(started, sleeper))  # a failed run frees its GPU at once
    assert started[-1] == "run-4" and runs["run-4"].status.devices == ["cuda:0", "cuda:3"]
    assert queue.waiting(runs)[0].waits_for.startswith("cuda:3")
    for run in runs.values():
        run.folder.write_status(RunStatus("finished"))


def test_a_run_sees_only_its_own_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_devices_env(["cuda:1", "cuda:2"]) == {"CUDA_VISIBLE_DEVICES": "1,2"}
    assert visible_devices_env(["cpu"]) == {}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")  # the kernel itself sees two GPUs
    assert visible_devices_env(["cuda:1"]) == {"CUDA_VISIBLE_DEVICES": "5"}


def test_gpu_choices_that_cannot_work_are_refused_at_once():
    with pytest.raises(ConfigError, match="leave gpu unset"):
        TrainConfig(gpu=1, num_processes=2)
    with pytest.raises(ConfigError, match="gpu"):
        TrainConfig(gpu=-1)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="has none"):
            check_devices(TrainConfig(gpu=0))
    else:
        with pytest.raises(ConfigError, match="lacks"):
            check_devices(TrainConfig(gpu=torch.cuda.device_count()))
    assert socket.gethostname()  # statuses compare hosts by this name


def test_a_stop_between_the_queue_claiming_a_run_and_its_start_holds(loaded, monkeypatch):
    """Stop pressed after the queue gave a run its device but before its runner began: the
    run trains no step, and resume takes it up later."""
    from workbench.train import launch

    real = launch.start_runner

    def stop_first(run, warm=None):
        run.stop(timeout=0)  # the person presses Stop at this very moment
        return real(run, warm)

    monkeypatch.setattr(launch, "start_runner", stop_first)
    run = loaded.train(TrainConfig(**FAST))
    status = run.wait(timeout=120)
    assert status.state == "cancelled", status.message + run.log_tail()
    assert not [m for m in run.metrics if "loss" in m]
    monkeypatch.setattr(launch, "start_runner", real)
    resumed = loaded.resume(run)
    assert resumed.wait(timeout=240).state == "finished", resumed.log_tail()
    assert len([m for m in resumed.metrics if "loss" in m]) == FAST["max_steps"]
