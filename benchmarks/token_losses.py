"""Per-token loss speed: `token_losses` for two models against one plain forward pass of each.

Prints one JSON object. A 512-token row (a long answer, cut at max_length 512 as training cuts
it) is scored by "base" and one random LoRA adapter (rank 16 on every linear layer, written as
a run writes it, as benchmarks/compare.py does) on the Generator's one base model. The baseline
is a plain forward pass of the same PEFT model over the same ids, once with the adapter
disabled and once with it set: the two passes any per-token loss needs. Runs interleave in a
shuffled order each round after a warm-up; medians and best runs reported. Target: ratio <= 2.

    python benchmarks/token_losses.py [--model PATH_OR_ID] [--tokens 512] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "Describe, step by step and at length, how a lighthouse keeper spends a winter week."
SENTENCE = (
    "The keeper climbs the stairs at dusk, trims the wick, polishes the lens and writes the "
    "weather, the ships and the hours into the log before the long night begins. "
)


def long_row(tokens: int) -> list[dict]:
    """A conversation whose answer alone holds more than `tokens` tokens of any tokenizer."""
    return [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": SENTENCE * (tokens // 8)},
    ]


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def interleave(calls: dict, repeats: int) -> dict[str, list[float]]:
    """One warm-up each, then `repeats` rounds, shuffled each round; seconds per call."""
    for call in calls.values():
        call()
    runs: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for _ in range(repeats):
        random.shuffle(order)
        for name in order:
            runs[name].append(timed(calls[name]))
    return runs


def measure(model: str, tokens: int, repeats: int) -> dict:
    """Write the adapter, load the base once, time ours and the plain passes side by side."""
    import torch

    import workbench as wb
    from workbench import models
    from workbench.answers.adapters import write_random_adapter
    from workbench.answers.generate import Generator
    from workbench.answers.token_losses import token_losses

    spec = models.as_spec(model)
    tokenizer = models.load_tokenizer(spec)
    base = models.load_model(spec)
    template = wb.Template.preset("model").with_tokenizer(tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_random_adapter(base, Path(tmp) / "adapter", spec, template, seed=0)
        generator = Generator(spec, template, tokenizer=tokenizer, model=base)
        generator.add_adapter("adapter", folder)
        row, names = long_row(tokens), ["base", "adapter"]
        result = token_losses(generator, names, row, generator.template_of("base"), tokens)
        ids = torch.tensor([result.token_ids], device=base.device)
        peft, slot = generator._hosts["base"].peft, generator.contestant("adapter").slot

        def plain_base() -> None:
            with torch.inference_mode(), peft.disable_adapter():
                peft(input_ids=ids)

        def plain_adapter() -> None:
            peft.set_adapter(slot, inference_mode=True)
            with torch.inference_mode():
                peft(input_ids=ids)

        def ours() -> None:
            token_losses(generator, names, row, generator.template_of("base"), tokens)

        runs = interleave(
            {"plain_base": plain_base, "plain_adapter": plain_adapter, "token_losses": ours},
            repeats,
        )
        plain = [b + a for b, a in zip(runs["plain_base"], runs["plain_adapter"])]
        return {
            "tokens": len(result.token_ids),
            "trained_tokens": result.num_trained,
            "device": str(base.device),
            "seconds_median": {name: statistics.median(r) for name, r in runs.items()},
            "seconds_best": {name: min(r) for name, r in runs.items()},
            "figures": {
                "ratio_median": statistics.median(runs["token_losses"]) / statistics.median(plain),
                "ratio_best": min(runs["token_losses"]) / min(plain),
            },
        }


def main() -> None:
    """Run the measurement and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="hub id or folder; default: embedded")
    parser.add_argument("--tokens", type=int, default=512, help="tokens in the row scored")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    if args.model == "default":
        from workbench import models

        args.model = str(models.ensure_embedded_converted())
    report = {
        "benchmark": "token_losses",
        "model": Path(args.model).name if Path(args.model).exists() else args.model,
        "models_scored": 2,
        "repeats": args.repeats,
        **measure(args.model, args.tokens, args.repeats),
        "baseline": "one plain forward pass of the base and one of the adapter, same ids",
        "targets": {"figures.ratio_median": "<= 2.0"},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
