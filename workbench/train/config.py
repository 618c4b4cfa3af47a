"""TrainConfig: every setting of a training run, validated, with defaults chosen from the hardware.

Fields left as None are decided by `resolve()` from the model size and the device, and each
decision comes with a one-line reason that the launcher form shows next to the value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

METHODS = ("qlora", "lora", "dpo")
BATCHING = ("padding_free", "padded", "packed")
SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup")
DPO_LOSSES = ("sigmoid", "ipo")
MIXED_PRECISION = ("no", "fp16", "bf16")
QUANT_STORAGE = ("uint8", "bfloat16", "float16", "float32")


class ConfigError(ValueError):
    """A TrainConfig value is out of range; the message names the field and what is allowed."""


@dataclass
class TrainConfig:
    """Settings of one run. None means "decide for this model and hardware" (see `resolve`)."""

    method: str = "qlora"
    max_steps: int = -1  # -1: train for `epochs`
    epochs: float = 1.0
    learning_rate: float | None = None
    lr_schedule: str = "cosine"
    warmup_ratio: float = 0.03
    batch_size: int = 8
    grad_accumulation: int = 1
    max_length: int | None = None  # None: the session's training length
    batching: str = "padding_free"
    gradient_checkpointing: bool | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 1
    eval_steps: int | None = (
        None  # None: about five evaluations per run when there is an eval split
    )
    save_steps: int | None = None  # None: about five checkpoints per run
    seed: int = 0
    # Feedback tuning (method="dpo")
    base_adapter: str | None = None  # run name or adapter folder to start DPO from
    beta: float = 0.1
    dpo_loss: str = "sigmoid"
    max_prompt_length: int = 512
    include_ties: bool = False
    # Many processes through `accelerate launch` (docs/distributed.md)
    num_processes: int = 1  # in all, over every machine; the global batch grows with it
    num_machines: int = 1
    mixed_precision: str | None = None  # None: bf16 (or fp16) on a GPU that has it, "no" on CPU
    fsdp: bool = False  # shard weights, gradients and optimizer state instead of DDP replicas
    fsdp_offload: bool = False  # FSDP: keep the parameter shards in CPU memory between uses
    bnb_4bit_quant_storage: str | None = None  # None: uint8, or bfloat16 for FSDP with 4-bit
    reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range."""
        _choice("method", self.method, METHODS)
        _choice("batching", self.batching, BATCHING)
        _choice("lr_schedule", self.lr_schedule, SCHEDULES)
        _choice("dpo_loss", self.dpo_loss, DPO_LOSSES)
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(
                f"max_steps must be positive, or -1 to train by epochs; got {self.max_steps}."
            )
        if self.max_steps == -1 and not self.epochs > 0:
            raise ConfigError(f"epochs must be above 0 when max_steps is -1; got {self.epochs}.")
        for name in ("batch_size", "grad_accumulation", "lora_r", "lora_alpha", "logging_steps"):
            _positive_int(name, getattr(self, name))
        for name in ("eval_steps", "save_steps", "max_length", "max_prompt_length"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning_rate must be between 0 and 1; got {self.learning_rate}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1); got {self.warmup_ratio}.")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1); got {self.lora_dropout}.")
        if self.beta <= 0:
            raise ConfigError(f"beta must be above 0; got {self.beta}.")
        self._validate_processes()

    def _validate_processes(self) -> None:
        _positive_int("num_processes", self.num_processes)
        _positive_int("num_machines", self.num_machines)
        if self.num_processes % self.num_machines:
            raise ConfigError(
                f"num_processes counts processes on all machines, so it must be a multiple of "
                f"num_machines ({self.num_machines}); got {self.num_processes}."
            )
        if self.mixed_precision is not None:
            _choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        if self.bnb_4bit_quant_storage is not None:
            _choice("bnb_4bit_quant_storage", self.bnb_4bit_quant_storage, QUANT_STORAGE)
        if self.fsdp and self.num_processes < 2:
            raise ConfigError(
                "fsdp shards the model over processes: set num_processes to 2 or more."
            )
        if self.fsdp_offload and not self.fsdp:
            raise ConfigError("fsdp_offload offloads FSDP shards: set fsdp=True as well.")
        if self.fsdp and self.quantize_4bit and self.bnb_4bit_quant_storage == "uint8":
            raise ConfigError(
                "FSDP shards only floating-point weights: with 4-bit weights set "
                "bnb_4bit_quant_storage='bfloat16' (or leave it None to have it chosen)."
            )

    @property
    def distributed(self) -> bool:
        """True when the run needs `accelerate launch` (more than one process)."""
        return self.num_processes > 1

    @property
    def quantize_4bit(self) -> bool:
        """QLoRA and DPO train LoRA on 4-bit weights; plain LoRA on full-precision ones."""
        return self.method in ("qlora", "dpo")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from JSON; unknown keys are an error so a typo never passes silently."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"Unknown TrainConfig fields {unknown}; known: {sorted(names)}.")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def resolve(self, *, n_params: int, device: str, session_max_length: int) -> TrainConfig:
        """A copy with every None decided for this model size and device, with the reasons."""
        reasons = dict(self.reasons)
        changes: dict[str, Any] = {}
        if self.learning_rate is None:
            lr, why = _default_learning_rate(n_params, self.method)
            changes["learning_rate"] = lr
            reasons["learning_rate"] = why
        if self.max_length is None:
            changes["max_length"] = session_max_length
            reasons["max_length"] = "the session's training length (session.max_length)"
        if self.gradient_checkpointing is None:
            on = device == "cuda" and n_params > 1_000_000_000
            changes["gradient_checkpointing"] = on
            reasons["gradient_checkpointing"] = (
                "on: a model over 1B parameters on a GPU needs the activation memory"
                if on
                else "off: memory is not the limit here, and recomputation would cost ~30% speed"
            )
        if self.fsdp and self.quantize_4bit and self.bnb_4bit_quant_storage is None:
            changes["bnb_4bit_quant_storage"] = "bfloat16"
            reasons["bnb_4bit_quant_storage"] = (
                "bfloat16: FSDP shards only floating-point tensors, so the 4-bit weights are "
                "stored packed in bfloat16"
            )
        if self.method == "qlora" and device == "cpu":
            reasons["method"] = (
                "qlora as asked; on a CPU 4-bit weights save no time and little memory for a small "
                "model, and method='lora' trains faster with a slightly better loss"
            )
        return dataclasses.replace(self, **changes, reasons=reasons)


HARDWARE_DEFAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "cpu": (
        {"method": "lora", "batch_size": 8},
        "CPU: 4-bit weights bring no speed or memory gain for a small model here, so plain LoRA",
    ),
    "T4": (
        {"method": "qlora", "batch_size": 4, "grad_accumulation": 2},
        "T4 (16 GB, fp16): QLoRA, small batches with accumulation",
    ),
    "A100": ({"method": "qlora", "batch_size": 16}, "A100: QLoRA with bf16 and large batches"),
    "H100": ({"method": "qlora", "batch_size": 16}, "H100: QLoRA with bf16 and large batches"),
}


def for_hardware(device_name: str, **overrides: Any) -> TrainConfig:
    """The starting form for this card ('cpu', 'T4', 'A100', 'H100', other GPUs as A100)."""
    values, why = HARDWARE_DEFAULTS.get(device_name, HARDWARE_DEFAULTS["A100"])
    config = TrainConfig(**{**values, **overrides})
    config.reasons = {"method": why, **config.reasons}
    return config


def _default_learning_rate(n_params: int, method: str) -> tuple[float, str]:
    if method == "dpo":
        return 5e-6 if n_params > 3e9 else 5e-5, "DPO moves a tuned policy: a small step size"
    if n_params < 1e9:
        return 1e-3, "LoRA on a model under 1B parameters learns fastest near 1e-3"
    if n_params < 1e10:
        return 2e-4, "the QLoRA paper's rate for 7B-class models"
    return 1e-4, "large models are stable at 1e-4 with LoRA"


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number; got {value!r}.")
