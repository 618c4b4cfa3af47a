"""Many processes through accelerate: device checks, the launch mapping, and real 2-process runs."""

from __future__ import annotations

import json
import socket
import time
from types import SimpleNamespace

import pytest

from tests.conftest import wait_for
from workbench.persist import read_jsonl
from workbench.train import ConfigError, TrainConfig
from workbench.train.distributed import (
    ACCELERATE_CONFIG,
    accelerate_config,
    check_devices,
    runner_command,
    usable_cpus,
    write_accelerate_config,
)
from workbench.train.plan import plan


def prepare(session, chat_rows, **config):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    return TrainConfig(**{"method": "lora", "batch_size": 2, **config})


def test_more_processes_than_cpu_cores_are_refused_before_anything_is_written(session, chat_rows):
    cores = usable_cpus()
    config = prepare(session, chat_rows, num_processes=cores + 1, max_steps=2)
    with pytest.raises(ConfigError, match=f"num_processes={cores + 1}.* {cores} are usable"):
        session.train(config)
    assert not list(session.workspace.runs_dir.glob("run-*"))


def test_more_processes_than_gpus_are_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="one GPU per process, but this machine has 1"):
        check_devices(TrainConfig(num_processes=2))
    check_devices(TrainConfig(num_processes=1, fsdp=False))


def test_several_machines_are_prepared_for_export_not_started(session, chat_rows):
    config = prepare(session, chat_rows, num_processes=16, num_machines=2, max_steps=2)
    with pytest.raises(ConfigError, match="export_job"):
        session.train(config)
    run = session.train(config, start=False)  # no device check: it runs elsewhere
    assert run.status.state == "prepared" and run.status.pid is None
    assert [r.name for r in session.runs] == [run.name]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"num_processes": 3, "num_machines": 2}, "multiple of num_machines"),
        ({"fsdp": True}, "num_processes to 2"),
        ({"fsdp_offload": True}, "fsdp=True"),
        ({"mixed_precision": "fp8"}, "mixed_precision"),
        (
            {
                "fsdp": True,
                "num_processes": 2,
                "method": "qlora",
                "bnb_4bit_quant_storage": "uint8",
            },
            "bfloat16",
        ),
    ],
)
def test_bad_process_settings_name_the_field(changes, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**changes)


def test_new_fields_round_trip_and_fsdp_with_4bit_gets_float_storage():
    config = TrainConfig(method="qlora", num_processes=4, fsdp=True, mixed_precision="bf16")
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    planned = plan(
        config, n_params=10**9, device="cuda", device_name="A100", session_max_length=512
    )
    assert planned.bnb_4bit_quant_storage == "bfloat16"
    assert "FSDP" in planned.reasons["bnb_4bit_quant_storage"]


def test_accelerate_reads_the_config_written_for_a_run(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = TrainConfig(num_processes=8, num_machines=2, fsdp=True, fsdp_offload=True)
    path = write_accelerate_config(config, tmp_path)
    loaded = load_config_from_file(str(path))  # accelerate's own reader, as `launch` uses it
    assert loaded.distributed_type.value == "FSDP"
    assert (loaded.num_processes, loaded.num_machines) == (8, 2)
    assert loaded.fsdp_config["fsdp_offload_params"] is True
    ddp = accelerate_config(TrainConfig(num_processes=2, mixed_precision="bf16"))
    assert ddp["distributed_type"] == "MULTI_GPU" and ddp["mixed_precision"] == "bf16"
    assert "fsdp_config" not in ddp


def test_one_process_runs_alone_and_many_run_under_accelerate(tmp_path):
    alone = runner_command(TrainConfig(), tmp_path)
    assert alone[1:] == ["-m", "workbench.train", str(tmp_path)]
    many = runner_command(TrainConfig(num_processes=2), tmp_path, port=29611)
    assert many[1:3] == ["-m", "accelerate.commands.launch"]
    assert many[many.index("--config_file") + 1] == str(tmp_path / ACCELERATE_CONFIG)
    assert many[many.index("--main_process_port") + 1] == "29611"
    assert many[-3:] == ["-m", "workbench.train", str(tmp_path)]


def test_runners_put_large_tensors_on_huge_pages_unless_the_environment_says_otherwise(
    monkeypatch,
):
    from workbench.train.launch import runner_env

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert runner_env()["THP_MEM_ALLOC_ENABLE"] == "1"  # packed 8 x 512: 7.1 GB -> 2.7 GB
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    assert runner_env()["THP_MEM_ALLOC_ENABLE"] == "0"


def test_only_the_main_process_writes_metrics(tmp_path):
    from workbench.train.folder import RunFolder, RunStatus
    from workbench.train.runner.callbacks import MetricsCallback
    from workbench.train.runner.collate import TokenCounter

    folder = RunFolder(tmp_path)
    args = SimpleNamespace(learning_rate=1e-3)
    for zero in (False, True):
        state = SimpleNamespace(global_step=1, epoch=0.1, max_steps=4, is_world_process_zero=zero)
        MetricsCallback(folder, TokenCounter(), RunStatus("running")).on_log(
            args, state, None, logs={"loss": 2.0}
        )
        assert folder.metrics_file.exists() is zero


def test_a_run_lives_while_its_launcher_or_its_main_process_does(session, chat_rows):
    import subprocess
    import sys

    run = session.train(prepare(session, chat_rows, max_steps=2), start=False)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        status = run.folder.read_status()
        status.state, status.host = "running", socket.gethostname()
        status.pid, status.worker_pid = dead.pid, child.pid  # launcher gone, main process alive
        run.folder.write_status(status)
        assert run.status.state == "running"
        status.pid, status.worker_pid = child.pid, dead.pid  # the launcher waits on its ranks
        run.folder.write_status(status)
        assert run.status.state == "running"
    finally:
        child.kill()
        child.wait()
    assert run.status.state == "died"


def loss_curve(run):
    return {m["step"]: m for m in run.metrics if "loss" in m}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_two_processes_train_like_one_with_the_same_global_batch(session, chat_rows, method):
    """N=2 processes with batch 2 against N=1 with batch 4, same seed and data: the same curve,
    for LoRA and for LoRA on 4-bit weights (QLoRA under DDP).

    Tolerance: each step's loss within 1e-3 (about 1e-4 of the loss, ~10.7 for the tiny model)
    and grad norm within 1e-3 relative. Both runs see the same rows per optimizer step
    (accelerate shards one seeded order) and average tokens over both processes, so only the
    order of float additions differs; measured here the largest gap is ~1e-6. A real mistake
    shows far above it: N=1 with batch 2 (a per-process batch taken for the global one) differs
    by 0.01-0.1 from step 1. Dropout is off so both runs draw no random masks.
    """
    common = {"method": method, "max_steps": 6, "learning_rate": 1e-2, "lora_dropout": 0.0}
    common.update(save_steps=100)
    common.update(warmup_ratio=0.0, lr_schedule="constant")
    common.update(replay=0)  # the same rows in both; the keep set is still measured
    one = session.train(prepare(session, chat_rows, batch_size=4, **common))
    assert one.wait(timeout=240).state == "finished", one.log_tail()
    started = time.time()
    two = session.train(prepare(session, chat_rows, batch_size=2, num_processes=2, **common))
    status = two.wait(timeout=240)
    assert status.state == "finished", status.message + two.log_tail()
    assert status.world_size == 2 and status.pid == two._process.pid != status.worker_pid
    assert "adapter weights agree across 2 processes" in two.folder.log_file.read_text()
    steps = [m["step"] for m in two.metrics if "loss" in m]
    assert steps == [1, 2, 3, 4, 5, 6]  # one writer: each step once
    logs = sorted(p.name for p in two.path.rglob("*.jsonl"))
    assert logs == ["metrics.jsonl", "samples.jsonl"]  # the keep answers: written once too
    assert len(read_jsonl(two.folder.samples_file)) == two.config.keep_answers
    assert sorted(p.name for p in two.path.iterdir() if "adapter" in p.name) == ["adapter"]
    assert (two.adapter_path / "adapter_model.safetensors").is_file()
    a, b = loss_curve(one), loss_curve(two)
    for step in steps:
        assert b[step]["loss"] == pytest.approx(a[step]["loss"], rel=1e-3, abs=1e-3), step
        assert b[step]["grad_norm"] == pytest.approx(a[step]["grad_norm"], rel=1e-3)
        assert a[step]["tokens_seen"] == b[step]["tokens_seen"]  # tokens of both processes
    gap = max(abs(a[s]["loss"] - b[s]["loss"]) for s in steps)
    print(f"{method}: N=2 took {time.time() - started:.1f} s; largest loss gap {gap:.2g}")


@pytest.mark.slow
def test_stop_reaches_every_process_and_the_run_resumes(session, chat_rows):
    config = prepare(session, chat_rows, num_processes=2, max_steps=100_000, save_steps=50)
    run = session.train(config)
    wait_for(lambda: len(run.metrics) >= 2)
    status = run.stop(timeout=120)
    assert status.state == "stopped", status.message + run.log_tail()
    assert run.folder.last_checkpoint().name == f"checkpoint-{status.step}"
    assert run.adapter_path is not None
    resumed = session.train(TrainConfig(method="lora", max_steps=status.step + 2), resume=run)
    final = resumed.wait(timeout=240)
    assert final.state == "finished" and final.step == status.step + 2, final.message
