"""The runner process: `python -m workbench.train RUN_DIR`. The only place a Trainer is built.

It reads the run folder written by the launcher, trains LoRA (on 4-bit weights for QLoRA),
and writes metrics.jsonl, status.json, checkpoints/ and adapter/. Every ending is recorded in
status.json: finished, stopped (on request, with a checkpoint), or failed with a plain message.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from pathlib import Path

from ..models import ModelSpec, best_device, compute_dtype, load_model, load_tokenizer
from ..persist import atomic_write_json, read_json
from .callbacks import Heartbeat, MetricsCallback, NonFiniteLossError, StopCallback
from .collate import FlatCollator, PaddedCollator, TokenCounter, packed_blocks
from .config import TrainConfig
from .run import RunFolder, RunStatus


def main(run_dir: str) -> int:
    """Run the training in RUN_DIR and record how it ended; the exit code is 0 unless it failed."""
    folder = RunFolder(run_dir)
    status = folder.read_status()
    status.state, status.pid, status.host = "running", os.getpid(), socket.gethostname()
    status.started, status.ended, status.message, status.traceback_tail = time.time(), None, "", ""
    stopper = StopCallback(folder)
    signal.signal(signal.SIGTERM, lambda *_: stopper.requested.set())
    signal.signal(signal.SIGINT, lambda *_: stopper.requested.set())
    with Heartbeat(folder, status):
        try:
            train(folder, status, stopper)
            status.state = "stopped" if stopper.requested.is_set() else "finished"
        except NonFiniteLossError as e:
            status.state, status.message = "failed", str(e)
        except Exception as e:  # every failure is reported, never silent
            status.state, status.message = "failed", explain_failure(e)
            status.traceback_tail = "".join(traceback.format_exc().splitlines(True)[-30:])
            traceback.print_exc()
    status.ended = time.time()
    folder.write_status(status)
    return 1 if status.state == "failed" else 0


def train(folder: RunFolder, status: RunStatus, stopper: StopCallback) -> None:
    """Build the model, data and Trainer from the run folder and train; the whole step is here."""
    import torch
    from transformers import Trainer

    info = read_json(folder.config_file)
    config = TrainConfig.from_json(info["train"])
    spec = ModelSpec.from_json(info["model"])
    device = best_device()
    torch.manual_seed(config.seed)
    counter = TokenCounter()
    callbacks = [MetricsCallback(folder, counter, status), stopper]
    if config.method == "dpo":
        from .dpo import train_dpo

        trainer = train_dpo(folder, config, spec, device, callbacks)
    else:
        tokenizer = load_tokenizer(spec)
        model = build_peft_model(spec, config, device)
        train_set, eval_set = load_snapshot(folder, config)
        if config.batching == "padded":
            collator = PaddedCollator(counter, tokenizer.pad_token_id)
        else:
            collator = FlatCollator(counter)
        trainer = Trainer(
            model=model,
            args=training_arguments(folder, config, device, has_eval=eval_set is not None),
            train_dataset=train_set,
            eval_dataset=eval_set,
            data_collator=collator,
            callbacks=callbacks,
        )
    resume = folder.last_checkpoint()
    print(
        f"[workbench] {config.method} run {folder.root.name} on {device}; resume: {resume}",
        flush=True,
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_adapter(trainer.model, folder, config)


def build_peft_model(spec: ModelSpec, config: TrainConfig, device: str):
    """The base model (4-bit for QLoRA) with a fresh LoRA adapter on all linear layers."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    model = load_model(spec, quantize_4bit=config.quantize_4bit, device=device)
    model.config.use_cache = False  # a cache disables the packed-sequence mask; training needs none
    if config.quantize_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(config.gradient_checkpointing)
        )
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(config))


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


def load_snapshot(folder: RunFolder, config: TrainConfig):
    """The tokenised train (and eval) rows written by the launcher, packed if asked."""
    import datasets

    train_set = datasets.load_from_disk(str(folder.data_dir / "train")).remove_columns("row")
    if config.batching == "packed":
        train_set = packed_blocks(train_set, config.max_length)
    eval_path = folder.data_dir / "eval"
    eval_set = None
    if eval_path.exists():
        eval_set = datasets.load_from_disk(str(eval_path)).remove_columns("row")
    return train_set, eval_set


def training_arguments(folder: RunFolder, config: TrainConfig, device: str, has_eval: bool):
    """TrainingArguments from a TrainConfig: logging every step, checkpoints, no reporting."""
    import torch
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
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def _warmup(arguments_class, ratio: float) -> dict:
    # transformers 5 takes a ratio as a float warmup_steps; 4.x has warmup_ratio
    if "warmup_ratio" in arguments_class.__dataclass_fields__:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def save_adapter(model, folder: RunFolder, config: TrainConfig) -> Path:
    """Write adapter/: safetensors weights, adapter config, the template and the train config."""
    staging = folder.root / ".adapter.staging"
    # only the trained adapter: DPO's frozen "ref" copy stays behind
    model.save_pretrained(str(staging), safe_serialization=True, selected_adapters=["default"])
    atomic_write_json(staging / "template.json", read_json(folder.root / "template.json"))
    atomic_write_json(staging / "train_config.json", config.to_json())
    atomic_write_json(staging / "base_model.json", read_json(folder.config_file)["model"])
    if folder.adapter_dir.exists():
        import shutil

        shutil.rmtree(folder.adapter_dir)
    staging.rename(folder.adapter_dir)
    return folder.adapter_dir


def explain_failure(error: Exception) -> str:
    """One sentence of what happened and what to do, for the widget and the status file."""
    text = f"{type(error).__name__}: {error}"
    if "out of memory" in text.lower():
        return (
            "The GPU ran out of memory. Lower batch_size (raise grad_accumulation to keep the "
            "effective batch), lower max_length, or set gradient_checkpointing=True."
        )
    return f"Training failed: {text[:500]}. The log tail has the details."
