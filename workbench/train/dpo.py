"""Feedback tuning: preference pairs, their checks before launch, and the runner's DPO step.

Pairs come from people's votes (PreferenceRecord) or from preference files (prompt, chosen,
rejected). The runner trains with TRL's DPOTrainer on 4-bit weights; its tokenizer renders with
the session's template, so prompt and answers are formatted exactly as in SFT and generation.
The reference model is the starting point itself: a frozen copy of the SFT adapter that TRL adds,
or the base with adapters disabled; never a second copy of the base weights.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..templates import Template
from .launch import TrainingDataError

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
    import random

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


def train_dpo(folder, config, spec, device: str, callbacks: list) -> Any:
    """The runner's DPO step: 4-bit base, LoRA (fresh or the SFT adapter), TRL DPOTrainer."""
    import datasets
    from peft import PeftModel, prepare_model_for_kbit_training
    from trl import DPOConfig, DPOTrainer

    from ..models import load_tokenizer
    from ..persist import read_json
    from .runner import checkpointing_kwargs, load_base_model, lora_config, training_arguments

    tokenizer = load_tokenizer(spec)
    tokenizer.chat_template = (
        Template.from_json(read_json(folder.root / "template.json")).with_tokenizer(tokenizer).jinja
    )
    model = load_base_model(spec, config, device)
    model.config.use_cache = False
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=bool(config.gradient_checkpointing),
        gradient_checkpointing_kwargs=checkpointing_kwargs(config),
    )
    peft_config = None
    if config.base_adapter:  # a path relative to the run folder travels with an exported job
        adapter = folder.root / config.base_adapter
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    else:
        peft_config = lora_config(config)
    train_set = datasets.load_from_disk(str(folder.data_dir / "train"))
    eval_path = folder.data_dir / "eval"
    eval_set = datasets.load_from_disk(str(eval_path)) if eval_path.exists() else None
    base = training_arguments(folder, config, device, has_eval=eval_set is not None).to_dict()
    base.update(
        beta=config.beta,
        loss_type=[config.dpo_loss],
        max_length=config.max_length,
        eval_on_start=eval_set is not None,
        gradient_checkpointing=bool(config.gradient_checkpointing),
    )
    allowed = DPOConfig.__dataclass_fields__
    args = DPOConfig(**{k: v for k, v in base.items() if k in allowed and not k.startswith("_")})
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    return trainer
