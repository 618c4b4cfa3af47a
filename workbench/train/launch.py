"""Launching a run: write its folder (config, tokenised data snapshot, template), start the runner.

The snapshot is made in the kernel by the template's own `tokenize_with_labels`, so the runner
trains on exactly the ids and labels the template editor shows.
"""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from ..errors import TrainingDataError
from ..keep.record import KeepRecord
from ..models import ModelSpec
from ..progress import progress, quiet_datasets
from ..resources import oom_kill_count
from ..templates.template import Template, tokenize_with_labels
from .config import PREFERENCE_METHODS, ConfigError, TrainConfig
from .distributed import (
    RUNNER_ENV_DEFAULTS,
    runner_command,
    visible_devices_env,
    write_accelerate_config,
)
from .folder import RunFolder, RunInfo, RunProgress, RunStatus
from .probes import resolve_probes, write_probes
from .run import Run
from .validation import check_trackers
from .warm import WarmRunner

SNAPSHOT_BATCH = 1000


def next_run_name(runs_dir: Path, taken: Collection[str] = ()) -> str:
    """run-1, run-2, ...: one more than the highest number in the folder or among `taken` names."""
    names = [p.name for p in runs_dir.glob("run-*")] + list(taken)
    numbers = [int(m.group(1)) for name in names if (m := re.fullmatch(r"run-(\d+)", name))]
    return f"run-{max(numbers, default=0) + 1}"


def snapshot(
    template: Template, rows: Sequence[dict], max_length: int, out: Path
) -> dict[str, int]:
    """Tokenise rows with labels and save them (Arrow) to `out`; returns counts for the summary."""
    import datasets

    ids, labels, kept_rows, replayed = [], [], [], []
    cut = empty = 0
    with progress(len(rows), f"Tokenising the {out.name} rows", leave=False) as advance:
        for start in range(0, len(rows), SNAPSHOT_BATCH):
            batch = rows[start : start + SNAPSHOT_BATCH]
            examples = tokenize_with_labels(template, list(batch), max_length=max_length)
            for offset, ex in enumerate(examples):
                if ex.num_trained == 0:
                    empty += 1
                    continue
                cut += ex.truncated_trained
                ids.append(ex.input_ids)
                labels.append(ex.labels)
                kept_rows.append(start + offset)
                replayed.append(bool(batch[offset].get("replay")))  # keep.replay's rows
            advance(len(batch))
    columns = {"input_ids": ids, "labels": labels, "row": kept_rows, "replay": replayed}
    table = datasets.Dataset.from_dict(columns)
    with quiet_datasets():
        table.save_to_disk(str(out))
    n_tokens = sum(len(x) for x in ids)
    trained = sum(sum(v != -100 for v in x) for x in labels)
    return {
        "rows": len(ids),
        "skipped_no_trained_tokens": empty,
        "tokens": n_tokens,
        "trained_tokens": trained,
        "truncated_trained_tokens": cut,
        "replay_rows": sum(replayed),
    }


def write_pairs(pairs: Sequence[dict], out: Path) -> dict[str, int]:
    """Save preference pairs (prompt, chosen, rejected as messages); the DPO and reward-model
    runners tokenise them with the run's template, through the tokenizer's chat template."""
    import datasets

    with quiet_datasets():
        datasets.Dataset.from_list(list(pairs)).save_to_disk(str(out))
    return {"rows": len(pairs)}


def write_prompts(prompts: Sequence[dict], out: Path) -> dict[str, int]:
    """Save GRPO's prompts (messages up to the answer), each with its reference answer ("" when
    the row has none) and its row number; the rewards read the reference as a column."""
    import datasets

    columns = {
        "prompt": [p["prompt"] for p in prompts],
        "reference": [p.get("reference") or "" for p in prompts],
        "row": [int(p.get("row", i)) for i, p in enumerate(prompts)],
    }
    with quiet_datasets():
        datasets.Dataset.from_dict(columns).save_to_disk(str(out))
    return {"rows": len(prompts)}


def prepare_run(
    runs_dir: Path,
    config: TrainConfig,
    model: ModelSpec,
    template: Template,
    train_rows: Sequence[dict],
    eval_rows: Sequence[dict],
    taken_names: Collection[str] = (),
    keep: KeepRecord | None = None,
) -> Run:
    """Write a new run folder with its config, template and data snapshot; nothing starts yet.

    `taken_names`: names already in use (attached runs), which the new run's name avoids.
    `keep`: the keep prompts the runner measures drift on (keep.json and the data/keep snapshot).
    """
    if not train_rows:
        raise TrainingDataError(
            "There are no training rows: load a dataset, or include excluded rows."
        )
    check_trackers(config.report_to)
    check_best(config, has_eval=bool(eval_rows) and config.method != "grpo")
    probes = resolve_probes(config, template, list(eval_rows))
    runs_dir.mkdir(parents=True, exist_ok=True)
    name = next_run_name(runs_dir, taken_names)
    staging = runs_dir / f".{name}.staging"
    folder = RunFolder(staging)
    folder.data_dir.mkdir(parents=True)
    if config.method in PREFERENCE_METHODS:
        summary = {"train": write_pairs(train_rows, folder.data_dir / "train")}
        if eval_rows:
            summary["eval"] = write_pairs(eval_rows, folder.data_dir / "eval")
    elif config.method == "grpo":  # GRPO samples its own answers: prompts only, no eval split
        summary = {"train": write_prompts(train_rows, folder.data_dir / "train")}
    else:
        summary = {
            "train": snapshot(template, train_rows, config.max_length, folder.data_dir / "train")
        }
        if summary["train"]["rows"] == 0:
            raise TrainingDataError(
                f"None of the {len(train_rows)} training rows has a trained token under the template "
                f"{template.name!r} (train_on={template.train_on!r}). Check that rows end with an "
                "assistant turn and that the template renders assistant content."
            )
        if eval_rows:
            summary["eval"] = snapshot(
                template, eval_rows, config.max_length, folder.data_dir / "eval"
            )
    if keep is not None:
        summary["keep"] = snapshot(
            template, keep.rows(), config.max_length, folder.data_dir / "keep"
        )
        keep.write(folder.keep_file)
    template.save(staging)
    write_probes(folder, probes)
    folder.write_info(
        RunInfo(name=name, train=config, model=model, created=time.time(), data=summary)
    )
    folder.write_status(RunStatus("prepared", max_steps=config.max_steps))
    staging.rename(runs_dir / name)
    return Run(runs_dir / name)


def check_best(config: TrainConfig, has_eval: bool) -> None:
    """keep_best and early stopping choose among evaluations: refuse them without an eval split."""
    if has_eval or not (config.keep_best or config.early_stopping_patience is not None):
        return
    asked = "keep_best" if config.keep_best else "early_stopping_patience"
    raise ConfigError(
        f"{asked} picks the best evaluation, and this run has no eval split. Make one "
        f"(session.split(eval_fraction=0.1)), or turn {asked} off."
    )


def runner_env(devices: list[str] | None = None) -> dict[str, str]:
    """The environment a runner process starts with: this one's over RUNNER_ENV_DEFAULTS,
    unbuffered, with the devices the run queue gave the run as its CUDA_VISIBLE_DEVICES."""
    env = {**RUNNER_ENV_DEFAULTS, **os.environ}
    env |= {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(visible_devices_env(devices or []))
    return env


def start_runner(run: Run, warm: WarmRunner | None = None) -> Run:
    """Start the runner in its own process and session, under accelerate launch for many
    processes (distributed.runner_command); returns at once, with the process on `run`.

    The devices the run queue gave the run (status.devices) become its CUDA_VISIBLE_DEVICES;
    sessions start runs through the queue (workbench.train.queue), never directly. A `warm`
    runner (warm.py) takes a single-process run whose environment it was started with.
    """
    folder = run.folder  # its stop file was cleared when it was queued: a stop since holds
    status = folder.read_status()
    status.state, status.message, status.host = "queued", "", socket.gethostname()
    status.heartbeat, status.worker_pid, status.world_size = time.time(), None, 1
    status.progress = RunProgress()  # the queue's notes (place, what it waited for) are done
    status.oom_kills = oom_kill_count()  # a rise by the time it ends: the OOM killer ended it
    config = run.config
    if config.distributed:
        write_accelerate_config(config, folder.root)
    folder.write_status(status)
    env = runner_env(status.devices)
    process = None
    if warm is not None and not config.distributed and warm.accepts(env):
        status.pid = warm.process.pid  # written first: once handed the run, it writes at once
        folder.write_status(status)
        process = warm.take(folder.root)
    if process is None:
        process = _spawn(runner_command(config, folder.root), folder.log_file, env)
        status.pid = process.pid
        folder.write_status(status)
    run._process = process  # the handle the user holds reaps its own child
    return run


def _spawn(command: list[str], log_file: Path, env: dict[str, str]) -> subprocess.Popen:
    """A runner process in its own session, its output appended to `log_file`."""
    log = open(log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C or a kernel interrupt never reaches the runner
            env=env,
        )
    finally:
        log.close()


def check_resume(run: Run, config: TrainConfig | None) -> TrainConfig:
    """The config a resumed run continues with: the old one, with a new step budget allowed.

    Only fields of `config` set away from their defaults count as asked for, so a config left
    at its defaults (a launcher form as it opened, or TrainConfig(max_steps=N) from code)
    resumes any run, wherever it was started. Raises ConfigError naming the fields that differ.
    """
    old = run.config
    if refusal := resume_refusal(run, config):
        raise ConfigError(refusal)
    if config is None:
        return old
    default, asked, before = type(config)().to_json(), config.to_json(), old.to_json()
    budget = {"max_steps", "epochs", "gpu", "reasons"}
    conflicts = sorted(
        k
        for k, v in asked.items()
        if k not in budget and v != default[k] and v != before.get(k, default[k])
    )
    if conflicts:
        raise ConfigError(
            f"Resuming {run.name} keeps its settings; only the step budget (max_steps, epochs) "
            f"may change, but these differ: {conflicts}. Start a new run to change them."
        )
    gpu = old.gpu if config.gpu is None else config.gpu  # a resumed run may move to another GPU
    return old.replace(max_steps=config.max_steps, epochs=config.epochs, gpu=gpu)


def resume_refusal(run: Run, config: TrainConfig | None = None) -> str:
    """Why `run` cannot be resumed with `config`'s step budget (None: its own), "" when it
    can: it is active, it has no checkpoint, or its last checkpoint already reached the budget
    (a resume never trains past it). For Session.resume and the launcher's Resume button."""
    status = run.status
    if status.active:
        return f"{run.name} is still {status.state}; stop it before resuming."
    checkpoint = run.folder.last_checkpoint()
    if checkpoint is None:
        never_started = status.state in ("prepared", "cancelled")
        return (
            ""
            if never_started
            else f"{run.name} has no checkpoint to resume from; start a new run instead."
        )
    done, total = int(checkpoint.name.split("-")[-1]), _step_budget(run, config or run.config)
    if total is not None and done >= total:
        return (
            f"{run.name} has trained {done} of {total} steps: nothing is left to train. Raise "
            "max steps (or epochs) above that to train on."
        )
    return ""


def _step_budget(run: Run, config: TrainConfig) -> int | None:
    """The steps a resume of `run` with `config` trains to; None where only the runner can
    count them (an epoch budget of a run that never reported its length)."""
    if config.max_steps > 0:
        return config.max_steps
    old, planned = run.config, run.status.max_steps
    if old.max_steps > 0 or not planned or not old.epochs:
        return None
    return math.ceil(planned * config.epochs / old.epochs)  # steps per epoch are the run's


def update_config(run: Run, config: TrainConfig) -> None:
    """Record the (resumed) run's config in its config.json."""
    info = run.folder.read_info()
    info.train = config
    run.folder.write_info(info)
