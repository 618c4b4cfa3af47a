"""Export cost and fidelity: a merged export against PEFT by hand, GGUF size and speed, parity.

Prints one JSON object. For each model (the embedded SmolLM2, and a random ~1B Llama unless
--skip-1b): the time and peak memory of `session.export_model(run, format="merged")` against
PEFT's `merge_and_unload()` + `save_pretrained()` written by hand, each in its own process (ours
is timed whole, and without its parity check, from its progress stages); the GGUF writer's time
and file size for F16 and Q8_0 against the expected bytes per parameter; and, on the embedded
model, the parity check (K of K) of merged, GGUF F16 and GGUF Q8_0 exports.

The embedded model's adapter is real: a short QLoRA run on the demo data (--train-steps), or an
adapter folder (--adapter); --train-steps 0 uses a random LoRA adapter instead (no training;
its answers are noise, so parity of a lossy format may well fail on it).

    python benchmarks/export.py                   # embedded (trains 40 steps) and 1B
    python benchmarks/export.py --skip-1b --train-steps 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKILLS = ["change_case", "format_date", "json_to_pairs"]
BYTES_PER_PARAM = {"f16": 2.0, "q8_0": 34 / 32}  # Q8_0: 32 int8 values and an f16 scale


def peak_rss_gb() -> float:
    """This process's own peak resident memory, in GiB (read after the work it measures)."""
    from workbench.resources import peak_rss_gb as peak  # imported late: adds nothing to the peak

    return peak()


# -- the workspace: a session, eval rows for the probes, a finished run with an adapter --------
def prepare(model: str, folder: Path, train_steps: int, adapter: str | None) -> str:
    """A workspace at `folder` with a finished run holding an adapter of `model`; its name."""
    import workbench as wb
    from workbench import demo_data, models

    with wb.Session.open(folder) as session:  # closed: each contender opens it in turn
        session.set_model(model)
        session.load_dataset(demo_data.generate(600, seed=1, tasks=SKILLS, handwritten=False))
        session.split(eval_fraction=0.05, seed=0)
        session.set_max_length(128)
        if adapter:
            return str(Path(adapter).resolve())
        if not train_steps:
            return fake_run(session, models)
        run = session.train(wb.TrainConfig(method="qlora", max_steps=train_steps))
        status = run.wait()
        if status.state != "finished":
            raise SystemExit(f"training failed: {status.message}\n{run.log_tail()}")
        return run.name


def fake_run(session, models) -> str:
    """A finished run folder holding a random LoRA adapter (rank 16, every linear layer)."""
    from workbench.answers.adapters import write_random_adapter
    from workbench.train import TrainConfig
    from workbench.train.folder import RunFolder, RunInfo, RunStatus

    folder = RunFolder(session.workspace.runs_dir / "run-1")
    folder.root.mkdir(parents=True)
    train = TrainConfig(method="qlora", max_steps=1)
    folder.write_info(RunInfo("run-1", train, session.model, data={"train": {"rows": 0}}))
    folder.write_status(RunStatus("finished"))
    base = models.load_model(session.model, device="cpu")
    write_random_adapter(base, folder.adapter_dir, session.model, session.template, seed=1)
    return "run-1"


# -- contenders, each in its own process -------------------------------------------------------
def ours(workspace: str, run: str, out: str, export_format: str, quantization: str) -> dict:
    """session.export_model, timed whole and by stage; its parity line."""
    import workbench as wb
    from workbench.export import ParityError

    marks: dict[str, float] = {}
    started = time.perf_counter()
    session = wb.Session.open(workspace)
    try:
        export = session.export_model(
            run,
            out,
            format=export_format,
            quantization=quantization,
            progress=lambda stage, done, total: marks.setdefault(stage, time.perf_counter()),
        )
    except ParityError as e:
        return {"error": str(e)[:600], "peak_rss_gb": peak_rss_gb()}
    total = time.perf_counter() - started
    stages = dict(zip(marks, [b - a for a, b in zip(marks.values(), [*marks.values()][1:])]))
    core = marks["reference"] - started + stages["write"]  # opening, loading, merging, writing
    return {
        "seconds": total,
        "seconds_without_parity": core,
        "stages_s": stages,
        "peak_rss_gb": peak_rss_gb(),
        "bytes": export.size,
        "parity": export.parity.line(),
        "agree": export.parity.agree,
        "probes": export.parity.probes,
    }


def by_hand(model: str, adapter: str, out: str) -> dict:
    """What a person writes without the workbench: PEFT merge_and_unload + save_pretrained."""
    started = time.perf_counter()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model, dtype="float32")
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(out, max_shard_size="5GB")
    AutoTokenizer.from_pretrained(model).save_pretrained(out)
    return {"seconds": time.perf_counter() - started, "peak_rss_gb": peak_rss_gb()}


def gguf_writer(model: str, adapter: str, out: str, quantization: str) -> dict:
    """The GGUF writer alone on the merged model: seconds, file size, bytes per parameter."""
    import workbench as wb
    from workbench import models
    from workbench.export.gguf import write_gguf
    from workbench.export.merged import load_with_adapters, merge

    spec = models.as_spec(model)
    tokenizer = models.load_tokenizer(spec)
    merged = merge(load_with_adapters(spec, [Path(adapter)], "cpu"))
    params = sum(p.numel() for p in merged.parameters())
    started = time.perf_counter()
    write_gguf(merged, tokenizer, wb.Template.load(adapter), Path(out), quantization, "bench")
    seconds = time.perf_counter() - started
    size = Path(out).stat().st_size
    return {
        "seconds": seconds,
        "bytes": size,
        "params": params,
        "bytes_per_param": size / params,
        "expected_bytes_per_param": BYTES_PER_PARAM[quantization],
    }


# -- driver -------------------------------------------------------------------------------------
def in_subprocess(*args: str) -> dict:
    """Run one contender in a fresh process and read its JSON line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, __file__, "--only", *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-3:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_model(model: str, tmp: Path, train_steps: int, adapter: str | None, parity: bool) -> dict:
    """Every figure for one model, each contender in its own process."""
    workspace = tmp / "workspace"
    run = prepare(model, workspace, train_steps, adapter)
    adapter_dir = run if Path(run).is_dir() else str(workspace / "runs" / run / "adapter")
    result = {
        "ours_merged": in_subprocess(
            "ours", str(workspace), run, str(tmp / "ours"), "merged", "f16"
        ),
        "by_hand_merged": in_subprocess("by_hand", model, adapter_dir, str(tmp / "hand")),
        "gguf_writer": {
            q: in_subprocess("gguf", model, adapter_dir, str(tmp / f"w.{q}.gguf"), q)
            for q in BYTES_PER_PARAM
        },
    }
    if parity:
        result["parity_gguf"] = {
            q: in_subprocess("ours", str(workspace), run, str(tmp / f"g-{q}"), "gguf", q)
            for q in BYTES_PER_PARAM
        }
    ours_, hand = result["ours_merged"], result["by_hand_merged"]
    if "seconds" in ours_ and "seconds" in hand:
        result["figures"] = {
            "time_ratio_whole": ours_["seconds"] / hand["seconds"],
            "time_ratio_without_parity": ours_["seconds_without_parity"] / hand["seconds"],
            "memory_ratio": ours_["peak_rss_gb"] / hand["peak_rss_gb"],
        }
    return result


def run_one(args) -> dict:
    """The contender named by --only, in this process."""
    kind, *rest = args.only
    if kind == "ours":
        return ours(*rest)
    if kind == "by_hand":
        return by_hand(*rest)
    return gguf_writer(*rest)


def main() -> None:
    """Prepare each model's workspace, run every contender, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=40, help="0: a random adapter")
    parser.add_argument("--adapter", help="a real adapter folder of the embedded model")
    parser.add_argument("--random-llama", help="folder for the random ~1B Llama (written once)")
    parser.add_argument("--skip-1b", action="store_true", help="the embedded model only")
    parser.add_argument("--only", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args)))
        return
    from workbench import models

    report: dict = {"benchmark": "export", "targets": {"figures.*_ratio (merged)": "<= 1.1"}}
    with tempfile.TemporaryDirectory() as tmp:
        embedded = str(models.ensure_embedded_converted())
        report["embedded"] = bench_model(
            embedded, Path(tmp) / "embedded", args.train_steps, args.adapter, parity=True
        )
        report["embedded"]["adapter"] = args.adapter or (
            "random" if not args.train_steps else f"qlora {args.train_steps} steps"
        )
        if not args.skip_1b:
            from random_llama import write_random_llama

            big = write_random_llama(Path(args.random_llama or Path(tmp) / "llama-1b"))
            report["random_1b"] = bench_model(big, Path(tmp) / "1b", 0, None, parity=False)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
