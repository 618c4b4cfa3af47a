"""Benchmark: do the hardware defaults teach the default model a skill in a short run? Prints JSON.

A session on the embedded model learns three verifiable demo skills (change_case, format_date,
json_to_pairs) with the launcher's defaults for this hardware and only the step count set. The
held-out exact match of the base model and of the adapter is measured on the same eval rows.
With --trl, TRL's SFTTrainer with the usual recipe trains on the same rows in the same run and is
scored alike: every comparison printed is between figures this run measured.

    python benchmarks/defaults_skill.py [--steps 150] [--rows 1300] [--method lora|qlora] [--trl]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

SKILLS = ["change_case", "format_date", "json_to_pairs"]
EVAL_ROWS = 100


def main() -> None:
    """Train with the defaults for each step count, evaluate base and adapters, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[150], help="one run per count")
    parser.add_argument("--rows", type=int, default=1300, help="training plus eval rows")
    parser.add_argument("--method", help="override the hardware default method")
    parser.add_argument("--trl", action="store_true", help="also the reference recipe in TRL")
    args = parser.parse_args()

    import workbench as wb
    from workbench import demo_data
    from workbench.train.estimate import detect_device

    _, device_name, _ = detect_device()
    report = {"benchmark": "defaults_skill", "device": device_name, "skills": SKILLS}
    # Trainers print their logs; stdout carries only the JSON report.
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        s = wb.Session.open(Path(tmp) / "ws")
        s.load_dataset(demo_data.generate(args.rows, seed=7, tasks=SKILLS, handwritten=False))
        s.split(eval_fraction=EVAL_ROWS / args.rows, seed=0)
        report["eval_rows"] = len(s.split_rows[1])
        report["runs"] = [
            train_and_score(s, device_name, steps, args.method) for steps in args.steps
        ]
        if args.trl:
            trl = train_trl_and_score(s, max(args.steps), Path(tmp))
            report["trl_usual_recipe"] = trl
            report["vs_trl"] = [against(run, trl) for run in report["runs"]]
        report["exact_match_base"] = s.evaluate("base").score
        s.close()
    print(json.dumps(report, indent=2))


def against(run: dict, trl: dict) -> dict:
    """One of our runs beside TRL's, both measured here: exact match and minutes."""
    if "exact_match" not in run:
        return {"steps": run["steps"], "state": run.get("state")}
    return {
        "steps": run["steps"],
        "trl_steps": trl["steps"],
        "exact_match_minus_trl": run["exact_match"] - trl["exact_match"],
        "minutes_vs_trl": run["minutes_to_adapter"] / trl["minutes"],
    }


def train_trl_and_score(session, steps: int, tmp: Path) -> dict:
    """TRL's SFTTrainer with the usual recipe (4-bit, r16, batch 8, lr 1e-3 cosine,
    completion-only loss) on the same training rows, scored on the same eval rows."""
    import datasets
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from workbench import models

    train_rows = [session.dataset[i]["messages"] for i in session.split_rows[0]]
    rows = [{"prompt": m[:-1], "completion": m[-1:]} for m in train_rows]
    config = SFTConfig(
        output_dir=str(tmp / "trl"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        lr_scheduler_type="cosine",
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    started = time.monotonic()
    trainer = SFTTrainer(
        model=models.load_model(session.model, quantize_4bit=True),
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=models.load_tokenizer(session.model),
        peft_config=lora,
    )
    trainer.train()
    trainer.model.save_pretrained(tmp / "trl-adapter")
    minutes = (time.monotonic() - started) / 60
    return {"steps": steps, "minutes": round(minutes, 2)} | scores_of(session, tmp / "trl-adapter")


def scores_of(session, model: str | Path) -> dict:
    """Held-out exact match of one contestant, overall and per skill, with a few misses."""
    evaluation = session.evaluate(model)
    (results,) = evaluation.results.values()
    by_skill: dict[str, list[float]] = {}
    for result in results:
        by_skill.setdefault(session.dataset[result.row]["task"], []).append(result.score)
    return {
        "exact_match": evaluation.score,
        "exact_match_by_skill": {k: sum(v) / len(v) for k, v in sorted(by_skill.items())},
        "some_misses": [
            {"reference": r.reference, "answer": r.answer} for r in results if not r.score
        ][:5],
    }


def train_and_score(session, device_name: str, steps: int, method: str | None) -> dict:
    """One run with the planned defaults and `steps`; its time, losses and held-out score.

    `device_name` is reported only: the session's plan chooses the hardware defaults.
    """
    from workbench.train import TrainConfig

    started = time.monotonic()
    run = session.train(TrainConfig(max_steps=steps, method=method))
    status = run.wait(timeout=3600)
    minutes = (time.monotonic() - started) / 60
    if status.state != "finished":
        return {"steps": steps, "state": status.state, "message": status.message}
    losses = [m["loss"] for m in run.metrics if m.get("loss") is not None]
    scores = scores_of(session, run.name)
    config = run.config
    return {
        "steps": steps,
        "config": {
            "method": config.method,
            "learning_rate": config.learning_rate,
            "batch_size": config.batch_size,
            "batching": config.batching,
        },
        "minutes_to_adapter": round(minutes, 2),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        **scores,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
