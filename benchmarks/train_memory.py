"""Training memory: each run's measured peak beside the launcher's estimate, and beside TRL's.

For a grid of runs (batch 1 and 8, max length 256 and 1024, padded / padding-free / packed,
LoRA and QLoRA) our runner trains in a process of its own and records its peak (status.progress);
the estimate is what the launcher shows for the same settings (Session.estimate). TRL's
SFTTrainer with its defaults trains the same rows with the same settings, alone in its process.
TRL's default turns gradient checkpointing on and ours plans it only where memory needs it, so
--like-for-like also runs both with it off, then both with it on (8 x 256, LoRA and QLoRA).
Prints one JSON object: a row per run, and the targets.

    python benchmarks/train_memory.py [--steps 4] [--model PATH_OR_ID] [--random-llama DIR]
    python benchmarks/train_memory.py --smoke      # a tiny random model, two small runs
    python benchmarks/train_memory.py --like-for-like --steps 6
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GRID = {
    "method": ["lora", "qlora"],
    "batch": [1, 8],
    "max_length": [256, 1024],
    "batching": ["padded", "padding_free", "packed"],
}
LIKE_FOR_LIKE = {  # --like-for-like: both trainers with checkpointing off, then both with it on
    "method": ["lora", "qlora"],
    "batch": [8],
    "max_length": [256],
    "batching": ["padded", "padding_free"],
    "checkpointing": [False, True],
}
SMOKE_GRID = {
    "method": ["lora"],
    "batch": [2],
    "max_length": [64],
    "batching": ["padded", "packed"],
}
TOLERANCE = 0.25  # the estimate within 25% of the measured peak


def measure_ours(settings: dict, steps: int, model: str) -> dict:
    """Estimate in this process (as the launcher does), then train in the runner's own."""
    from train_throughput import prepare_ours

    with tempfile.TemporaryDirectory() as tmp:
        session, planned, run = prepare_ours(
            Path(tmp),
            settings["batching"],
            steps,
            model,
            settings["method"],
            settings["batch"],
            settings["max_length"],
            settings.get("checkpointing"),
        )
        estimate = session.estimate(planned)
        if not estimate.fits:  # what the launcher does: refused before launch, not run
            session.close()
            return {"estimate_gb": round(estimate.total_gb, 3), "refused": estimate.warning}
        from workbench.train import launch

        done = subprocess.run(
            [sys.executable, "-m", "workbench.train", str(run.path)],
            env={**launch.runner_env(), "HF_HUB_OFFLINE": "1"},  # as a session starts it
            cwd=str(Path(__file__).resolve().parents[1]),
            capture_output=True,
            text=True,
            check=False,
        )
        status = run.status
        session.close()
        if status.state != "finished":
            return {"error": status.message or done.stderr.strip()[-500:]}
        records = [m for m in run.metrics if "loss" in m]
        from train_throughput import rate

        measured = status.progress.peak_memory_gb
        return rate(records, "tokens_seen", "trained_tokens_seen") | {
            "peak_gb": measured,
            "estimate_gb": round(estimate.total_gb, 3),
            "estimate_error": round(estimate.total_gb / measured - 1, 3),
            "estimate_parts_gb": {
                k: round(getattr(estimate, k), 3)
                for k in ("runtime_gb", "weights_gb", "activations_gb", "logits_gb")
            },
        }


def measure_trl(settings: dict, steps: int, model: str) -> dict:
    """TRL's SFTTrainer defaults (padded batches, full logits) on the same rows and settings."""
    from train_throughput import run_trl

    result = run_trl(
        steps,
        model,
        settings["method"],
        settings["max_length"],
        settings["batch"],
        settings.get("checkpointing"),
    )
    return result | {"peak_gb": result["peak_memory_gb"]}


def alone(kind: str, settings: dict, args) -> dict:
    """One measurement in a fresh process, so no run's memory counts in another's."""
    cmd = [sys.executable, __file__, "--only", kind, "--settings", json.dumps(settings)]
    cmd += ["--steps", str(args.steps), "--model", args.model]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(args) -> dict:
    """Every run of the grid: ours (measured and estimated) and TRL's default, side by side."""
    grid = SMOKE_GRID if args.smoke else LIKE_FOR_LIKE if args.like_for_like else GRID
    rows, trl = [], {}
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values))
        ours = alone("ours", settings, args)
        key = (
            settings["method"],
            settings["batch"],
            settings["max_length"],
            settings.get("checkpointing"),
        )
        if key not in trl and not args.no_trl:
            trl[key] = alone("trl", settings, args)
        theirs = trl.get(key, {})
        row = settings | {"ours": ours, "trl_default": theirs}
        if "peak_gb" in ours and "peak_gb" in theirs:
            row["peak_vs_trl"] = round(ours["peak_gb"] / theirs["peak_gb"], 3)
            row["speed_vs_trl"] = round(ours["real_tokens_per_s"] / theirs["real_tokens_per_s"], 3)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress
    errors = [r["ours"]["estimate_error"] for r in rows if "estimate_error" in r["ours"]]
    return {
        "benchmark": "train_memory",
        "model": Path(args.model).name if Path(args.model).exists() else args.model,
        "steps": args.steps,
        "rows": rows,
        "estimate_within_tolerance": sum(abs(e) <= TOLERANCE for e in errors),
        "estimates": len(errors),
        "worst_estimate_error": max(errors, key=abs) if errors else None,
        "targets": {
            "estimate_error": f"|e| <= {TOLERANCE}",
            "peak_vs_trl": "<= 1.0",
            "packed 8 x 512, embedded model": "<= 4 GB",
            "speed_vs_trl": ">= 1.7 (today's 1.8 less 5%)",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model", default="default", help="hub id or folder; default: embedded")
    parser.add_argument("--random-llama", metavar="DIR", help="benchmark a random ~1B Llama")
    parser.add_argument("--smoke", action="store_true", help="a tiny random model, two runs")
    parser.add_argument("--no-trl", action="store_true", help="ours and the estimate only")
    parser.add_argument(
        "--like-for-like",
        action="store_true",
        help="8 x 256, both trainers with gradient checkpointing off, then both with it on",
    )
    parser.add_argument("--only", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        measure = measure_ours if args.only == "ours" else measure_trl
        print(json.dumps(measure(json.loads(args.settings), args.steps, args.model)))
        return
    from random_llama import write_random_llama

    if args.smoke:
        args.model = write_random_llama(Path(tempfile.mkdtemp()) / "tiny", size="tiny")
    elif args.random_llama:
        args.model = write_random_llama(Path(args.random_llama))
    elif args.model == "default":
        from workbench import models

        args.model = str(models.ensure_embedded_converted())
    print(json.dumps(table(args), indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
