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

from typing import Any

from ...models import ModelSpec
from ..config import TrainConfig
from ..folder import RunFolder
from ..rewards import Samples, build_rewards


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

    from ...templates.stops import stop_token_ids
    from ..reward_model import load_reward_model
    from .builders import policy_model, run_tokenizer, trainable_in_float32, trl_arguments

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
