"""Feedback tuning: the runner's DPO step (pairs and their checks: workbench.preferences.pairs).

The runner trains with TRL's DPOTrainer on 4-bit weights; its tokenizer renders with
the session's template, so prompt and answers are formatted exactly as in SFT and generation.
The reference model is the starting point itself: a frozen copy of the SFT adapter that TRL adds,
or the base with adapters disabled; never a second copy of the base weights.
"""

from __future__ import annotations

from typing import Any


def train_dpo(folder, config, spec, device: str, callbacks: list) -> Any:
    """The runner's DPO step: 4-bit base, LoRA (fresh or the SFT adapter), TRL DPOTrainer."""
    import datasets
    from trl import DPOConfig, DPOTrainer

    from .builders import policy_model, run_tokenizer, training_arguments

    tokenizer = run_tokenizer(folder, spec)
    model, peft_config = policy_model(folder, config, spec, device)
    model.config.use_cache = False
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
