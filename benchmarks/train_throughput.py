"""Training throughput: our runner against TRL's SFTTrainer, same model, data and LoRA.

Like for like first: gradient checkpointing off on both sides, then on on both sides (TRL's
default turns it on; ours plans it off where activations fit, as on this CPU), so that a ratio
never counts TRL recomputing activations as our speed. Then each as it comes by default.

Prints one JSON object. Each contender trains in a process of its own (ours: the runner process,
after the session tokenised in the benchmark's; TRL: its trainer, tokenising in its own), so each
peak memory is the training process's alone. Real tokens are non-padding tokens; throughput is
measured after the first warm-up steps.

    python benchmarks/train_throughput.py [--steps 12] [--model PATH_OR_ID] [--method qlora]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WARMUP_STEPS = 2
BATCH = 8
MAX_LENGTH = 512


def demo_rows(n: int = 600) -> list[dict]:
    """Demo tasks with the handwritten explanations mixed in: lengths skewed by a long tail."""
    from workbench import demo_data

    return [{"messages": r["messages"]} for r in demo_data.generate(n, seed=7)]


def prepare_ours(
    tmp: Path,
    batching: str,
    steps: int,
    model: str,
    method: str,
    batch: int,
    max_length: int,
    checkpointing: bool | None = None,
):
    """A session on the demo rows and a run folder for these settings, not started: the
    tokenising happens here, in the benchmark's process, as the kernel does it for a person.
    `checkpointing`: gradient checkpointing forced on or off; None: as planned.
    Returns (session, planned config, run)."""
    import workbench as wb
    from workbench.train import launch

    s = wb.Session.open(Path(tmp) / "ws")
    s.set_model(model)
    s.set_max_length(max_length)
    s.load_dataset(demo_rows())
    config = wb.TrainConfig(
        method=method,
        batching=batching,
        max_steps=steps,
        batch_size=batch,
        save_steps=10_000,
        learning_rate=1e-3,
        gradient_checkpointing=checkpointing,
    )
    planned = s.plan(config)
    run = launch.prepare_run(
        s.workspace.runs_dir, planned, s.model, s.template, *s._split_examples()
    )
    return s, planned, run


def run_ours(
    batching: str,
    steps: int,
    model: str,
    method: str,
    live_plot: bool,
    batch: int = BATCH,
    max_length: int = MAX_LENGTH,
    checkpointing: bool | None = None,
) -> dict:
    """Our runner in a process of its own (`python -m workbench.train RUN_DIR`), as a person's
    run is: its peak memory is the runner's alone (status.progress, written by the runner).
    `checkpointing`: gradient checkpointing forced on or off; None: as planned."""
    with tempfile.TemporaryDirectory() as tmp:
        session, _, run = prepare_ours(
            Path(tmp), batching, steps, model, method, batch, max_length, checkpointing
        )
        watcher = LiveWatcher(run) if live_plot else None
        from workbench.train import launch

        subprocess.run(
            [sys.executable, "-m", "workbench.train", str(run.path)],
            env={**launch.runner_env(), "HF_HUB_OFFLINE": "1"},  # as a session starts it
            cwd=str(Path(__file__).resolve().parents[1]),
            check=False,
        )
        if watcher:
            watcher.stop()
        records = [m for m in run.metrics if "loss" in m]
        assert run.status.state == "finished", run.status.message + run.log_tail()
        progress = dataclasses.asdict(run.status.progress)
        memory = {k: v for k, v in progress.items() if k.startswith("peak_") and v is not None}
        session.close()
        return (
            rate(records, "tokens_seen", "trained_tokens_seen")
            | memory
            | {"watcher_redraws": watcher.redraws if watcher else 0}
        )


class LiveWatcher:
    """A TrainingLauncher-like plot fed from the run folder twice a second, in this process."""

    def __init__(self, run):
        from widgets.train.live_plot import LossPlot

        self.run, self.plot, self.redraws = run, LossPlot("plotly"), 0
        self.plot.show_runs(run.name, {})
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            fresh = self.run.new_metrics()
            if fresh:
                self.plot.append(self.run.name, fresh)
                self.redraws += 1

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


def run_trl(
    steps: int,
    model: str,
    method: str,
    max_length: int = MAX_LENGTH,
    batch: int = BATCH,
    checkpointing: bool | None = None,
) -> dict:
    """TRL SFTTrainer with its defaults (padding to the longest row, completion-only loss,
    gradient checkpointing unless `checkpointing` is False); bf16 on a GPU that has it, as TRL
    defaults, and the CPU flags TRL needs without one."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from workbench import models

    spec = models.as_spec(model) if model != "default" else models.DEFAULT
    tokenizer = models.load_tokenizer(spec)
    base = models.load_model(spec, quantize_4bit=method == "qlora")
    rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in demo_rows()]
    times: list[tuple[float, int, int]] = []
    counts = {"tokens": 0, "trained": 0}

    class StepTimes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append((time.time(), counts["tokens"], counts["trained"]))

    config = SFTConfig(
        output_dir=tempfile.mkdtemp(),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=1e-3,
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        max_length=max_length,
        disable_tqdm=True,
        **({} if checkpointing is None else {"gradient_checkpointing": checkpointing}),
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = SFTTrainer(
        model=base,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[StepTimes()],
    )
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        counts["tokens"] += int(batch["attention_mask"].sum())
        counts["trained"] += int((batch["labels"] != -100).sum())
        return batch

    trainer.data_collator = counting
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    records = [
        {"time": t, "tokens_seen": n, "trained_tokens_seen": m, "loss": 0.0} for t, n, m in times
    ]
    from workbench.train.runner.callbacks import peak_memory

    result = rate(records, "tokens_seen", "trained_tokens_seen") | peak_memory()
    result["final_loss"] = sum(losses[-3:]) / len(losses[-3:])
    return result


def rate(records: list[dict], tokens_key: str, trained_key: str) -> dict:
    """Real and trained tokens per second between the end of warm-up and the last step."""
    first, last = records[WARMUP_STEPS - 1], records[-1]
    span = last["time"] - first["time"]
    losses = [r["loss"] for r in records[-3:]]
    return {
        "real_tokens_per_s": (last[tokens_key] - first[tokens_key]) / span,
        "trained_tokens_per_s": (last[trained_key] - first[trained_key]) / span,
        "final_loss": sum(losses) / len(losses),
    }


CONTENDERS = {
    # like for like first: gradient checkpointing off on both sides, then on on both sides
    "ours_padding_free_no_checkpointing": lambda a: run_ours(
        "padding_free", a.steps, a.model, a.method, False, checkpointing=False
    ),
    "trl_no_checkpointing": lambda a: run_trl(a.steps, a.model, a.method, checkpointing=False),
    "ours_padding_free_checkpointing": lambda a: run_ours(
        "padding_free", a.steps, a.model, a.method, False, checkpointing=True
    ),
    # then each as it comes: ours as planned (checkpointing off on this CPU), TRL's default (on)
    "ours_padding_free": lambda a: run_ours("padding_free", a.steps, a.model, a.method, False),
    "ours_packed": lambda a: run_ours("packed", a.steps, a.model, a.method, False),
    "ours_padded": lambda a: run_ours("padded", a.steps, a.model, a.method, False),
    "ours_padding_free_live_plot": lambda a: run_ours(
        "padding_free", a.steps, a.model, a.method, True
    ),
    "trl_default": lambda a: run_trl(a.steps, a.model, a.method),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--model", default="default", help="hub id or folder; default: the embedded model"
    )
    parser.add_argument("--method", default="qlora", choices=["qlora", "lora"])
    parser.add_argument(
        "--random-llama",
        metavar="DIR",
        help="write a randomly initialised ~1B Llama to DIR and benchmark it",
    )
    parser.add_argument("--only", help="run one contender in this process (used internally)")
    args = parser.parse_args()
    if args.random_llama and not args.only:
        from random_llama import write_random_llama

        args.model = write_random_llama(Path(args.random_llama))
    if args.model == "default":
        from workbench import models

        args.model = str(models.ensure_embedded_converted())
    if args.only:
        print(json.dumps(CONTENDERS[args.only](args)))
        return
    results = {}
    for name in CONTENDERS:
        cmd = [
            sys.executable,
            __file__,
            "--only",
            name,
            "--steps",
            str(args.steps),
            "--model",
            args.model,
            "--method",
            args.method,
        ]
        done = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        if done.returncode != 0:
            results[name] = {"error": done.stderr.strip().splitlines()[-1:]}
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(summarise(results, args), indent=2))


def summarise(results: dict, args) -> dict:
    def tps(name: str) -> float:
        return results.get(name, {}).get("real_tokens_per_s", float("nan"))

    return {
        "benchmark": "train_throughput",
        "model": args.model
        if "/" not in args.model or not Path(args.model).exists()
        else Path(args.model).name,
        "method": args.method,
        "steps": args.steps,
        "batch_size": BATCH,
        "results": results,
        "ratios": {
            "like_for_like_no_checkpointing": tps("ours_padding_free_no_checkpointing")
            / tps("trl_no_checkpointing"),
            "like_for_like_checkpointing": tps("ours_padding_free_checkpointing")
            / tps("trl_default"),
            "padding_free_vs_trl_default": tps("ours_padding_free") / tps("trl_default"),
            "packed_vs_trl_default": tps("ours_packed") / tps("trl_default"),
            "padded_vs_trl_default": tps("ours_padded") / tps("trl_default"),
            "live_plot_cost": 1 - tps("ours_padding_free_live_plot") / tps("ours_padding_free"),
        },
        "targets": {
            "like_for_like_no_checkpointing": ">= 1.0",
            "like_for_like_checkpointing": ">= 1.0",
            "padding_free_vs_trl_default": ">= 1.3",
            "padded_vs_trl_default": ">= 0.95",
            "live_plot_cost": "<= 0.03",
        },
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
