"""Grow the demo data with the embedded model: 50 candidates from 10 seed rows; prints JSON.

The target: under 2 minutes on the CPU, with the counts (asked, parsed, kept,
dropped by reason). Generation runs batched through the Session's one model host, the model
continuing a few-shot document; `--baseline` adds the same run one request at a time (batch_size
1), the naive way, and `--chat-baseline` the same model answering chat requests (as an endpoint
is asked), stopped once it begins a second example: the form used before documents.

    python benchmarks/synthesis.py                   # 50 candidates, 10 seed rows
    python benchmarks/synthesis.py --smoke           # 3 candidates, short answers: a quick check
    python benchmarks/synthesis.py --chat-baseline   # and the chat requests beside it
    python benchmarks/synthesis.py --endpoint http://127.0.0.1:8080   # and a served model
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 120
SEED_ROWS = 10


def grow(
    folder: Path, n: int, batch_size: int, max_new_tokens: int, chat: bool = False, url: str = ""
) -> dict:
    """One synthesis run in a fresh workspace on the demo data: its counts and timings; `chat`:
    the embedded model answers chat requests instead of continuing documents; `url`: a server
    (OpenAI-compatible) writes instead."""
    import workbench as wb
    from workbench import demo_data, models
    from workbench.synthesis import SynthesisSettings
    from workbench.synthesis.parse import began_another

    models.ensure_embedded_converted()  # the conversion is a one-off, not part of the figure
    with wb.Session.open(folder) as s:
        s.load_dataset(demo_data.generate(200, seed=0))
        started = time.perf_counter()
        if not url:
            _ = s.generator  # loading the model counts: a person waits for it too
        loaded = time.perf_counter() - started
        config = SynthesisSettings(batch_size=batch_size, max_new_tokens=max_new_tokens)
        sampling = config.generation(0)  # the same sampling (top_k, top_p, temperature)

        def chat_requests(prompts: list[str]) -> list[str]:  # a function gets chat requests
            return s.generator.generate_batch(prompts, "base", sampling, done=began_another)

        result = s.synthesize(
            seed_rows=range(SEED_ROWS),
            n=n,
            generator=url or (chat_requests if chat else "base"),
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
        )
        total = time.perf_counter() - started
    return {
        "requests": "chat" if chat or url else "document",
        "generator": url or "embedded model",
        "batch_size": batch_size,
        "seconds": round(total, 2),
        "model_load_seconds": round(loaded, 2),
        "seconds_per_candidate": round(result.seconds / max(1, result.asked), 3),
        "counts": {
            "asked": result.asked,
            "parsed": result.parsed,
            "kept": result.kept,
            "dropped": result.dropped,
            "flagged": result.flagged,
        },
        "meets_target": total < TARGET_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="candidates to ask for")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--smoke", action="store_true", help="3 candidates of 48 tokens")
    parser.add_argument("--baseline", action="store_true", help="also run one at a time")
    parser.add_argument("--chat-baseline", action="store_true", help="also with chat requests")
    parser.add_argument("--endpoint", default="", help="also a served model at this URL")
    args = parser.parse_args()
    n, tokens = (3, 48) if args.smoke else (args.n, args.max_new_tokens)
    report = {
        "benchmark": "synthesis",
        "model": "embedded SmolLM2-135M-Instruct",
        "machine": f"{platform.machine()}, {platform.system()}",
        "seed_rows": SEED_ROWS,
        "n": n,
        "max_new_tokens": tokens,
        "target_seconds": TARGET_SECONDS,
    }
    with tempfile.TemporaryDirectory() as work:
        report["ours"] = grow(Path(work) / "batched", n, args.batch_size, tokens)
        if args.baseline:
            report["baseline_one_at_a_time"] = grow(Path(work) / "single", n, 1, tokens)
        if args.chat_baseline:
            chat = grow(Path(work) / "chat", n, args.batch_size, tokens, chat=True)
            report["baseline_chat_requests"] = chat
            report["speedup_vs_chat"] = round(chat["seconds"] / report["ours"]["seconds"], 2)
        if args.endpoint:
            report["endpoint"] = grow(
                Path(work) / "served", n, args.batch_size, tokens, url=args.endpoint
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
