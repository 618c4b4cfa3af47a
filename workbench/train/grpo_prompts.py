"""GRPO's prompts from dataset rows, checked in the kernel before a run starts.

Prompts are the rows' conversations up to the last assistant turn; that turn travels as the
`reference` the rewards compare against (workbench.train.rewards).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import TrainingDataError
from ..templates.template import Template
from .config import TrainConfig
from .rewards import needs_reference

LISTED_ROWS = 20


def grpo_prompts(rows: Mapping[int, dict], config: TrainConfig, template: Template) -> list[dict]:
    """GRPO's prompts from dataset rows (by row number): the messages before the last assistant
    turn, that turn as `reference`. Refuses, listing the rows, rows without a reference when a
    reward needs one, and prompts over `max_prompt_length` tokens (TrainingDataError)."""
    prompts, no_reference, too_long = [], [], []
    tokenizer = template.tokenizer
    for number, row in rows.items():
        prompt, reference = split_reference(row["messages"])
        if not reference:
            no_reference.append(number)
        text = template.render_prompt(prompt)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) > config.max_prompt_length:
            too_long.append(number)
        prompts.append({"prompt": prompt, "reference": reference, "row": number})
    if not prompts:
        raise TrainingDataError("There are no training rows: load a dataset for GRPO's prompts.")
    problems = []
    asked = needs_reference(config.rewards)
    if asked and no_reference:
        problems.append(
            f"{' and '.join(asked)} compare each answer with the row's reference answer (its "
            f"last assistant turn), but rows {no_reference[:LISTED_ROWS]} have none: exclude "
            "them, or use rewards that need no reference"
        )
    if too_long:
        problems.append(
            f"rows {too_long[:LISTED_ROWS]} have prompts over max_prompt_length="
            f"{config.max_prompt_length} tokens: exclude them or raise the limit"
        )
    if problems:
        raise TrainingDataError("GRPO cannot start: " + "; ".join(problems) + ".")
    return prompts


def split_reference(messages: list[dict]) -> tuple[list[dict], str]:
    """The turns before the last assistant turn, and that turn's text ("" when there is none:
    the whole conversation is then the prompt)."""
    for k in range(len(messages) - 1, -1, -1):
        if messages[k].get("role") == "assistant":
            return [dict(m) for m in messages[:k]], str(messages[k].get("content") or "")
    return [dict(m) for m in messages], ""
