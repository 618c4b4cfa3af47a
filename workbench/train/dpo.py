"""Feedback tuning: the runner's DPO step (pairs and their checks: workbench.preferences.pairs).

The runner trains with TRL's DPOTrainer on 4-bit weights; its tokenizer renders with
the session's template, so prompt and answers are formatted exactly as in SFT and generation.
The reference model is the starting point itself: a frozen copy of the SFT adapter that TRL adds,
or the base with adapters disabled; never a second copy of the base weights.
"""

from __future__ import annotations

from typing import Any

from ..templates.template import Template


def train_dpo(folder, config, spec, device: str, callbacks: list) -> Any:
    """The runner's DPO step: 4-bit base, LoRA (fresh or the SFT adapter), TRL DPOTrainer."""
    import datasets
    from peft import PeftModel, prepare_model_for_kbit_training
    from trl import DPOConfig, DPOTrainer

    from ..models import load_tokenizer
    from ..persist import read_json
    from .builders import checkpointing_kwargs, load_base_model, lora_config, training_arguments

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
