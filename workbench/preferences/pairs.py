"""Preference pairs: votes and preference rows as (prompt, chosen, rejected), checked before DPO.

Pairs come from people's votes (PreferenceRecord) or from preference files (prompt, chosen,
rejected). The checks run before launch, so a run never starts on pairs that cannot train.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..data.errors import TrainingDataError
from ..templates.template import Template

MIN_PAIRS = 8


@dataclass
class PreferencePairs:
    """Trainable pairs (prompt messages, chosen and rejected assistant turns) and what was left out."""

    rows: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    by_pair: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


def as_pairs(records: Iterable[Any], include_ties: bool = False) -> PreferencePairs:
    """Votes, prompt/chosen/rejected dicts, or rows of a loaded preference dataset (messages
    ending with the chosen answer, plus "rejected") as DPO pairs; ties and "both bad" are
    skipped unless asked, so votes and files merge into one list."""
    pairs = PreferencePairs()
    skipped: Counter = Counter()
    by_pair: Counter = Counter()
    for record in records:
        data = record.to_json() if hasattr(record, "to_json") else dict(record)
        verdict = data.get("verdict", "chosen")
        if verdict != "chosen" and not include_ties:
            skipped[verdict] += 1
            continue
        if "prompt" not in data and "messages" in data:  # a preference row of a loaded dataset
            data = {**data, "prompt": data["messages"][:-1], "chosen": data["messages"][-1:]}
        prompt = data["prompt"]
        prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        pairs.rows.append(
            {
                "prompt": prompt,
                "chosen": _answer(data["chosen"]),
                "rejected": _answer(data["rejected"]),
            }
        )
        if data.get("chosen_model") or data.get("rejected_model"):
            by_pair[f"{data.get('chosen_model')} > {data.get('rejected_model')}"] += 1
    pairs.skipped, pairs.by_pair = dict(skipped), dict(by_pair)
    return pairs


def _answer(value: Any) -> list[dict]:
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return [{"role": "assistant", "content": value[-1]["content"]}]
    raise TrainingDataError(f"An answer must be text or a list of messages; got {value!r:.80}.")


def split_pairs(
    rows: list[dict], seed: int = 0, eval_fraction: float = 0.2
) -> tuple[list[dict], list[dict]]:
    """Hold out a seeded fifth of the pairs (at least 2, when there are 10 or more) to measure DPO."""
    if len(rows) < 10:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(2, round(len(rows) * eval_fraction))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def check_pairs(
    pairs: PreferencePairs, template: Template, max_length: int, max_prompt_length: int
) -> None:
    """Refuse, before launch, too few pairs, identical answers and pairs past the length limits."""
    if len(pairs) < MIN_PAIRS:
        raise TrainingDataError(
            f"DPO needs at least {MIN_PAIRS} preference pairs; there are {len(pairs)} "
            f"(skipped: {pairs.skipped or 'none'}). Vote on more answers, load a preference file, "
            "or pass include_ties=True."
        )
    identical, too_long = [], []
    tokenizer = template.tokenizer
    for i, row in enumerate(pairs.rows):
        if row["chosen"][0]["content"].strip() == row["rejected"][0]["content"].strip():
            identical.append(i)
            continue
        prompt_text = template.render_prompt(row["prompt"])
        prompt_len = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        longest = max(
            len(
                tokenizer(template.render(row["prompt"] + row[k]), add_special_tokens=False)[
                    "input_ids"
                ]
            )
            for k in ("chosen", "rejected")
        )
        if prompt_len > max_prompt_length or longest > max_length:
            too_long.append(i)
    problems = []
    if identical:
        problems.append(
            f"pairs whose two answers are the same (nothing to learn): rows {identical[:20]}"
        )
    if too_long:
        problems.append(
            f"pairs longer than max_prompt_length={max_prompt_length} or max_length={max_length} "
            f"tokens: rows {too_long[:20]}"
        )
    if problems:
        raise TrainingDataError(
            "Some preference pairs cannot train: "
            + "; ".join(problems)
            + ". Remove them or raise the limits."
        )
