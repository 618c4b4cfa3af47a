"""Comparator memory and speed: one base model with named adapters, against the naive ways.

Prints one JSON object. Memory: peak RSS with 1, 2 and 4 LoRA adapters served by one base model
(ours) against one model per contestant (naive); each contender runs in its own process, so its
peak is its own, and every contestant answers one prompt there. Speed: time to first token and
tokens/s of the Generator against plain `model.generate` on the same model instance, runs
interleaved, medians reported. The adapters are fresh random LoRA adapters (rank 16 on every
linear layer, as TrainConfig's defaults train), saved as a run saves them: no training needed.

    python benchmarks/compare.py [--model PATH_OR_ID] [--tokens 48] [--repeats 5]
    python benchmarks/compare.py --random-llama DIR --memory-only --no-naive   # a ~1B model
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = (
    "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle, "
    "describing the sea, the weather, the keeper's daily routine and what the message says."
)
ADAPTER_COUNTS = (1, 2, 4)


def write_adapters(model: str, folder: Path, count: int) -> list[str]:
    """`count` random LoRA adapters of `model`, each with its template and base model record."""
    import workbench as wb
    from workbench import models
    from workbench.answers.adapters import write_random_adapter

    spec = models.as_spec(model)
    base = models.load_model(spec, device="cpu")
    template = wb.Template.preset("model").with_tokenizer(models.load_tokenizer(spec))
    return [
        str(write_random_adapter(base, folder / f"adapter-{k}", spec, template, seed=k))
        for k in range(count)
    ]


def peak_rss_gb() -> float:
    """This process's own peak resident memory, in GiB (read after the work it measures)."""
    from workbench.resources import peak_rss_gb as peak  # imported late: adds nothing to the peak

    return peak()


def memory_now() -> dict:
    """Peak resident memory, and resident memory now (after loading's transients), in GiB."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    now = resident_pages * os.sysconf("SC_PAGE_SIZE") / 1024**3
    return {"peak_rss_gb": peak_rss_gb(), "rss_after_gb": now}


# -- memory contenders (each in its own process) ----------------------------------------------
def memory_ours(model: str, adapters: list[str], import_peft: bool = False) -> dict:
    """One base model; every adapter attached by name; base and each adapter answer once.

    With no adapters and `import_peft`, the base alone plus the libraries adapters need.
    """
    import workbench as wb
    from workbench.answers.generate import GenerationSettings, Generator

    generator = Generator(wb.models.as_spec(model), wb.Template.preset("model"))
    settings = GenerationSettings(max_new_tokens=8)
    if import_peft:
        import peft  # noqa: F401  (it imports bitsandbytes too, when installed)
    for k, folder in enumerate(adapters):
        generator.add_adapter(f"adapter-{k}", folder)
    for name in generator.contestants:
        generator.generate(PROMPT, name, settings)
    return memory_now() | {"contestants": len(generator.contestants)}


def memory_naive(model: str, adapters: list[str]) -> dict:
    """One model per contestant: the base, and a fresh base + PeftModel for each adapter."""
    import torch
    from peft import PeftModel

    import workbench as wb
    from workbench import models

    spec = models.as_spec(model)
    tokenizer = models.load_tokenizer(spec)
    text = (
        wb.Template.preset("model")
        .with_tokenizer(tokenizer)
        .render_prompt([{"role": "user", "content": PROMPT}])
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    contestants = [models.load_model(spec)]
    contestants += [PeftModel.from_pretrained(models.load_model(spec), a) for a in adapters]
    with torch.inference_mode():
        for m in contestants:
            m.generate(**ids, max_new_tokens=8, do_sample=False)
    return memory_now() | {"contestants": len(contestants)}


# -- speed (one process, one model instance) --------------------------------------------------
class TimingStreamer:
    """The least a streamer can do: count new tokens, and call `note` at the first one."""

    def __init__(self, note):
        self.note = note
        self.tokens = -1  # generate() first puts the prompt

    def put(self, value) -> None:
        """Count a token; note the time of the first new one."""
        self.tokens += 1
        if self.tokens == 1:
            self.note()

    def end(self) -> None:
        """Nothing to flush."""
        pass


def timed(call) -> dict:
    """Run `call(note)`, which calls note() at its first token and returns its token count."""
    marks: list[float] = []
    started = time.perf_counter()
    count = call(lambda: marks.append(time.perf_counter()))
    total = time.perf_counter() - started
    return {"ttft_s": marks[0] - started, "tokens": count, "tokens_per_s": count / total}


def plain_call(model, ids, tokens: int, stop_ids: list[int], pad: int):
    """model.generate as a person would call it, with a timing streamer."""
    import torch

    def call(note) -> int:
        streamer = TimingStreamer(note)
        with torch.inference_mode():
            model.generate(
                **ids,
                max_new_tokens=tokens,
                do_sample=False,
                eos_token_id=stop_ids,
                pad_token_id=pad,
                streamer=streamer,
            )
        return streamer.tokens

    return call


def ours_call(generator, name: str, settings):
    """Generator.generate streaming text to a callback, as the comparator does."""

    def call(note) -> int:
        seen = []

        def on_text(i, text):
            if not seen:
                note()
            seen.append(text)

        generator.generate(PROMPT, name, settings, on_text=on_text)
        return len(seen)

    return call


def speed(model: str, adapters: list[str], tokens: int, repeats: int) -> dict:
    """Interleaved runs: plain generate and ours, on the bare model, then with adapters attached."""
    import workbench as wb
    from workbench import models
    from workbench.answers.generate import GenerationSettings, Generator

    spec = models.as_spec(model)
    tokenizer = models.load_tokenizer(spec)
    base = models.load_model(spec)
    generator = Generator(spec, wb.Template.preset("model"), tokenizer=tokenizer, model=base)
    settings = GenerationSettings(max_new_tokens=tokens)
    text = generator.render("base", PROMPT, settings)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    stop, pad = generator.stop_token_ids(), tokenizer.pad_token_id
    calls = {
        "plain_generate": plain_call(base, ids, tokens, stop, pad),
        "ours_base": ours_call(generator, "base", settings),
    }
    results = interleave(calls, repeats)
    for k, folder in enumerate(adapters):
        generator.add_adapter(f"adapter-{k}", folder)
    peft = generator.base_host.peft
    slot = generator.contestant("adapter-0").slot

    def plain_adapter(note) -> int:
        peft.set_adapter(slot, inference_mode=True)
        return plain_call(peft, ids, tokens, stop, pad)(note)

    def plain_base_disabled(note) -> int:
        with peft.disable_adapter():
            return plain_call(peft, ids, tokens, stop, pad)(note)

    calls = {
        "plain_peft_adapter": plain_adapter,
        "ours_adapter": ours_call(generator, "adapter-0", settings),
        "plain_peft_disabled": plain_base_disabled,
        "ours_base_with_adapters": ours_call(generator, "base", settings),
    }
    return results | interleave(calls, repeats)


def interleave(calls: dict, repeats: int) -> dict:
    """One warm-up each, then `repeats` rounds in a shuffled order each round.

    Medians, and the best run of each (least disturbed by other processes on a shared machine).
    """
    import random

    for call in calls.values():
        timed(call)
    runs: dict[str, list[dict]] = {name: [] for name in calls}
    order = list(calls)
    for _ in range(repeats):
        random.shuffle(order)
        for name in order:
            runs[name].append(timed(calls[name]))
    return {
        name: {
            "ttft_s": statistics.median(r["ttft_s"] for r in rs),
            "tokens": rs[0]["tokens"],
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs),
            "best_ttft_s": min(r["ttft_s"] for r in rs),
            "best_tokens_per_s": max(r["tokens_per_s"] for r in rs),
        }
        for name, rs in runs.items()
    }


# -- driver -----------------------------------------------------------------------------------
def in_subprocess(args, only: str, adapters: list[str]) -> dict:
    """Run one contender in a fresh process and read its JSON line."""
    cmd = [sys.executable, __file__, "--only", only, "--model", args.model]
    cmd += ["--tokens", str(args.tokens), "--repeats", str(args.repeats), "--adapters", *adapters]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-3:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_one(args) -> dict:
    """The contender named by --only, in this process."""
    if args.only == "memory_ours":
        return memory_ours(args.model, args.adapters)
    if args.only == "memory_base_with_peft":
        return memory_ours(args.model, [], import_peft=True)
    if args.only == "memory_naive":
        return memory_naive(args.model, args.adapters)
    return speed(args.model, args.adapters, args.tokens, args.repeats)


SPEED_PAIRS = {
    "ours_base_vs_plain_generate": ("ours_base", "plain_generate"),
    "ours_adapter_vs_plain_peft_generate": ("ours_adapter", "plain_peft_adapter"),
    "ours_base_with_adapters_vs_plain_peft_disabled": (
        "ours_base_with_adapters",
        "plain_peft_disabled",
    ),
    "hosting_4_adapters_cost_for_base": ("ours_base_with_adapters", "plain_generate"),
}


def summarise(memory: dict, timing: dict, adapter_mb: float, weights_mb: float) -> dict:
    """The figures the targets speak of: memory and speed against the baselines."""
    base = memory["base_alone"]["peak_rss_gb"]
    with_peft = memory["base_with_peft_imported"]["peak_rss_gb"]
    figures = {
        "memory_vs_base_alone": {
            name: result["peak_rss_gb"] / base - 1
            for name, result in memory.items()
            if "peak_rss_gb" in result
        },
        "resident_after_vs_base_alone": {
            name: result["rss_after_gb"] / memory["base_alone"]["rss_after_gb"] - 1
            for name, result in memory.items()
            if "rss_after_gb" in result
        },
        "memory_vs_base_with_peft_imported": {
            name: memory[name]["peak_rss_gb"] / with_peft - 1
            for name in memory
            if name.startswith("ours_") and "peak_rss_gb" in memory[name]
        },
        "adapter_file_mb": adapter_mb,
        "adapter_size_vs_base_weights": adapter_mb / weights_mb,
    }
    if not timing or "error" in timing:
        return figures

    def slower(ours: str, plain: str, key: str) -> float:
        return 1 - timing[ours][key] / timing[plain][key]

    return figures | {
        "speed_overhead_median": {
            name: slower(*pair, "tokens_per_s") for name, pair in SPEED_PAIRS.items()
        },
        "speed_overhead_best_run": {
            name: slower(*pair, "best_tokens_per_s") for name, pair in SPEED_PAIRS.items()
        },
        "ttft_overhead_s_median": {
            name: timing[ours]["ttft_s"] - timing[plain]["ttft_s"]
            for name, (ours, plain) in list(SPEED_PAIRS.items())[:2]
        },
    }


def weights_mb(model: str) -> float:
    """The base model's weights as the host holds them on the CPU (float32), in MiB."""
    from safetensors import safe_open

    count = 0
    for file in Path(model).glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            names = f.keys()  # a safe_open handle is not iterable
            count += sum(math.prod(f.get_slice(name).get_shape()) for name in names)
    return count * 4 / 1024**2


def main() -> None:
    """Write the adapters, run every contender, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="hub id or folder; default: embedded")
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per answer")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--random-llama", help="write (once) and use a random ~1B Llama in DIR")
    parser.add_argument("--memory-only", action="store_true", help="skip the speed runs")
    parser.add_argument("--no-naive", action="store_true", help="skip one-model-per-contestant")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--adapters", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.random_llama:
        from random_llama import write_random_llama

        args.model = write_random_llama(Path(args.random_llama))
    elif args.model == "default":
        from workbench import models

        args.model = str(models.ensure_embedded_converted())
    if args.only:
        print(json.dumps(run_one(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        adapters = write_adapters(args.model, Path(tmp), max(ADAPTER_COUNTS))
        memory = {
            "base_alone": in_subprocess(args, "memory_ours", []),
            "base_with_peft_imported": in_subprocess(args, "memory_base_with_peft", []),
        }
        for n in ADAPTER_COUNTS:
            memory[f"ours_{n}_adapters"] = in_subprocess(args, "memory_ours", adapters[:n])
            if not args.no_naive:
                memory[f"naive_{n}_adapters"] = in_subprocess(args, "memory_naive", adapters[:n])
        timing = {} if args.memory_only else in_subprocess(args, "speed", adapters)
        adapter_mb = (Path(adapters[0]) / "adapter_model.safetensors").stat().st_size / 1024**2
    report = {
        "benchmark": "compare",
        "model": Path(args.model).name if Path(args.model).exists() else args.model,
        "new_tokens": args.tokens,
        "repeats": args.repeats,
        "memory": memory,
        "timing": timing,
    }
    if "error" not in memory["base_alone"]:
        report["figures"] = summarise(memory, timing, adapter_mb, weights_mb(args.model))
    report["targets"] = {
        "memory_vs_base_alone.ours_4_adapters": "<= 0.10",
        "speed_overhead_*.ours_base_vs_plain_generate": "< 0.05",
        "speed_overhead_*.ours_adapter_vs_plain_peft_generate": "< 0.05",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
