"""The GPU check: every path a Colab or cloud user takes, one section at a time, as JSON.

Each section (benchmarks/gpu_sections.py) runs in its own process, so its peak memory is its
own and one failing section does not hide the others, on a random Llama written locally (no
download is possible on a lent device): ~1B parameters on a GPU, a small one with `--dry-run`,
which runs the same code on the CPU in a few minutes so the script cannot rot between lent
devices. Exit code 1 when any section failed.

    python benchmarks/gpu_check.py [--dry-run] [--only a,b] [--steps N] [--fail SECTION]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the sections and the other benchmark scripts

from gpu_sections import SECTION_TIMEOUT_S, SECTIONS, Context, device  # noqa: E402

# What every section imports. The dry run's sections fork from a server that imported these
# once (seconds each, for a section that trains for seconds). A GPU run preloads nothing: the
# import of bitsandbytes (through peft) initialises CUDA, which a forked child cannot reuse.
DRY_RUN_PRELOAD = ["torch", "transformers", "peft", "trl", "datasets", "workbench.train.runner"]


def run_section(name: str, ctx: Context, send) -> None:
    """In the section's process: send ("ok", figures) or ("error", the traceback's last lines).
    Its stdout goes to stderr: the report is the only thing on the script's stdout."""
    os.dup2(2, 1)
    try:
        if ctx.fail == name:
            raise RuntimeError("planted failure (--fail)")
        send.send(("ok", SECTIONS[name](ctx)))
    except BaseException:  # noqa: BLE001 - every failure of a section is reported, not raised
        send.send(("error", " | ".join(traceback.format_exc().strip().splitlines()[-3:])))


def in_process(name: str, ctx: Context, processes) -> dict:
    """A section in a process of its own, timed; a failure or a timeout is reported."""
    receive, send = processes.Pipe(duplex=False)
    child = processes.Process(target=run_section, args=(name, ctx, send), name=name)
    start = time.time()
    child.start()
    send.close()
    try:
        outcome, value = receive.recv() if receive.poll(SECTION_TIMEOUT_S * 2) else ("timeout", "")
    except EOFError:  # the process died without a word (killed, or a crash in native code)
        outcome, value = "error", "the section's process ended without a result"
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    seconds = time.time() - start
    if outcome == "ok":
        return {"ok": True, **value, "seconds": seconds}
    error = "timed out" if outcome == "timeout" else value
    return {"ok": False, "seconds": seconds, "error": error}


def summary(results: dict) -> dict:
    """Ours against TRL, and each estimate against its measured peak."""
    ours, trl = results.get("qlora_defaults", {}), results.get("trl_defaults", {})
    out = {}
    if ours.get("ok") and trl.get("ok"):
        out["tokens_per_s_vs_trl"] = ours["real_tokens_per_s"] / trl["real_tokens_per_s"]
        out["peak_vs_trl"] = ours["peak_gb"] / trl["peak_gb"]
        out["final_loss"] = {"ours": ours["final_loss"], "trl": trl["final_loss"]}
    out["estimate_vs_peak"] = {
        name: r["estimate_gb"] / r["peak_gb"]
        for name, r in results.items()
        if r.get("ok") and r.get("estimate_gb") and r.get("peak_gb")
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="a small random model on the CPU")
    parser.add_argument("--only", help="comma-separated sections (default: all)")
    parser.add_argument("--steps", type=int, help="training steps (default 30, dry run 6)")
    parser.add_argument("--fail", help="make this section fail on purpose")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from random_llama import write_random_llama

    names = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}")
    work = tempfile.mkdtemp(prefix="gpu-check-")
    size = "small" if args.dry_run else "1b"
    model = write_random_llama(Path(work) / f"random-llama-{size}", size=size)
    ctx = Context(model, args.steps or (6 if args.dry_run else 30), args.dry_run, args.fail, work)
    processes = multiprocessing.get_context("forkserver")
    processes.set_forkserver_preload(DRY_RUN_PRELOAD if args.dry_run else [])
    results = {name: in_process(name, ctx, processes) for name in names}
    ok = all(r["ok"] for r in results.values())
    print(
        json.dumps(
            {
                "benchmark": "gpu_check",
                "device": device(),
                "dry_run": args.dry_run,
                "ok": ok,
                "sections": results,
                "summary": summary(results),
            },
            indent=2,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
