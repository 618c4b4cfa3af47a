"""The runner process: `python -m workbench.train RUN_DIR`. The only place a Trainer is built.

It reads the run folder written by the launcher, trains by the run's method (SFT with LoRA or
QLoRA, DPO, a reward model, GRPO), and writes metrics.jsonl, status.json, checkpoints/ and
adapter/. Every ending is recorded in
status.json: finished, stopped (on request, with a checkpoint), or failed with a plain message;
its `extra` carries the process's peak memory (callbacks.peak_memory), live and at the end.
Under `accelerate launch` each process runs it; the main process alone writes (see ranks.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import traceback
from pathlib import Path

from ...models import best_device, resolve
from ...persist import atomic_write_json, read_json, staged_folder
from ..config import TrainConfig
from ..faults import explain_failure
from ..folder import RunFolder, RunStatus
from ..jobs import job_refusal
from ..rewards import RewardFunctionError, Samples
from .callbacks import (
    Heartbeat,
    MetricsCallback,
    NonFiniteLossError,
    SampleCallback,
    StopCallback,
    peak_memory,
)
from .collate import TokenCounter
from .ranks import launcher_pid, replicas_agree, start_process_group
from .sft import sft_trainer


def main(run_dir: str) -> int:
    """Run the training in RUN_DIR and record how it ended; the exit code is 0 unless it failed.

    Under `accelerate launch` every process runs this; only the main one writes the folder.
    """
    folder = RunFolder(run_dir)
    refusal = job_refusal(folder.root)
    if refusal:
        return refuse(folder, refusal)
    if folder.stop_file.exists():  # asked between the queue's claim and this start
        return stopped_before_training(folder)
    state = start_process_group(best_device())
    stopper = StopCallback(folder)
    signal.signal(signal.SIGTERM, lambda *_: stopper.requested.set())
    signal.signal(signal.SIGINT, lambda *_: stopper.requested.set())
    if not state.is_main_process:
        return _train_quietly(folder, stopper)
    # Past a file-size limit a write raises (and is reported) instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    reserve = keep_room_for_status(folder)
    folder.remove_incomplete_checkpoints()  # left by a run killed while it saved
    status = folder.read_status()
    status.state, status.pid, status.host = "running", launcher_pid(), socket.gethostname()
    status.worker_pid, status.world_size = os.getpid(), state.num_processes
    status.started, status.ended, status.message, status.traceback_tail = time.time(), None, "", ""
    # The heartbeat keeps rewriting status.json: the outcome is set only once it has stopped, so
    # a reader never sees "finished" before the last status (end time, whole-run peak) is written.
    with Heartbeat(folder, status):
        outcome = _train_to_the_end(folder, status, stopper)
    status.state, status.message, status.traceback_tail = outcome
    status.ended = time.time()
    status.progress.update(peak_memory())  # the whole run's peak, saving included
    folder.remove_incomplete_checkpoints()
    reserve.unlink(missing_ok=True)  # on a full disk, the room the last status needs
    folder.write_status(status)
    return 1 if status.state == "failed" else 0


def _train_to_the_end(folder: RunFolder, status: RunStatus, stopper: StopCallback):
    """Train; how it ended as (state, message, traceback tail). Every failure is reported."""
    try:
        train(folder, status, stopper)  # may leave a message (an early stop says why)
        return ("stopped" if stopper.requested.is_set() else "finished"), status.message, ""
    except NonFiniteLossError as e:
        return "failed", str(e), ""
    except RewardFunctionError as e:  # the message names the function and the bad value
        return "failed", str(e), _log_traceback()
    except Exception as e:
        return "failed", explain_failure(e, folder.root), _log_traceback()


# Kept free in the run folder while the runner works, and released before the last status.json
# is written, so that a full disk cannot also silence how the run ended.
STATUS_RESERVE_BYTES = 256 * 1024


def keep_room_for_status(folder: RunFolder) -> Path:
    """Write the run folder's reserve file (see STATUS_RESERVE_BYTES); returns its path."""
    reserve = folder.root / ".status-reserve"
    try:
        with open(reserve, "wb") as f:
            f.write(b"\0" * STATUS_RESERVE_BYTES)  # real blocks: a sparse file would free none
    except OSError:
        reserve.unlink(missing_ok=True)  # the disk is full already: the run fails on its own
    return reserve


def _log_traceback() -> str:
    """Print the exception being handled to the log, when the disk lets us; return its tail."""
    text = traceback.format_exc()
    with contextlib.suppress(OSError):  # the log is on the full disk: the status has the tail
        print(text, end="", flush=True)
    return "".join(text.splitlines(True)[-30:])


def _train_quietly(folder: RunFolder, stopper: StopCallback) -> int:
    """A rank other than the main one: train in step, write nothing; its errors go to the log."""
    try:
        train(folder, RunStatus("running"), stopper)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def refuse(folder: RunFolder, message: str) -> int:
    """Record, without training, why this folder cannot run here (exit code 2)."""
    print(f"[workbench] {message}", flush=True)
    if os.environ.get("RANK", "0") == "0":
        status = folder.read_status()
        status.state, status.message, status.ended = "failed", message, time.time()
        folder.write_status(status)
    return 2


def stopped_before_training(folder: RunFolder) -> int:
    """Record a stop that came before the first step: the run is as it was ("stopped" at its
    last checkpoint, or "cancelled" when it has none), so that resume takes it up again."""
    if os.environ.get("RANK", "0") == "0":
        status = folder.read_status()
        status.state = "stopped" if folder.last_checkpoint() else "cancelled"
        status.message = "Stopped before it trained a step; resume it to go on."
        status.ended, status.pid, status.worker_pid = time.time(), None, None
        folder.write_status(status)
    return 0


def train(folder: RunFolder, status: RunStatus, stopper: StopCallback) -> None:
    """Build the model, data and Trainer from the run folder and train; the whole step is here."""
    import torch
    from accelerate import PartialState

    info = folder.read_info()
    config, spec = info.train, info.model
    device = best_device()
    torch.manual_seed(config.seed)
    counter = TokenCounter()
    callbacks = [MetricsCallback(folder, counter, status), stopper]
    callbacks += insight_callbacks(folder, config, spec, stopper.requested)
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(folder.root / "tensorboard"))
    with PartialState().main_process_first():  # one download or conversion, then the others read
        resolve(spec)
    trainer = build_trainer(folder, config, spec, device, callbacks, counter)
    resume = folder.last_checkpoint()
    if trainer.is_world_process_zero():
        print(
            f"[workbench] {config.method} run {folder.root.name} on {device} "
            f"x{trainer.args.world_size}; resume: {resume}",
            flush=True,
        )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    extra = {ADAPTER_STEP_FILE: adapter_step(trainer, config, status)}
    if config.method == "reward":
        from ..reward_model import REWARD_FILE, record_json
        from .reward import reward_record

        extra[REWARD_FILE] = record_json(reward_record(trainer, folder))
    save_adapter(trainer, folder, config, extra)


ADAPTER_STEP_FILE = "adapter_step.json"  # in adapter/: the step its weights come from


def insight_callbacks(folder: RunFolder, config: TrainConfig, spec, stopped=None) -> list:
    """Probe answers at each evaluation (probes.py), keep drift (keep_drift.py) and transformers'
    early stopping, as the config asks; probes and early stopping need an eval split
    (prepare_run refuses early stopping without one), keep drift is measured either way."""
    from transformers import EarlyStoppingCallback

    from ..probes import read_probes
    from .builders import run_tokenizer
    from .callbacks import ProbeCallback

    has_eval = (folder.data_dir / "eval").exists()
    found = []
    probes = read_probes(folder) if has_eval else []
    if probes and not config.fsdp:  # FSDP shards the weights that generation would need whole
        found.append(
            ProbeCallback(folder, probes, run_tokenizer(folder, spec), config.probe_max_new_tokens)
        )
    if folder.keep_file.exists() and not config.fsdp:  # after the probes: it may void a best
        from ...keep.record import KeepRecord
        from .keep_drift import KeepDriftCallback

        record = KeepRecord.read(folder.keep_file)
        tokenizer = run_tokenizer(folder, spec)
        found.append(KeepDriftCallback(folder, record, tokenizer, config, has_eval, stopped))
    if config.early_stopping_patience is not None and has_eval:
        found.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return found


def adapter_step(trainer, config: TrainConfig, status: RunStatus) -> dict:
    """Which step the adapter about to be saved comes from (the best evaluation's with
    keep_best, else the last), and the best evaluation; also put on the status."""
    state = trainer.state
    best = state.best_model_checkpoint
    best_step = int(best.rsplit("-", 1)[1]) if best else None
    step = best_step if config.keep_best and best_step is not None else state.global_step
    record = {
        "step": step,
        "last_step": state.global_step,
        "best_step": best_step,
        "best_metric": config.best_metric,
        "best_value": state.best_metric,
    }
    status.progress.adapter_step, status.progress.best_step = step, best_step
    patience = [
        c for c in trainer.callback_handler.callbacks if hasattr(c, "early_stopping_patience")
    ]
    if any(c.early_stopping_patience_counter >= c.early_stopping_patience for c in patience):
        status.message = (
            f"Stopped early at step {state.global_step}: {config.best_metric} did not improve "
            f"for {config.early_stopping_patience} evaluations (best at step {best_step})."
        )
    return record


def build_trainer(folder: RunFolder, config: TrainConfig, spec, device: str, callbacks, counter):
    """The Trainer of the run's method, with the runner's callbacks."""
    if config.method == "dpo":
        from .dpo import train_dpo

        return train_dpo(folder, config, spec, device, callbacks)
    if config.method == "reward":
        from .reward import reward_trainer

        return reward_trainer(folder, config, spec, device, callbacks)
    if config.method == "grpo":
        from .grpo import grpo_trainer

        samples = Samples()
        return grpo_trainer(
            folder, config, spec, device, [*callbacks, SampleCallback(samples)], samples
        )
    return sft_trainer(folder, config, spec, device, callbacks, counter)


def save_adapter(
    trainer, folder: RunFolder, config: TrainConfig, extra: dict[str, dict] | None = None
) -> Path | None:
    """Write adapter/ from the main process: safetensors weights, adapter and train configs,
    template, and `extra` JSON files by name (a reward model's record).

    Every rank takes part (FSDP gathers the full adapter from all shards first); with DDP the
    ranks must hold the same weights, or the run fails rather than save one rank's view.
    """
    state_dict = None
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        state_dict = trainer.accelerator.get_state_dict(trainer.model)
    elif not replicas_agree(trainer.model):
        raise RuntimeError("the processes ended with different adapter weights")
    if not trainer.is_world_process_zero():
        return None
    if trainer.args.world_size > 1 and not trainer.is_fsdp_enabled:
        print(
            f"[workbench] adapter weights agree across {trainer.args.world_size} processes",
            flush=True,
        )
    model = trainer.accelerator.unwrap_model(trainer.model)
    with staged_folder(folder.adapter_dir) as staging:  # the old adapter stays until swapped
        # only the trained adapter: DPO's frozen "ref" copy stays behind
        model.save_pretrained(
            str(staging),
            safe_serialization=True,
            selected_adapters=["default"],
            state_dict=state_dict,
        )
        atomic_write_json(staging / "template.json", read_json(folder.template_file))
        atomic_write_json(staging / "train_config.json", config.to_json())
        atomic_write_json(staging / "base_model.json", folder.read_info().model.to_json())
        for name, data in (extra or {}).items():
            atomic_write_json(staging / name, data)
    return folder.adapter_dir
