"""Before launch: how much memory a run needs and how long a step takes, from the model's shape.

The figures are estimates from first principles (bytes per weight, LoRA and optimizer state,
activations per token), refined by the speed of earlier runs in the same workspace when known.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import ModelSpec, resolve
from .config import PREFERENCE_METHODS, TrainConfig

GB = 1024**3
# Sustained training throughput, FLOP/s, for a LoRA step (rough, measured orders of magnitude).
DEVICE_FLOPS = {"cpu": 6e10, "T4": 2e13, "A100": 1e14, "H100": 2.5e14, "cuda": 3e13}
# Sampling one token at a time uses a device this many times worse than a training step does.
DECODING_SLOWDOWN = 4.0


@dataclass
class ModelShape:
    """What the estimate needs to know about a model, read from its config (no weights loaded)."""

    n_params: int
    hidden: int
    layers: int
    vocab: int
    linear_in_out: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Estimate:
    """Memory by part (GB), seconds per step, the device's memory, and a warning if it won't fit."""

    weights_gb: float
    lora_gb: float
    optimizer_gb: float
    activations_gb: float
    total_gb: float
    seconds_per_step: float
    device: str
    device_memory_gb: float | None
    warning: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def model_shape(spec: ModelSpec) -> ModelShape:
    """Parameter count and linear layer shapes, from a meta-device model (instant, no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(resolve(spec), revision=spec.revision)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linears = [
        (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and "lm_head" not in name
    ]
    return ModelShape(
        n_params=sum(p.numel() for p in model.parameters()),
        hidden=config.hidden_size,
        layers=config.num_hidden_layers,
        vocab=config.vocab_size,
        linear_in_out=linears,
    )


def estimate(
    shape: ModelShape,
    config: TrainConfig,
    device: str,
    device_name: str = "",
    device_memory_gb: float | None = None,
    measured_tokens_per_s: float | None = None,
    mean_tokens_per_row: float = 256,
) -> Estimate:
    """Memory and time of one optimizer step of `config` on `device` (config must be resolved)."""
    linear = sum(i * o for i, o in shape.linear_in_out)
    embed = shape.vocab * shape.hidden
    weight_bytes = 0.55 if config.quantize_4bit else (2 if device == "cuda" else 4)
    weights = linear * weight_bytes + embed * (2 if device == "cuda" else 4)
    lora_params = sum(config.lora_r * (i + o) for i, o in shape.linear_in_out)
    lora = lora_params * 4
    optimizer = lora_params * 4 * 3  # gradients and two Adam moments, fp32
    tokens = config.batch_size * min(mean_tokens_per_row, config.max_length or 1024)
    if config.method in PREFERENCE_METHODS:
        tokens *= 2  # a chosen and a rejected sequence per pair
    if config.batching == "padded":
        tokens *= 1.3  # padding to the longest row of a batch
    act_per_token = shape.hidden * shape.layers * (2 if config.gradient_checkpointing else 18)
    act_bytes = 2 if device == "cuda" else 4
    activations = tokens * (
        act_per_token * act_bytes + shape.vocab * 4 * 2
    )  # logits and their grad
    total = (weights + lora + optimizer + activations) * 1.15 + 0.3 * GB  # allocator, runtime
    flops = 4 * shape.n_params * tokens * config.grad_accumulation
    if measured_tokens_per_s:
        seconds = tokens * config.grad_accumulation / measured_tokens_per_s
    else:
        seconds = flops / DEVICE_FLOPS.get(device_name, DEVICE_FLOPS.get(device, 2e10))
    seconds += _sampling_seconds(shape, config, device, device_name)
    result = Estimate(
        weights / GB,
        lora / GB,
        optimizer / GB,
        activations / GB,
        total / GB,
        seconds,
        device_name or device,
        device_memory_gb,
    )
    if device_memory_gb and result.total_gb > 0.9 * device_memory_gb:
        result.warning = (
            f"About {result.total_gb:.1f} GB needed but the {result.device} has "
            f"{device_memory_gb:.1f} GB: lower batch_size or max_length, or turn on "
            "gradient_checkpointing."
        )
    return result


def _sampling_seconds(shape: ModelShape, config: TrainConfig, device: str, name: str) -> float:
    """GRPO's answers, sampled token by token before each step (0 for other methods)."""
    if config.method != "grpo":
        return 0.0
    sampled = config.batch_size * config.grad_accumulation * (config.max_completion_length or 0)
    flops = 2 * shape.n_params * sampled * DECODING_SLOWDOWN
    return flops / DEVICE_FLOPS.get(name, DEVICE_FLOPS.get(device, 2e10))


def detect_device() -> tuple[str, str, float | None]:
    """('cuda' or 'cpu', a short card name such as 'T4' or 'H100', memory in GB)."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        name = next(
            (n for n in ("T4", "A100", "H100", "H200", "L4", "V100") if n in props.name), "cuda"
        )
        return "cuda", name, props.total_memory / GB
    try:
        import os

        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError, AttributeError):
        memory = None
    return "cpu", "cpu", memory
