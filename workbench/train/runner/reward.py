"""Training a reward model (method "reward") from preference pairs: the runner's step.

The runner trains with TRL's RewardTrainer: LoRA on the session's base model with a scalar head
(sequence classification, one label; the head trains in full and is saved with the adapter),
on 4-bit weights when the plan says so. The tokenizer renders with the run's template, so
prompt and answer read exactly as in generation. The adapter folder gets reward_model.json
(workbench.train.reward_model, which also loads it to score answers).
"""

from __future__ import annotations

from pathlib import Path

from ...models import ModelSpec
from ...preferences.pairs import pair_fingerprint
from ..config import TrainConfig
from ..folder import RunFolder
from ..reward_model import RewardRecord


def reward_trainer(folder: RunFolder, config: TrainConfig, spec: ModelSpec, device: str, callbacks):
    """The runner's reward-model step: base with a scalar head, LoRA, TRL's RewardTrainer."""
    import datasets
    from peft import prepare_model_for_kbit_training
    from trl import RewardConfig, RewardTrainer

    from .builders import (
        checkpointing_kwargs,
        load_base_model,
        lora_config,
        run_tokenizer,
        trainable_in_float32,
        trl_arguments,
    )

    tokenizer = run_tokenizer(folder, spec)
    model = load_base_model(spec, config, device, reward_head=True)
    model.config.use_cache = False
    model.config.pad_token_id = tokenizer.pad_token_id
    if config.quantize_4bit:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=bool(config.gradient_checkpointing),
            gradient_checkpointing_kwargs=checkpointing_kwargs(config),
        )
    train_set = datasets.load_from_disk(str(folder.data_dir / "train"))
    eval_path = folder.data_dir / "eval"
    eval_set = datasets.load_from_disk(str(eval_path)) if eval_path.exists() else None
    args = trl_arguments(
        RewardConfig,
        folder,
        config,
        device,
        has_eval=eval_set is not None,
        max_length=None,  # pairs past max_length were refused before launch, never dropped here
        eval_on_start=eval_set is not None,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=lora_config(config, reward_head=True),
        callbacks=callbacks,
    )
    return trainable_in_float32(trainer, device) if config.quantize_4bit else trainer


def reward_record(trainer, folder: RunFolder) -> RewardRecord:
    """The finished reward model's record: a last held-out evaluation and the pair fingerprints."""
    record = RewardRecord(trained_pairs=_fingerprints(folder.data_dir / "train"))
    eval_path = folder.data_dir / "eval"
    if eval_path.exists():
        step = trainer.state.global_step
        logged = [m for m in trainer.state.log_history if "eval_accuracy" in m]
        last = logged[-1] if logged and logged[-1].get("step") == step else None
        metrics = last or trainer.evaluate()  # evaluated at the last step already, or now
        record.held_out_accuracy = metrics.get("eval_accuracy")
        record.held_out_margin = metrics.get("eval_margin")
        record.held_out_pairs = _fingerprints(eval_path)
    return record


def _fingerprints(path: Path) -> list[str]:
    import datasets

    rows = datasets.load_from_disk(str(path))
    return [pair_fingerprint(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
