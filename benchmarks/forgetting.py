"""Benchmark: does a run forget the rest while it learns its task, and does replay prevent it?

The embedded model learns the three demo skills with the launcher's defaults (150 steps, as in
defaults_skill.py), each run alone, with replay 0, 0.1 and 0.2, and with no replay at a quarter
of the planned learning rate (the folklore remedy). For each: the task's held-out exact match,
the keep drift at the end (nats per token of the base's own answers to the measuring keep
prompts), the share of keep answers that changed, the wall time and the share of it spent
measuring drift. The base's answers to the keep set are made once first (timed on their own),
so every run finds them cached. Prints JSON; the verdicts compare the runs with each other, like
for like.

    python benchmarks/forgetting.py [--steps 150] [--rows 1300] [--only replay-0,replay-0.1]
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
VARIANTS = {  # name -> TrainConfig changes beside max_steps
    "replay-0": {"replay": 0.0},
    "replay-0.1": {"replay": 0.1},
    "replay-0.2": {"replay": 0.2},
    "lower-lr": {"replay": 0.0, "learning_rate_factor": 0.25},
}
SHOWN_ANSWERS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rows", type=int, default=1300, help="training plus eval rows")
    parser.add_argument("--only", help="comma-separated variants (default: all)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(VARIANTS)

    import workbench as wb
    from workbench import demo_data
    from workbench.keep import bundled_keep_set

    report: dict = {"benchmark": "forgetting", "steps": args.steps, "skills": SKILLS}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        s = wb.Session.open(Path(tmp) / "ws")
        s.load_dataset(demo_data.generate(args.rows, seed=7, tasks=SKILLS, handwritten=False))
        s.split(eval_fraction=EVAL_ROWS / args.rows, seed=0)
        started = time.monotonic()
        s.base_answers(bundled_keep_set().prompts)  # once per workspace: runs compare like for like
        report["base_answers_s"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        report["planned_learning_rate"] = s.plan(wb.TrainConfig()).learning_rate
        report["runs"] = {name: one_run(s, args.steps, VARIANTS[name]) for name in names}
        report["total_minutes"] = round((time.monotonic() - started) / 60, 1)
        s.close()
    report["verdicts"] = verdicts(report["runs"])
    print(json.dumps(report, indent=2, ensure_ascii=False))


def one_run(session, steps: int, variant: dict) -> dict:
    """Train one variant, then its exact match, drift, changed share, time and measuring cost."""
    import workbench as wb

    changes = {k: v for k, v in variant.items() if k != "learning_rate_factor"}
    if "learning_rate_factor" in variant:
        planned = session.plan(wb.TrainConfig()).learning_rate
        changes["learning_rate"] = planned * variant["learning_rate_factor"]
    started = time.monotonic()
    run = session.train(wb.TrainConfig(max_steps=steps, **changes))
    status = run.wait(timeout=3 * 3600)
    wall = time.monotonic() - started
    if status.state != "finished":
        return {"state": status.state, "message": status.message}
    metrics = run.metrics
    drift = [(m["step"], m["keep_drift"]) for m in metrics if "keep_drift" in m]
    costs = ("keep_drift_seconds", "keep_answer_seconds")
    measuring = sum(m.get(key, 0.0) for m in metrics for key in costs)
    changed = [m["keep_changed"] for m in metrics if "keep_changed" in m]
    report = session.keep_report(run)
    pairs = [
        {"prompt": p[-1]["content"], "base": b, "tuned": t}
        for p, b, t in zip(report.prompts, *report.answers.values())
        if b != t
    ]
    return {
        "config": {"replay": run.config.replay, "learning_rate": run.config.learning_rate},
        "exact_match": session.evaluate(run.name).score,
        "keep_drift": drift[-1][1] if drift else None,
        "drift_curve": drift,
        "keep_changed": changed[-1] if changed else None,
        "wall_s": round(wall, 1),
        "measuring_share": round(measuring / wall, 4),
        "replay_rows": run.folder.read_info().data["train"].get("replay_rows", 0),
        "changed_answers": pairs[:SHOWN_ANSWERS],
    }


def verdicts(runs: dict) -> dict:
    """The issue's targets, each a comparison between runs measured here."""
    none, out = runs.get("replay-0", {}), {}
    if "keep_drift" not in none:
        return out
    for name in ("replay-0.1", "replay-0.2"):
        run = runs.get(name, {})
        if "keep_drift" not in run:
            continue
        points = 100 * (run["exact_match"] - none["exact_match"])
        out[name] = {
            "drift_vs_no_replay": round(run["keep_drift"] / none["keep_drift"], 3),
            "drift_at_most_half": run["keep_drift"] <= none["keep_drift"] / 2,
            "exact_match_points_vs_no_replay": round(points, 1),
            "exact_match_within_3_points": points >= -3,
            "wall_vs_no_replay": round(run["wall_s"] / none["wall_s"], 3),
            "wall_at_most_1_2x": run["wall_s"] <= 1.2 * none["wall_s"],
        }
    out["measuring_at_most_10_percent"] = all(
        r["measuring_share"] <= 0.10 for r in runs.values() if "measuring_share" in r
    )
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
