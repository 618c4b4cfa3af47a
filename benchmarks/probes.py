"""Probe overhead: the same run at the launcher's defaults with probes (the default 4) and
without (probes=0), one after the other; target: probes add at most 10% to the wall time.

Each run trains in the runner's own process on the demo data with an eval split, so both runs
evaluate the eval loss alike and differ only in the probe answers. The verdict is the probes'
own seconds (timed in the runner, metrics.jsonl's probe_seconds) over the run's wall time; the
ratio of the two wall times is printed beside it (it moves with whatever else the machine runs).

    python benchmarks/probes.py [--steps 50] [--model PATH_OR_ID]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

TARGET = 0.10  # probes add at most this share of the run's wall time


def timed_run(root: Path, probes: int, steps: int, model: str | None) -> dict:
    """Train `steps` steps at the defaults with `probes`; the wall time from start to the end."""
    import workbench as wb
    from workbench import demo_data

    with wb.Session.open(root / f"ws-{probes}") as session:
        if model:
            session.set_model(model)
        session.load_dataset(demo_data.generate(200, seed=3))
        session.split(eval_fraction=0.1, seed=0)
        started = time.perf_counter()
        run = session.train(wb.TrainConfig(max_steps=steps, probes=probes))
        status = run.wait(timeout=3600)
        wall = time.perf_counter() - started
        evaluations = len(run.probe_history())
        probing = sum(m.get("probe_seconds", 0) for m in run.metrics)
    return {
        "state": status.state,
        "wall_s": round(wall, 1),
        "evaluations_with_probes": evaluations,
        "probe_seconds": round(probing, 1),
        "probe_share": round(probing / wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        without = timed_run(Path(tmp), 0, args.steps, args.model)
        with_probes = timed_run(Path(tmp), 4, args.steps, args.model)
    share = with_probes["probe_share"]  # measured inside the run: robust to a busy machine
    print(
        json.dumps(
            {
                "steps": args.steps,
                "without_probes": without,
                "with_4_probes": with_probes,
                "wall_ratio": round(with_probes["wall_s"] / without["wall_s"], 3),
                "probe_share_of_wall_time": share,
                "target": f"<= {TARGET:.0%}",
                "ok": share <= TARGET,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
