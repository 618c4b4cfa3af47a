"""Training runs: config checks, batching without cross-contamination, stop, resume, death."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

import workbench as wb
from tests.conftest import wait_for
from workbench.train import ConfigError, RunStatus, TrainConfig, TrainingDataError
from workbench.train.launch import resume_refusal
from workbench.train.runner.collate import FlatCollator, PaddedCollator, TokenCounter, pack_rows


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"method": "full"}, "method"),
        ({"max_steps": 0}, "max_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 5.0}, "learning_rate"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
        ({"batching": "zigzag"}, "batching"),
    ],
)
def test_bad_config_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**changes)


def test_config_round_trips_through_json_and_refuses_typos():
    config = TrainConfig(method="lora", max_steps=30, lora_r=8, target_modules=["q_proj"])
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ConfigError, match="learnig_rate"):
        TrainConfig.from_json({"learnig_rate": 1e-4})


def test_resolved_defaults_say_why(session):
    planned = session.plan(TrainConfig(max_steps=10))
    assert planned.learning_rate == 1e-3 and "1B" in planned.reasons["learning_rate"]
    assert planned.max_length == session.max_length
    assert planned.gradient_checkpointing is False


def test_prepare_plans_and_writes_the_run_without_starting_it(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    run = session.prepare(TrainConfig(max_steps=3))
    config = run.config
    assert config.unplanned == [] and config.max_steps == 3
    assert config.method == "lora" and "CPU" in config.reasons["method"]  # planned here
    status = run.folder.read_status()
    assert status.state == "prepared" and status.pid is None  # nothing started
    assert not run.status.active  # so no watcher polls it
    assert [r.name for r in session.runs] == [run.name]


def test_the_run_watcher_announces_each_state_and_step(session, chat_rows, monkeypatch):
    from workbench.train import launch

    monkeypatch.setattr(
        launch, "start_runner", lambda run, warm=None: run
    )  # the "runner" is this test
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    heard = []
    session.observe(
        lambda change: heard.append((change.new.status.state, change.new.status.step)), "runs"
    )
    run = session.train(TrainConfig(max_steps=3))
    for step in (1, 2):
        run.folder.write_status(RunStatus("running", step=step, heartbeat=time.time()))
        wait_for(lambda step=step: ("running", step) in heard, timeout=10)
    run.folder.write_status(RunStatus("finished", step=3))
    wait_for(lambda: ("finished", 3) in heard, timeout=10)
    wait_for(lambda: not session._watcher.running, timeout=10)  # no active run: it ends


def test_packed_rows_never_attend_across_rows(tiny_model_dir):
    """The logits of rows laid end to end equal those of each row alone."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.config.use_cache = False
    rows = [
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, 8, 9]},
        {"input_ids": [10, 11, 12, 13], "labels": [-100, 11, 12, 13]},
        {"input_ids": [14, 15, 16], "labels": [-100, 15, 16]},
    ]
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([r["input_ids"]])).logits[0] for r in rows]
        for cap in (64, 7):  # all rows in one sequence; or two sequences, one with filler
            flat = FlatCollator(TokenCounter(), max_length=cap)(rows)
            logits = model(input_ids=flat["input_ids"], position_ids=flat["position_ids"]).logits
            real = flat["position_ids"].new_zeros(flat["position_ids"].shape, dtype=torch.bool)
            got = []
            for b in range(flat["input_ids"].shape[0]):
                ids = flat["input_ids"][b].tolist()
                for r in rows:  # find each row's tokens in this sequence
                    n = len(r["input_ids"])
                    for start in range(len(ids) - n + 1):
                        if ids[start : start + n] == r["input_ids"] and not real[b, start]:
                            real[b, start : start + n] = True
                            got.append((rows.index(r), logits[b, start : start + n]))
                            break
            assert sorted(i for i, _ in got) == [0, 1, 2]
            for i, part in got:
                torch.testing.assert_close(part, alone[i])
            assert flat["labels"][~real].eq(-100).all()  # filler never trains
            assert flat["input_ids"].shape[1] <= max(cap, 5)
    padded = PaddedCollator(TokenCounter(), pad_token_id=0)(rows)
    assert padded["input_ids"].shape == (3, 5) and padded["labels"][1, -1] == -100
    with torch.no_grad():  # the same loss per trained token, however the rows are batched
        loss_padded = model(**padded).loss
        for cap in (64, 7):
            loss_flat = model(**FlatCollator(TokenCounter(), max_length=cap)(rows)).loss
            torch.testing.assert_close(loss_flat, loss_padded)


def test_packing_fills_blocks_without_splitting_rows():
    blocks = pack_rows([60, 50, 40, 30, 20], max_length=100)
    assert sorted(i for b in blocks for i in b) == [0, 1, 2, 3, 4]
    assert all(sum([60, 50, 40, 30, 20][i] for i in b) <= 100 for b in blocks)
    assert len(blocks) == 2


def test_no_trainable_tokens_is_refused_before_launch(session):
    session.load_dataset([{"messages": [{"role": "user", "content": "only a question"}]}] * 3)
    with pytest.raises(TrainingDataError, match="trained token"):
        session.train(TrainConfig(max_steps=2))
    assert not list(session.workspace.runs_dir.glob("run-*"))


def small_run(session, chat_rows, **config):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    defaults = {"method": "lora", "batch_size": 2, "save_steps": 5, "logging_steps": 1}
    return session.train(TrainConfig(**{**defaults, **config}))


def test_a_resume_never_trains_past_its_step_budget(session, chat_rows):
    """A run that trained all its steps (30 of 30, or its one epoch) is not resumed to the
    same budget, from code: that trained a 31st step and rewrote the adapter."""
    session.load_dataset(chat_rows * 8)
    by_steps = session.prepare(TrainConfig(method="lora", max_steps=30, batch_size=2))
    by_epochs = session.prepare(TrainConfig(method="lora", epochs=1, batch_size=2))
    for run, step in ((by_steps, 30), (by_epochs, 12)):
        checkpoint = run.folder.checkpoints_dir / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text("{}")
        run.folder.write_status(RunStatus("finished", step=step, max_steps=step))
    with pytest.raises(ConfigError, match="trained 30 of 30 steps: nothing is left"):
        session.resume(by_steps, TrainConfig(max_steps=30))
    with pytest.raises(ConfigError, match="nothing is left"):
        session.resume(by_steps)  # its own budget
    with pytest.raises(ConfigError, match="trained 12 of 12 steps"):
        session.resume(by_epochs, TrainConfig(epochs=1))
    assert resume_refusal(by_epochs, TrainConfig(epochs=2)) == ""  # 24 steps: 12 to go
    assert resume_refusal(by_steps, TrainConfig(max_steps=40)) == ""


@pytest.mark.slow
def test_stop_then_resume_continues_the_steps(session, chat_rows):
    run = small_run(session, chat_rows, max_steps=100_000)
    wait_for(lambda: len(run.metrics) >= 3)
    status = run.stop(timeout=120)
    assert status.state == "stopped", status.message
    stopped_at = status.step
    assert stopped_at < 100_000 and run.folder.last_checkpoint().name == f"checkpoint-{stopped_at}"
    assert run.adapter_path is not None  # a stopped run still gives a usable adapter
    resumed = session.train(TrainConfig(method="lora", max_steps=stopped_at + 4), resume=run)
    final = resumed.wait(timeout=240)
    assert final.state == "finished", final.message + final.traceback_tail
    steps = [m["step"] for m in resumed.metrics if "loss" in m]
    assert steps[-1] == stopped_at + 4 and steps == sorted(steps)
    assert steps[steps.index(stopped_at) + 1] == stopped_at + 1  # the curve continues


@pytest.mark.slow
def test_a_killed_runner_shows_died_and_resumes(session, chat_rows):
    run = small_run(session, chat_rows, max_steps=100_000)
    wait_for(lambda: run.folder.last_checkpoint() is not None)
    os.kill(run.status.pid, signal.SIGKILL)
    wait_for(lambda: run.status.state == "died", timeout=30)
    assert "resume" in run.status.message
    assert "killed (SIGKILL)" in run.status.message  # our own child: its exit says how it ended
    checkpoint = int(run.folder.last_checkpoint().name.split("-")[1])
    with wb.Session.open(session.path, read_only=True) as fresh:  # as after a kernel restart
        assert fresh.run(run.name).status.state == "died"
    resumed = session.train(TrainConfig(method="lora", max_steps=checkpoint + 3), resume=run.name)
    assert resumed.wait(timeout=240).state == "finished"
    assert resumed.adapter_path is not None


def test_nan_loss_fails_the_run_with_a_plain_message(session, chat_rows, monkeypatch):
    from types import SimpleNamespace

    from workbench.train.runner import process
    from workbench.train.runner.callbacks import MetricsCallback, NonFiniteLossError

    run = small_run(session, chat_rows, max_steps=5)
    run.wait(timeout=240)
    callback = MetricsCallback(run.folder, TokenCounter(), run.status)
    state = SimpleNamespace(global_step=7, epoch=0.5, max_steps=10)
    args = SimpleNamespace(learning_rate=1e-3)
    with pytest.raises(NonFiniteLossError, match="step 7"):
        callback.on_log(args, state, None, logs={"loss": float("nan")})

    def diverging(folder, status, stopper):
        callback.on_log(args, state, None, logs={"loss": float("inf")})

    monkeypatch.setattr(process, "train", diverging)
    monkeypatch.setattr(process.signal, "signal", lambda *a: None)
    assert process.main(str(run.path)) == 1
    status = run.status
    assert status.state == "failed" and "Lower the learning rate" in status.message


def test_a_reader_never_sees_a_run_finished_before_its_last_status(session, chat_rows, monkeypatch):
    """The heartbeat beats while training returns; "finished" appears only with its end time and
    the whole run's peak memory (a reader that saw it early got a stale peak)."""
    from workbench.train.folder import RunFolder, RunProgress
    from workbench.train.runner import callbacks, process

    session.load_dataset(chat_rows * 8)
    run = session.prepare(TrainConfig(method="lora", max_steps=1))
    written = []
    write = RunFolder.write_status

    def recording(folder, status):
        written.append((status.state, status.ended, status.progress.peak_memory_gb))
        write(folder, status)

    def training(folder, status, stopper):
        status.progress = RunProgress(peak_memory_gb=0.0)  # what the last record said
        time.sleep(0.2)  # the heartbeat writes meanwhile

    class Heartbeat(callbacks.Heartbeat):
        def __exit__(self, *exc):
            written.append(("heartbeat stops", self.status.state, None))
            super().__exit__(*exc)

    monkeypatch.setattr(callbacks, "HEARTBEAT_SECONDS", 0.01)
    monkeypatch.setattr(process, "Heartbeat", Heartbeat)
    monkeypatch.setattr(RunFolder, "write_status", recording)
    monkeypatch.setattr(process, "train", training)
    monkeypatch.setattr(process.signal, "signal", lambda *a: None)
    assert process.main(str(run.path)) == 0
    assert ("heartbeat stops", "running", None) in written
    finished = [(ended, peak) for state, ended, peak in written if state == "finished"]
    assert len(written) > 3 and len(finished) == 1
    ended, peak = finished[0]
    assert ended is not None and peak > 0.1


@pytest.mark.slow
def test_a_run_outlives_its_kernel_and_reattaches(tmp_path, tiny_model_dir, chat_rows):
    import subprocess
    import sys
    import textwrap

    ws = tmp_path / "ws"
    kernel = f"""
        import workbench as wb
        s = wb.Session.open({str(ws)!r})
        s.set_model({str(tiny_model_dir)!r})
        s.set_max_length(64)
        s.load_dataset({chat_rows * 8!r})
        run = s.train(wb.TrainConfig(method="lora", max_steps=400, batch_size=2, save_steps=50))
        print(run.name)
    """  # the "kernel" exits right after starting the run, as a restart would end it
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(kernel)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with wb.Session.open(ws) as s:
        (run,) = s.runs
        wait_for(lambda: run.status.state == "running" and len(run.metrics) > 0)
        seen = len(run.metrics)
        wait_for(lambda: len(run.new_metrics()) > 0)  # the plot's source keeps growing
        assert run.wait(timeout=300).state == "finished"
        assert len(run.metrics) > seen and run.metrics[-1]["step"] == 400
