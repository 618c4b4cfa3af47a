"""How far a correct export's logits move from the adapter's, by tensor type: the parity tolerance.

The embedded model is tuned briefly (LoRA, a few steps on short demo rows, where answers
that part at a near tie were seen), then exported merged in float32 and as GGUF F16, BF16 and
Q8_0. For each, the parity check's own figures: the largest logit difference along the adapter's
answers (teacher forcing), the greedy answers that agree, the adapter's margin where the others
part, and the tolerance the check applies. The float32 export is the
baseline in the same run: what no rounding of the weights moves. The tolerances in
workbench/export/parity.py are about 4x the largest figure this measures for each type.

    python benchmarks/export_tolerance.py                  # 2 training steps, 8 probes of 48 tokens
    python benchmarks/export_tolerance.py --steps 40 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

FORMATS = [("merged", "float32"), ("gguf", "f16"), ("gguf", "bf16"), ("gguf", "q8_0")]


def tuned_session(folder: Path, steps: int, seed: int):
    """A session on the embedded model with a finished LoRA run of `steps` steps."""
    import workbench as wb
    from workbench import demo_data

    session = wb.Session.open(folder)
    session.load_dataset(demo_data.generate(16, seed=seed, handwritten=False))
    session.set_max_length(96)
    config = wb.TrainConfig(method="lora", max_steps=steps, batch_size=4, keep_set="off")
    run = session.train(config)
    status = run.wait(timeout=1800)
    if status.state != "finished":
        raise SystemExit(f"training failed: {status.message}\n{run.log_tail()}")
    return session, run.name


def measure(session, run: str, out: Path, probes: int, tokens: int) -> dict:
    """The parity figures of each format's export, also of one the check refuses."""
    from workbench.export import ParityError

    figures = {}
    for fmt, kind in FORMATS:
        options = {"dtype": kind} if fmt == "merged" else {"quantization": kind}
        settings = {"format": fmt, "probes": probes, "max_new_tokens": tokens, **options}
        try:
            parity = session.export_model(run, out / f"{fmt}-{kind}", **settings).parity
        except ParityError as refused:
            parity = refused.parity
        margins = sorted(p["margin"] for p in parity.partings)
        figures[kind] = {
            "max_logit_diff": parity.max_logit_diff,
            "tolerance": parity.tolerance,
            "diff_over_tolerance": parity.max_logit_diff / parity.tolerance,
            "agree": f"{parity.agree}/{parity.probes}",
            "parting_margins": margins,
            "passed": parity.passed,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            session, run = tuned_session(Path(tmp) / "ws", args.steps, seed)
            with session:
                figures = measure(session, run, Path(tmp), args.probes, args.tokens)
            runs.append({"seed": seed, **figures})
    largest = {kind: max(r[kind]["max_logit_diff"] for r in runs) for _, kind in FORMATS}
    baseline = largest["float32"]
    report = {
        "benchmark": "export_tolerance",
        "steps": args.steps,
        "probes": args.probes,
        "tokens": args.tokens,
        "largest_diff": largest,
        "largest_diff_vs_float32": {k: v / baseline for k, v in largest.items()},
        "all_passed": all(r[kind]["passed"] for r in runs for _, kind in FORMATS),
        "runs": runs,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
