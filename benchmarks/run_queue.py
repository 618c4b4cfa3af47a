"""Runs take turns: three runs started back to back against the sum of each run alone.

Prints one JSON object: each run's length alone, the total when the three are started back to
back through the session (the run queue), their ratio (target: at most 1.15), and the most
runner processes ever alive and training at once (target: 1 on a CPU machine). A learning-rate
sweep, as people start one after a first run. `--unqueued` also times the three started at once
without the queue (what happened before the queue: they thrash).

    python benchmarks/run_queue.py [--steps 30] [--model PATH_OR_ID]
    python benchmarks/run_queue.py --smoke      # the tiny random Llama, 2 steps: a quick check
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RATES = (1e-4, 3e-4, 1e-3)
POLL_SECONDS = 0.05


def alive(pid: int | None) -> bool:
    """The process exists and is no zombie (read from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (OSError, TypeError):
        return False


def open_session(folder: Path, model: str):
    import workbench as wb
    from workbench import demo_data

    s = wb.Session.open(folder)
    s.set_model(model)
    s.set_max_length(128)
    s.load_dataset([{"messages": r["messages"]} for r in demo_data.generate(200, seed=7)])
    return s


def config(rate: float, steps: int):
    import workbench as wb

    return wb.TrainConfig(
        method="lora", max_steps=steps, batch_size=4, learning_rate=rate, save_steps=10_000
    )


def watch(runs: list, timeout: float) -> dict:
    """Poll until every run ended and its process exited; seconds, and the most at once."""
    started, most_alive, most_training = time.time(), 0, 0
    while True:
        statuses = [r.folder.readable_status() for r in runs]
        pids = [{s.pid, s.worker_pid} - {None} for s in statuses]
        most_alive = max(most_alive, sum(any(alive(p) for p in group) for group in pids))
        most_training = max(most_training, sum(s.state == "running" for s in statuses))
        ended = not any(r.status.active for r in runs)
        if ended and not any(alive(p) for group in pids for p in group):
            break
        if time.time() - started > timeout:
            raise TimeoutError(f"runs still active after {timeout:.0f} s: {statuses}")
        time.sleep(POLL_SECONDS)
    return {
        "seconds": round(time.time() - started, 2),
        "most_alive": most_alive,
        "most_training": most_training,
        "states": [r.status.state for r in runs],
        "ends_in_start_order": [s.ended for s in statuses]
        == sorted(s.ended or 0 for s in statuses),
    }


def alone(model: str, steps: int, timeout: float) -> list[float]:
    """Each run alone, in a fresh workspace: seconds from train() until its process exited."""
    seconds = []
    for rate in RATES:
        with tempfile.TemporaryDirectory() as tmp, open_session(Path(tmp) / "ws", model) as s:
            start = time.time()
            run = s.train(config(rate, steps))
            watch([run], timeout)
            seconds.append(round(time.time() - start, 2))
    return seconds


def back_to_back(model: str, steps: int, timeout: float, queued: bool = True) -> dict:
    """The three started one after the other from one session (queued, or all at once)."""
    from workbench.train import launch

    with tempfile.TemporaryDirectory() as tmp, open_session(Path(tmp) / "ws", model) as s:
        start = time.time()
        if queued:
            runs = [s.train(config(rate, steps)) for rate in RATES]
        else:  # as before the queue: every runner started at once
            runs = [launch.start_runner(s.prepare(config(rate, steps))) for rate in RATES]
        result = watch(runs, timeout)
        result["seconds"] = round(time.time() - start, 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--model", default=None, help="default: the embedded SmolLM2")
    parser.add_argument("--smoke", action="store_true", help="tiny random Llama, 2 steps")
    parser.add_argument("--unqueued", action="store_true", help="also time them without queue")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    from workbench import models
    from workbench.train.distributed import machine_devices

    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            from benchmarks.random_llama import write_random_llama

            model, steps = write_random_llama(Path(tmp) / "tiny", size="tiny"), 2
        else:
            model = args.model or str(models.ensure_embedded_converted())
            steps = args.steps
        each = alone(model, steps, args.timeout)
        queued = back_to_back(model, steps, args.timeout)
        result = {
            "benchmark": "run_queue",
            "model": str(model),
            "steps": steps,
            "devices": machine_devices(),
            "alone_s": each,
            "sum_alone_s": round(sum(each), 2),
            "queued_total_s": queued["seconds"],
            "ratio": round(queued["seconds"] / sum(each), 3),
            "target_ratio": 1.15,
            "most_runners_alive": queued["most_alive"],
            "most_runners_training": queued["most_training"],
            "states": queued["states"],
            "ends_in_start_order": queued["ends_in_start_order"],
        }
        if args.unqueued:
            unqueued = back_to_back(model, steps, args.timeout, queued=False)
            result["unqueued_total_s"] = unqueued["seconds"]
            result["unqueued_ratio"] = round(unqueued["seconds"] / sum(each), 3)
            result["unqueued_most_runners_alive"] = unqueued["most_alive"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
