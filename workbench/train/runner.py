"""The runner process: `python -m workbench.train RUN_DIR`. The only place a Trainer is built.

It reads the run folder written by the launcher, trains LoRA (on 4-bit weights for QLoRA),
and writes metrics.jsonl, status.json, checkpoints/ and adapter/. Every ending is recorded in
status.json: finished, stopped (on request, with a checkpoint), or failed with a plain message.
Under `accelerate launch` each process runs it; the main process alone writes (see ranks.py).
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from pathlib import Path

from ..models import ModelSpec, best_device, compute_dtype, load_model, load_tokenizer, resolve
from ..persist import atomic_write_json, read_json
from .callbacks import Heartbeat, MetricsCallback, NonFiniteLossError, StopCallback
from .collate import FlatCollator, PaddedCollator, TokenCounter, packed_blocks
from .config import TrainConfig
from .jobs import job_refusal
from .ranks import launcher_pid, model_placement, replicas_agree, start_process_group
from .run import RunFolder, RunStatus


def main(run_dir: str) -> int:
    """Run the training in RUN_DIR and record how it ended; the exit code is 0 unless it failed.

    Under `accelerate launch` every process runs this; only the main one writes the folder.
    """
    folder = RunFolder(run_dir)
    refusal = job_refusal(folder.root)
    if refusal:
        return refuse(folder, refusal)
    state = start_process_group(best_device())
    stopper = StopCallback(folder)
    signal.signal(signal.SIGTERM, lambda *_: stopper.requested.set())
    signal.signal(signal.SIGINT, lambda *_: stopper.requested.set())
    if not state.is_main_process:
        return _train_quietly(folder, stopper)
    status = folder.read_status()
    status.state, status.pid, status.host = "running", launcher_pid(), socket.gethostname()
    status.worker_pid, status.world_size = os.getpid(), state.num_processes
    status.started, status.ended, status.message, status.traceback_tail = time.time(), None, "", ""
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


def _train_quietly(folder: RunFolder, stopper: StopCallback) -> int:
    """A rank other than the main one: train in step, write nothing; its errors go to the log."""
    try:
        train(folder, RunStatus("running"), stopper)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def refuse(folder: RunFolder, message: str) -> int:
    """Record, without training, why this folder cannot run here (exit code 2)."""
    print(f"[workbench] {message}", flush=True)
    if os.environ.get("RANK", "0") == "0":
        status = folder.read_status()
        status.state, status.message, status.ended = "failed", message, time.time()
        folder.write_status(status)
    return 2


def train(folder: RunFolder, status: RunStatus, stopper: StopCallback) -> None:
    """Build the model, data and Trainer from the run folder and train; the whole step is here."""
    import torch
    from accelerate import PartialState
    from transformers import Trainer

    info = read_json(folder.config_file)
    config = TrainConfig.from_json(info["train"])
    spec = ModelSpec.from_json(info["model"])
    device = best_device()
    torch.manual_seed(config.seed)
    counter = TokenCounter()
    callbacks = [MetricsCallback(folder, counter, status), stopper]
    with PartialState().main_process_first():  # one download or conversion, then the others read
        resolve(spec)
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
            collator = FlatCollator(counter, config.max_length, tokenizer.pad_token_id)
        trainer = Trainer(
            model=model,
            args=training_arguments(folder, config, device, has_eval=eval_set is not None),
            train_dataset=train_set,
            eval_dataset=eval_set,
            data_collator=collator,
            callbacks=callbacks,
        )
    resume = folder.last_checkpoint()
    if trainer.is_world_process_zero():
        print(
            f"[workbench] {config.method} run {folder.root.name} on {device} "
            f"x{trainer.args.world_size}; resume: {resume}",
            flush=True,
        )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_adapter(trainer, folder, config)


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


def save_adapter(trainer, folder: RunFolder, config: TrainConfig) -> Path | None:
    """Write adapter/ from the main process: safetensors weights, adapter and train configs, template.

    Every rank takes part (FSDP gathers the full adapter from all shards first); with DDP the
    ranks must hold the same weights, or the run fails rather than save one rank's view.
    """
    state_dict = None
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        state_dict = trainer.accelerator.get_state_dict(trainer.model)
    elif not replicas_agree(trainer.model):
        raise RuntimeError("the processes ended with different adapter weights")
    if not trainer.is_world_process_zero():
        return None
    if trainer.args.world_size > 1 and not trainer.is_fsdp_enabled:
        print(
            f"[workbench] adapter weights agree across {trainer.args.world_size} processes",
            flush=True,
        )
    model = trainer.accelerator.unwrap_model(trainer.model)
    staging = folder.root / ".adapter.staging"
    # only the trained adapter: DPO's frozen "ref" copy stays behind
    model.save_pretrained(
        str(staging), safe_serialization=True, selected_adapters=["default"], state_dict=state_dict
    )
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
