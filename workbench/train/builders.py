"""What every training method builds the same way: the base model, the LoRA adapter, the arguments.

SFT (sft.py), DPO (dpo.py) and the methods to come take their model and TrainingArguments from
here, so a setting means the same in each of them.
"""

from __future__ import annotations

from ..models import ModelSpec, compute_dtype, load_model, resolve
from .config import TrainConfig
from .folder import RunFolder
from .ranks import model_placement


def build_peft_model(spec: ModelSpec, config: TrainConfig, device: str):
    """The base model (4-bit for QLoRA) with a fresh LoRA adapter on all linear layers."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    model = load_base_model(spec, config, device)
    model.config.use_cache = False  # a cache disables the packed-sequence mask; training needs none
    if config.quantize_4bit:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=bool(config.gradient_checkpointing),
            gradient_checkpointing_kwargs=checkpointing_kwargs(config),
        )
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=checkpointing_kwargs(config)
        )
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(config))


def load_base_model(spec: ModelSpec, config: TrainConfig, device: str):
    """The base model, on this rank's device when many processes train (see ranks.model_placement)."""
    if not (config.distributed or config.bnb_4bit_quant_storage):
        return load_model(spec, quantize_4bit=config.quantize_4bit, device=device)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        resolve(spec),
        revision=spec.revision,
        use_safetensors=True,
        **model_placement(config, device),
    )


def checkpointing_kwargs(config: TrainConfig) -> dict | None:
    """Non-reentrant recomputation under DDP, where the reentrant kind trips its gradient hooks."""
    return {"use_reentrant": False} if config.distributed and not config.fsdp else None


def lora_config(config: TrainConfig):
    """The LoRA adapter a TrainConfig asks for."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )


def training_arguments(folder: RunFolder, config: TrainConfig, device: str, has_eval: bool):
    """TrainingArguments from a TrainConfig: logging every step, checkpoints, no reporting."""
    from transformers import TrainingArguments

    dtype = compute_dtype(device)
    steps = config.max_steps if config.max_steps > 0 else None
    save_steps = config.save_steps or max(1, (steps or 500) // 5)
    eval_steps = config.eval_steps or max(1, (steps or 500) // 5)
    return TrainingArguments(
        output_dir=str(folder.checkpoints_dir),
        max_steps=config.max_steps,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_schedule,
        **_warmup(TrainingArguments, config.warmup_ratio),
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accumulation,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        seed=config.seed,
        use_cpu=device == "cpu",
        **precision_flags(config, dtype),
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        # LoRA uses every adapter weight in each step: DDP need not search for unused ones
        ddp_find_unused_parameters=False if config.distributed else None,
    )


def _warmup(arguments_class, ratio: float) -> dict:
    # transformers 5 takes a ratio as a float warmup_steps; 4.x has warmup_ratio
    if "warmup_ratio" in arguments_class.__dataclass_fields__:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def precision_flags(config: TrainConfig, dtype) -> dict[str, bool]:
    """bf16/fp16 for the Trainer: as the config asks, else what the device does well."""
    import torch

    asked = config.mixed_precision
    if asked is None:
        return {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16}
    return {"bf16": asked == "bf16", "fp16": asked == "fp16"}
