"""Benchmark: tokenising 100,000 rows with labels, against TRL and against the limit; prints JSON.

Three ways over the same rows (the bundled demo data, varied and repeated), in one process:
  limit  render each row and tokenise all texts in one batched fast-tokenizer call, no labels;
  ours   workbench.templates.template.tokenize_dataset (labels, a datasets.Dataset, cached on disk),
         first run and second (cached) run;
  trl    SFTTrainer's own dataset preparation, prompt-completion rows, completion-only loss.
Labels are compared row by row with TRL's. Run: python benchmarks/tokenize_labels.py [--rows N]
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from workbench import models  # noqa: E402
from workbench.templates import Template, tokenize_dataset  # noqa: E402
from workbench.templates.jinja import compile_template, template_variables  # noqa: E402

LIMIT_RATIO_TARGET = 1.5
CACHED_TARGET_S = 1.0


def demo_rows(count: int, seed: int = 0) -> list[dict]:
    """`count` conversations from the demo data: varied text, some with a system turn or two turns."""
    from workbench.demo import demo_path

    text = demo_path().read_text(encoding="utf-8")
    base = [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        messages = [dict(m) for m in base[i % len(base)]]
        if i >= len(base):  # a repeat: vary the question so rows differ
            messages[0]["content"] += f" (variant {i // len(base)})"
        if rng.random() < 0.2:
            messages.insert(0, {"role": "system", "content": "Answer with the result only."})
        if rng.random() < 0.1:
            messages = messages + [dict(m) for m in base[(i * 7 + 1) % len(base)]]
        rows.append({"messages": messages})
    return rows


def time_limit(template: Template, rows: list[dict]) -> float:
    """Plain Jinja rendering and one batched tokenizer call: no labels, nothing else."""
    compiled = compile_template(template.jinja)
    variables = template_variables(template.tokenizer)
    start = time.perf_counter()
    texts = [compiled.render(messages=row["messages"], **variables) for row in rows]
    template.tokenizer(
        texts, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False
    )
    return time.perf_counter() - start


def time_ours(template: Template, rows: list[dict], cache_dir: str, max_length: int):
    start = time.perf_counter()
    ours = tokenize_dataset(template, rows, cache_dir, "bench", max_length)
    first = time.perf_counter() - start
    start = time.perf_counter()
    again = tokenize_dataset(template, rows, cache_dir, "bench", max_length)
    cached = time.perf_counter() - start
    assert len(again) == len(ours)
    return ours, first, cached


def time_trl(tokenizer, rows: list[dict], out_dir: str, max_length: int):
    """SFTTrainer's dataset preparation of the same rows as prompt-completion pairs."""
    import datasets
    from random_llama import random_llama
    from trl import SFTConfig, SFTTrainer

    pairs = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
    dataset = datasets.Dataset.from_list(pairs)
    config = SFTConfig(
        output_dir=out_dir,
        use_cpu=True,
        bf16=False,
        completion_only_loss=True,
        max_length=max_length,
        report_to="none",
    )
    model = random_llama(tokenizer, "tiny")  # TRL needs a model; only its data prep is timed
    start = time.perf_counter()
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer
    )
    seconds = time.perf_counter() - start
    return trainer.train_dataset, seconds


def compare(ours, trl) -> dict:
    """Fractions of rows whose ids, and ids with labels, equal TRL's."""
    ours_ids, ours_labels = ours["input_ids"], ours["labels"]
    trl_ids, trl_labels = trl["input_ids"], trl["labels"]
    n = min(len(ours_ids), len(trl_ids))
    same_ids = same_rows = 0
    for a_ids, a_lab, b_ids, b_lab in zip(ours_ids, ours_labels, trl_ids, trl_labels):
        same_ids += a_ids == b_ids
        same_rows += a_ids == b_ids and a_lab == b_lab
    return {
        "rows_compared": n,
        "trl_rows": len(trl_ids),
        "identical_ids_fraction": round(same_ids / n, 4),
        "identical_rows_fraction": round(same_rows / n, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--skip-trl", action="store_true", help="time only the limit and ours")
    args = parser.parse_args()

    import datasets  # noqa: F401  (imported before timing: a session has it loaded already)

    tokenizer = models.load_tokenizer(models.DEFAULT)
    # TRL's completion-only loss trains the last turn: compare with the same choice.
    template = Template.preset("model", train_on="last_assistant").with_tokenizer(tokenizer)
    rows = demo_rows(args.rows)
    result: dict = {"rows": args.rows, "template": "model (SmolLM2-135M-Instruct)"}
    result["train_on"] = template.train_on
    time_limit(template, rows[:200])  # warm up: compile the Jinja, start the tokenizer's threads
    with tempfile.TemporaryDirectory() as tmp:
        result["limit_s"] = round(time_limit(template, rows), 2)
        ours, first, cached = time_ours(template, rows, os.path.join(tmp, "cache"), args.max_length)
        result["ours_s"] = round(first, 2)
        result["ours_cached_s"] = round(cached, 3)
        result["ours_vs_limit"] = round(first / result["limit_s"], 2)
        if not args.skip_trl:
            trl, trl_s = time_trl(tokenizer, rows, os.path.join(tmp, "trl"), args.max_length)
            result["trl_s"] = round(trl_s, 2)
            result["speedup_vs_trl"] = round(trl_s / first, 2)
            result.update(compare(ours, trl))
    result["targets"] = {
        f"ours_within_{LIMIT_RATIO_TARGET}x_of_limit": result["ours_vs_limit"]
        <= LIMIT_RATIO_TARGET,
        f"cached_under_{CACHED_TARGET_S}s": result["ours_cached_s"] < CACHED_TARGET_S,
    }
    if "identical_rows_fraction" in result:
        result["targets"]["labels_identical_to_trl"] = result["identical_rows_fraction"] == 1.0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
