"""What every training method builds the same way: the base model, the LoRA adapter, the arguments.

SFT (sft.py), DPO (dpo.py), reward models (reward.py) and GRPO (grpo.py) take their model and
TrainingArguments from here, so a setting means the same in each of them.
"""

from __future__ import annotations

from ...models import ModelSpec, compute_dtype, load_model, resolve
from ..config import TrainConfig
from ..folder import RunFolder
from ..plan import schedule
from ..reward_model import load_reward_base
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


def load_base_model(
    spec: ModelSpec, config: TrainConfig, device: str, *, reward_head: bool = False
):
    """The base model, on this rank's device when many processes train (see ranks.model_placement).

    `reward_head`: a sequence classifier with one output (a reward model's scalar head) in
    place of the language-model head.
    """
    if not (config.distributed or config.bnb_4bit_quant_storage):
        if reward_head:
            return load_reward_base(spec, quantize_4bit=config.quantize_4bit, device=device)
        return load_model(spec, quantize_4bit=config.quantize_4bit, device=device)
    return _model_class(reward_head).from_pretrained(
        resolve(spec),
        revision=spec.revision,
        use_safetensors=True,
        **model_placement(config, device),
        **({"num_labels": 1} if reward_head else {}),
    )


def _model_class(reward_head: bool):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForSequenceClassification if reward_head else AutoModelForCausalLM


def trainable_in_float32(trainer, device: str):
    """TRL casts the adapter of a 4-bit model to bf16; on a CPU, where the 4-bit layers compute in
    float32 and nothing autocasts, the adapter (and a reward head) must stay float32."""
    import torch

    if device == "cpu":
        for param in trainer.model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    return trainer


def checkpointing_kwargs(config: TrainConfig) -> dict | None:
    """Non-reentrant recomputation under DDP, where the reentrant kind trips its gradient hooks."""
    return {"use_reentrant": False} if config.distributed and not config.fsdp else None


def lora_config(config: TrainConfig, *, reward_head: bool = False):
    """The LoRA adapter a TrainConfig asks for; with `reward_head` the scalar head ("score")
    trains in full and is saved with the adapter (PEFT's modules_to_save)."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="SEQ_CLS" if reward_head else "CAUSAL_LM",
        modules_to_save=["score"] if reward_head else None,
    )


def trl_arguments(config_class, folder: RunFolder, config: TrainConfig, device: str, **more):
    """A TRL trainer's config (DPOConfig, RewardConfig, GRPOConfig): our TrainingArguments
    with the method's own settings in `more`; keys the class does not have are left out."""
    has_eval = bool(more.pop("has_eval", False))
    base = training_arguments(folder, config, device, has_eval=has_eval).to_dict()
    base.update(more, gradient_checkpointing=bool(config.gradient_checkpointing))
    allowed = config_class.__dataclass_fields__
    return config_class(**{k: v for k, v in base.items() if k in allowed and not k.startswith("_")})


def training_arguments(folder: RunFolder, config: TrainConfig, device: str, has_eval: bool):
    """TrainingArguments from a TrainConfig: logging every step, checkpoints, the trackers asked
    for, and the best evaluation's checkpoint kept when keep_best or early stopping ask."""
    from transformers import TrainingArguments

    dtype = compute_dtype(device)
    eval_steps, save_steps = schedule(config)  # planned; a config never planned gets them here
    best = has_eval and (config.keep_best or config.early_stopping_patience is not None)
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
        report_to=list(config.report_to),  # metrics.jsonl is written either way
        load_best_model_at_end=has_eval and config.keep_best,
        metric_for_best_model=f"eval_{config.best_metric.removeprefix('eval_')}" if best else None,
        greater_is_better=config.best_metric == "probe_score" if best else None,
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


def run_tokenizer(folder: RunFolder, spec: ModelSpec):
    """The base's tokenizer rendering with the run's template (its chat_template), with a
    padding token: what TRL's trainers format prompts and answers with."""
    from ...models import load_tokenizer
    from ...persist import read_json
    from ...templates.template import Template

    tokenizer = load_tokenizer(spec)
    template = Template.from_json(read_json(folder.template_file))
    tokenizer.chat_template = template.with_tokenizer(tokenizer).jinja
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def policy_model(folder: RunFolder, config: TrainConfig, spec: ModelSpec, device: str):
    """What DPO and GRPO start from: the base (4-bit when the config says, made ready for
    k-bit training) with the run's starting adapter, trainable, when `base_adapter` is set.
    Returns (model, peft_config): a fresh LoRA config to add, or None with an adapter."""
    from peft import PeftModel, prepare_model_for_kbit_training

    model = load_base_model(spec, config, device)
    if config.quantize_4bit:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=bool(config.gradient_checkpointing),
            gradient_checkpointing_kwargs=checkpointing_kwargs(config),
        )
    if config.base_adapter:  # a path relative to the run folder travels with an exported job
        adapter = folder.root / config.base_adapter
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True), None
    return model, lora_config(config)
