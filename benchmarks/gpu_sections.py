"""The GPU check's sections: one function per path a Colab or cloud user takes.

Each @section gets a Context and returns a dict of figures, or raises; benchmarks/gpu_check.py
runs each in a process of its own and reports them. A new capability adds a @section here.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SECTION_TIMEOUT_S = 240
PREFERENCE_PAIRS = 16


@dataclass
class Context:
    """What every section gets: the model folder, the step budget, and whether this is a dry run."""

    model: str
    steps: int
    dry_run: bool
    fail: str | None  # a section told to fail on purpose (tests the report)
    work: str

    @property
    def max_length(self) -> int:
        return 64 if self.dry_run else 512


SECTIONS: dict[str, Callable[[Context], dict]] = {}


def section(function: Callable[[Context], dict]) -> Callable[[Context], dict]:
    """Register a section under its function's name; it returns a dict of figures."""
    SECTIONS[function.__name__] = function
    return function


# -- helpers ----------------------------------------------------------------------------------
def device() -> tuple[str, str]:
    """("cuda", card name) or ("cpu", "cpu")."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    return "cpu", "cpu"


def peak_memory_gb() -> float:
    """This process's peak: allocated GPU memory on a GPU, resident memory on a CPU (GiB)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1024**3
    from workbench.resources import peak_rss_gb

    return peak_rss_gb()


def open_session(ctx: Context, name: str):
    """A session on the check's model with the throughput benchmark's rows (TRL's too)."""
    from train_throughput import demo_rows

    import workbench as wb

    s = wb.Session.open(Path(ctx.work) / name)
    s.set_model(ctx.model)
    s.set_max_length(ctx.max_length)
    s.load_dataset(demo_rows())
    return s


def train_here(session, config) -> dict:
    """Prepare `config` and run the runner in this process, so the peak memory is the run's."""
    from train_throughput import rate

    from workbench.train import runner

    estimate = session.estimate(config)
    run = session.prepare(config)
    start = time.time()
    runner.main(str(run.path))
    status = run.status
    if status.state != "finished":
        raise RuntimeError(f"{run.name} ended {status.state}: {status.message}")
    records = [m for m in run.metrics if "loss" in m]
    losses = [m["loss"] for m in records]
    return rate(records, "tokens_seen", "trained_tokens_seen") | {
        "planned": {
            k: getattr(run.config, k)
            for k in (
                "method",
                "batch_size",
                "grad_accumulation",
                "learning_rate",
                "mixed_precision",
            )
        },
        "train_seconds": time.time() - start,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "loss_finite": all(math.isfinite(x) for x in losses),
        "peak_gb": peak_memory_gb(),
        "estimate_gb": estimate.total_gb,
    }


def wait(run, timeout: float = SECTION_TIMEOUT_S):
    """The run's final status (RuntimeError when it did not finish in time)."""
    status = run.wait(timeout=timeout)
    if status.active:
        run.stop(timeout=30)
        raise RuntimeError(f"{run.name} still {status.state} after {timeout:.0f} s")
    return status


# -- sections ---------------------------------------------------------------------------------
@section
def qlora_defaults(ctx: Context) -> dict:
    """QLoRA (LoRA on a CPU) with what plan picks for this card: tokens/s, peak, estimate."""
    import workbench as wb

    s = open_session(ctx, "defaults")
    return train_here(s, wb.TrainConfig(max_steps=ctx.steps, save_steps=10_000))


@section
def trl_defaults(ctx: Context) -> dict:
    """TRL's SFTTrainer with its defaults on the same rows: the reference for tokens/s and loss."""
    from train_throughput import run_trl

    method = "qlora" if device()[0] == "cuda" else "lora"
    return run_trl(ctx.steps, ctx.model, method, max_length=ctx.max_length) | {
        "peak_gb": peak_memory_gb()
    }


@section
def t4_path(ctx: Context) -> dict:
    """The settings plan picks for a T4 (fp16 QLoRA, batch 4 x 2), forced on this card."""
    import workbench as wb
    from workbench.train.plan import plan

    s = open_session(ctx, "t4")
    cuda = device()[0] == "cuda"
    asked = wb.TrainConfig(
        max_steps=ctx.steps, save_steps=10_000, mixed_precision="fp16" if cuda else "no"
    )
    config = plan(
        asked,
        n_params=s.model_shape.n_params,
        device="cuda",
        device_name="T4",
        session_max_length=s.max_length,
    )
    result = train_here(s, config)
    if not result["loss_finite"] or not result["last_loss"] < result["first_loss"]:
        raise RuntimeError(f"the T4 path did not learn: {result}")
    return result


@section
def lora_bf16(ctx: Context) -> dict:
    """Plain LoRA on the full-precision (bf16 on a GPU) base."""
    import workbench as wb

    s = open_session(ctx, "lora")
    return train_here(s, wb.TrainConfig(method="lora", max_steps=ctx.steps, save_steps=10_000))


@section
def dpo(ctx: Context) -> dict:
    """A short DPO run from votes, in its own runner process, as a person starts it."""
    import workbench as wb

    s = open_session(ctx, "dpo")
    record_votes(s)
    length = max(ctx.max_length, 256)  # a prompt and its answer fit whole
    run = s.train(wb.TrainConfig(method="dpo", max_steps=max(2, ctx.steps // 4), max_length=length))
    status = wait(run)
    if status.state != "finished" or run.adapter_path is None:
        raise RuntimeError(f"DPO ended {status.state}: {status.message}")
    margins = [m["rewards/margins"] for m in run.metrics if "rewards/margins" in m]
    return {"steps": status.step, "last_margin": margins[-1] if margins else None}


def record_votes(s) -> None:
    """Votes where the chosen answer is the task's and the rejected one another row's."""
    from workbench import demo_data

    rows = demo_data.generate(2 * PREFERENCE_PAIRS, seed=5, handwritten=False)  # short rows
    for row, other in zip(rows[:PREFERENCE_PAIRS], rows[PREFERENCE_PAIRS:]):
        turns, wrong = row["messages"], other["messages"][-1]["content"]
        s.record_preference(
            turns[:-1], turns[-1]["content"], wrong, chosen_model="a", rejected_model="b"
        )


@section
def reward_model(ctx: Context) -> dict:
    """A reward model from votes (4-bit on a GPU), then scores for a right and a wrong answer."""
    import workbench as wb

    s = open_session(ctx, "reward")
    record_votes(s)
    length = max(ctx.max_length, 256)
    run = s.train(
        wb.TrainConfig(method="reward", max_steps=max(2, ctx.steps // 2), max_length=length)
    )
    status = wait(run)
    if status.state != "finished":
        raise RuntimeError(f"the reward run ended {status.state}: {status.message}")
    right, wrong = s.score("What is 2 plus 3?", ["5", "Purple."], reward_model=run.name)
    return {
        "steps": status.step,
        "scores": [right, wrong],
        "peak_gb": status.progress.peak_memory_gb,
    }


@section
def grpo(ctx: Context) -> dict:
    """A short GRPO run with the exact-match reward: reward curves and an adapter that answers."""
    import workbench as wb
    from workbench import demo_data

    s = open_session(ctx, "grpo")
    s.load_dataset(demo_data.generate(40, seed=9, tasks=["arithmetic"], handwritten=False))
    run = s.train(wb.TrainConfig(method="grpo", rewards=["exact_match"], max_steps=2))
    status = wait(run)
    if status.state != "finished":
        raise RuntimeError(f"GRPO ended {status.state}: {status.message}")
    rewards = [m for m in run.metrics if any(k.startswith("reward") for k in m)]
    answer = s.generate("What is 2 plus 3?", model=run.name, max_new_tokens=8)
    return {
        "steps": status.step,
        "reward_records": len(rewards),
        "answer": answer,
        "peak_gb": status.progress.peak_memory_gb,
    }


@section
def export_parity(ctx: Context) -> dict:
    """The embedded model, tuned briefly, exported merged and as GGUF F16 with parity. The dry
    run exports the check's small random model instead: parity is judged along the adapter's
    own answers within the rounding of each format, so its near-tied logits are reported as
    near ties, not failures, and the path is the same at a fraction of the time."""
    import workbench as wb
    from workbench import demo_data, models

    s = wb.Session.open(Path(ctx.work) / "export")
    s.set_model(ctx.model if ctx.dry_run else models.DEFAULT)
    s.set_max_length(128)
    s.load_dataset(demo_data.generate(120, seed=4, tasks=["change_case"], handwritten=False))
    s.split(eval_fraction=0.1, seed=0)
    # No probe answers or keep drift while it trains: this section is about the export.
    settings = {"save_steps": 10_000, "probes": 0, "keep_set": "off"}
    run = s.train(wb.TrainConfig(max_steps=max(4, ctx.steps), **settings))
    if wait(run).state != "finished":
        raise RuntimeError(f"{run.name} ended {run.status.state}: {run.status.message}")
    probes = {"probes": 2, "max_new_tokens": 16} if ctx.dry_run else {}
    out = {}
    for fmt in ("merged", "gguf"):
        export = s.export_model(run.name, Path(ctx.work) / f"export-{fmt}", format=fmt, **probes)
        out[fmt] = {"parity": export.parity.line(), "seconds": export.seconds, "bytes": export.size}
    return out


@section
def stop_resume(ctx: Context) -> dict:
    """Stop a run mid-way (a checkpoint is kept, the device's memory comes back), then resume."""
    import workbench as wb

    s = open_session(ctx, "resume")
    run = s.train(wb.TrainConfig(method="lora", max_steps=10_000, save_steps=3))
    deadline = time.time() + SECTION_TIMEOUT_S
    while run.folder.last_checkpoint() is None and time.time() < deadline:
        time.sleep(0.5)
    stopped = run.stop(timeout=120)
    if stopped.state != "stopped":
        raise RuntimeError(f"stop gave {stopped.state}: {stopped.message}")
    freed = gpu_processes_gone()
    resumed = s.resume(run, wb.TrainConfig(max_steps=stopped.step + 3))
    status = wait(resumed)
    if status.state != "finished" or status.step != stopped.step + 3:
        raise RuntimeError(f"resume ended {status.state} at step {status.step}")
    return {"stopped_at": stopped.step, "finished_at": status.step, "device_freed": freed}


def gpu_processes_gone() -> bool | None:
    """Whether no process holds GPU memory after a stop (None on a machine without a GPU)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return str(os.getpid()) not in out and not out.strip()


@section
def keep_drift(ctx: Context) -> dict:
    """A supervised run measured against the keep set, with replay: its drift (nats per token),
    the share of keep answers it changed, and what measuring cost against the run's time."""
    import workbench as wb

    s = open_session(ctx, "keep")
    run = s.train(wb.TrainConfig(max_steps=ctx.steps, save_steps=10_000, replay=0.1))
    status = wait(run)
    if status.state != "finished":
        raise RuntimeError(f"{run.name} ended {status.state}: {status.message}")
    metrics = run.metrics
    drift = [m["keep_drift"] for m in metrics if "keep_drift" in m]
    changed = [m["keep_changed"] for m in metrics if "keep_changed" in m]
    if not drift or not changed:
        raise RuntimeError(f"{run.name} measured no keep drift: {run.log_tail()}")
    costs = ("keep_drift_seconds", "keep_answer_seconds")
    measuring = sum(m.get(key, 0.0) for m in metrics for key in costs)
    return {
        "keep_drift": drift[-1],
        "keep_changed": changed[-1],
        "replay_rows": run.folder.read_info().data["train"]["replay_rows"],
        "measuring_share": measuring / (status.ended - status.started),
    }


@section
def comparator(ctx: Context) -> dict:
    """Base and four adapters on one base model: memory and speed against plain generate."""
    from compare import speed, write_adapters

    adapters = write_adapters(ctx.model, Path(ctx.work) / "adapters", 4)
    timing = speed(ctx.model, adapters, tokens=16 if ctx.dry_run else 48, repeats=2)
    return {"timing": timing, "peak_gb": peak_memory_gb()}
