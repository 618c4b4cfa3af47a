"""Reinforcement learning with reward functions (method "grpo"): the runner's GRPO step.

TRL's GRPOTrainer samples `num_generations` answers to each prompt, scores them with the
weighted rewards (workbench.train.rewards), and moves the LoRA policy towards the answers that
beat their group's mean. Prompts are the rows' conversations up to the last assistant turn,
rendered with the run's template (the tokenizer's chat template is set to it) and cut where
generation would stop, so sampling reads exactly what `session.generate` reads; the reference
answer travels as the `reference` column for the rewards. The result is a plain causal-LM LoRA
adapter, a contestant like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import TrainingDataError
from ..models import ModelSpec
from ..templates.template import Template
from .config import TrainConfig
from .folder import RunFolder
from .rewards import Samples, build_rewards, needs_reference

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


def grpo_trainer(
    folder: RunFolder,
    config: TrainConfig,
    spec: ModelSpec,
    device: str,
    callbacks: list,
    samples: Samples | None = None,
) -> Any:
    """A GRPOTrainer over the run's prompts: LoRA (fresh, or `base_adapter`), checked rewards."""
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from ..templates.stops import stop_token_ids
    from .builders import policy_model, run_tokenizer, trainable_in_float32, trl_arguments
    from .reward import load_reward_model

    tokenizer = run_tokenizer(folder, spec)
    model, peft_config = policy_model(folder, config, spec, device)
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)  # where generation stops
    rewards = build_rewards(
        config.rewards, lambda where: load_reward_model(folder.root / where, spec), samples
    )
    args = trl_arguments(
        GRPOConfig,
        folder,
        config,
        device,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        reward_weights=config.reward_weights or None,
        log_completions=False,  # samples go to the run log through `samples`
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=datasets.load_from_disk(str(folder.data_dir / "train")),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    return trainable_in_float32(trainer, device) if config.quantize_4bit else trainer
