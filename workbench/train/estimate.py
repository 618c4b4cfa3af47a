"""Before launch: how much memory a run needs and how long a step takes, from the model's shape.

Memory is the runner's peak as runs measure it (callbacks.peak_memory): bytes per weight, LoRA
and optimizer state, activations per token as the collator batches them, the chunked loss's
logits, calibrated against measured peaks. Time is refined by earlier runs' speed when known.
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

# Calibration against measured peaks (benchmarks/train_memory.py prints estimate and measure side
# by side: SmolLM2-135M on a CPU, 22 runs of batch 1 and 8, length 256 and 1024, padded,
# padding-free and packed, LoRA and QLoRA, chunked loss, the peak read from VmHWM).
# Activations saved for the backward pass, in values per hidden unit per layer per token:
# LoRA's dropout copies, norms, attention and the MLP's gate/up/act (~3.3 MB a token measured);
# bitsandbytes' CPU path keeps about as much (~3.4 MB a token measured).
# With gradient checkpointing little more than each layer's input stays, once the runner's
# large tensors sit on huge pages (distributed.RUNNER_ENV_DEFAULTS; glibc's heap had kept the
# recomputed layers' freed temporaries: 20 and 11 were measured before): packed 8 x 512 and
# 8 x 1024 measured 5.0 and 2.1 values per hidden unit with LoRA, 2.5 and 2.2 with QLoRA.
SAVED_PER_HIDDEN = {
    "lora": 48,
    "qlora_cpu": 53,
    "lora_checkpointed": 3,
    "qlora_cpu_checkpointed": 2.3,
}
# The runner's interpreter with torch, transformers, peft, datasets and bitsandbytes imported.
RUNTIME_GB = {"cpu": 0.45, "cuda": 0.0}  # torch's reserved GPU memory excludes the runtime
CUDA_CONTEXT_GB = 0.5  # the CUDA context: not in torch's figures, but on the card
# Loading: what stays resident beyond the float weights on a CPU (LoRA), or the unquantized model
# that 4-bit layers are made from (QLoRA): weights' bytes this many times.
CPU_LOAD_COPIES = 0.05
# The chunked loss holds about this many chunk-sized float32 copies of logits at once.
LOGIT_COPIES = 3
# The peak step is the one with the longest rows: a batch of padded rows (each as long as the
# longest) or of padding-free rows end to end holds about this many times the mean row's tokens.
PADDED_LONGEST = 1.3
FLAT_FILLER = 1.25
PACKED_FILL = 0.95  # packed blocks are nearly full
# Disk: a checkpoint holds the adapter in float32 and Adam's two moments (4 + 8 bytes a trained
# weight) and the scheduler, RNG and trainer state; the Trainer keeps two and writes a third
# before it deletes the oldest. The snapshot stores input ids and labels as int64 per token.
CHECKPOINT_BYTES_PER_PARAM = 12
CHECKPOINT_EXTRA_BYTES = 64 * 1024
CHECKPOINTS_AT_ONCE = 3
SNAPSHOT_BYTES_PER_TOKEN = 16


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
    """Peak memory by part (GB; what status.progress.peak_memory_gb measures: the resident set on a
    CPU, torch's reserved memory on a GPU), seconds per step, the device's memory, and a
    warning naming the settings to change when the run will not fit."""

    weights_gb: float
    lora_gb: float
    optimizer_gb: float
    activations_gb: float
    total_gb: float
    seconds_per_step: float
    device: str
    device_memory_gb: float | None
    warning: str = ""
    logits_gb: float = 0.0
    runtime_gb: float = 0.0
    fits: bool = True  # False: the estimate exceeds the device's memory; the launch should stop
    disk_gb: float = 0.0  # what the run writes: data snapshot, checkpoints at once, adapter
    disk_free_gb: float | None = None  # free where the run folder will be (None: not checked)
    disk_fits: bool = True  # False: the run's files will not fit on that disk; train refuses

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
    rows: int = 0,
    disk_free_gb: float | None = None,
) -> Estimate:
    """Peak memory and time of one optimizer step of `config` on `device` (config resolved),
    and the disk the run's files need against `disk_free_gb` (None: no check).

    `mean_tokens_per_row`: the dataset's mean tokenised row, `rows` its count; `device_memory_gb`:
    what the run may use (None: no check). The memory is the runner process's peak, calibrated
    on a CPU.
    """
    tokens = batch_tokens(config, mean_tokens_per_row)
    weights = _weights_bytes(shape, config, device)
    lora_params = sum(config.lora_r * (i + o) for i, o in shape.linear_in_out)
    lora = lora_params * 4
    optimizer = lora_params * 4 * 3  # gradients and two Adam moments, fp32
    activations = tokens * _saved_bytes_per_token(shape, config, device)
    logits = _logits_bytes(shape, config, tokens)
    runtime = RUNTIME_GB.get(device, 0.0) * GB
    total = weights + lora + optimizer + activations + logits
    if device == "cuda":
        total *= 1.15  # the caching allocator reserves more than it hands out
    total += runtime
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
        logits_gb=logits / GB,
        runtime_gb=runtime / GB,
    )
    result.warning, result.fits = fit_warning(result, config, device)
    result.disk_gb = disk_bytes(lora_params, config, rows, mean_tokens_per_row) / GB
    result.disk_free_gb = disk_free_gb
    disk_warning, result.disk_fits = disk_fit_warning(result.disk_gb, disk_free_gb, config)
    result.warning = " ".join(w for w in (result.warning, disk_warning) if w)
    return result


def disk_bytes(lora_params: int, config: TrainConfig, rows: int, mean_tokens: float) -> float:
    """Bytes a run writes at its fullest: the data snapshot, the checkpoints on disk at once
    (the Trainer writes a third before it deletes the oldest of two), and the adapter."""
    checkpoint = lora_params * CHECKPOINT_BYTES_PER_PARAM + CHECKPOINT_EXTRA_BYTES
    saves = CHECKPOINTS_AT_ONCE
    if config.max_steps and config.save_steps:
        saves = min(saves, -(-config.max_steps // config.save_steps))
    tokens = min(mean_tokens, config.max_length or mean_tokens)
    snapshot = rows * tokens * SNAPSHOT_BYTES_PER_TOKEN
    return snapshot + saves * checkpoint + lora_params * 4


def disk_fit_warning(
    need_gb: float, free_gb: float | None, config: TrainConfig
) -> tuple[str, bool]:
    """('', True) when the run's files fit the free disk with room to spare; else a sentence
    with both figures and what to do, and whether they fit at all."""
    if free_gb is None or need_gb <= 0.8 * free_gb:
        return "", True
    fits = need_gb <= free_gb
    verdict = "leaves little room on" if fits else "will not fit on"
    return (
        f"The run writes about {need_gb * 1024:.0f} MB (data snapshot, checkpoints, adapter): it "
        f"{verdict} the disk, {free_gb * 1024:.0f} MB free. Free space "
        "(session.clean_checkpoints() removes the checkpoints of finished runs and keeps their "
        f"adapters), lower lora_r (now {config.lora_r}), or put the workspace on a larger disk.",
        fits,
    )


def batch_tokens(config: TrainConfig, mean_tokens_per_row: float) -> float:
    """Tokens in one batch as the collator builds it: padded rows as long as the longest,
    padding-free rows end to end (with filler), packed blocks nearly full."""
    length = config.max_length or 1024
    row = min(mean_tokens_per_row, length)
    if config.method in PREFERENCE_METHODS:
        return config.batch_size * row * 2 * (PADDED_LONGEST if config.batch_size > 1 else 1)
    if config.batching == "packed":
        return config.batch_size * length * PACKED_FILL
    if config.batching == "padded":
        return config.batch_size * (
            min(row * PADDED_LONGEST, length) if config.batch_size > 1 else row
        )
    return config.batch_size * row * (FLAT_FILLER if config.batch_size > 1 else 1)


def _weights_bytes(shape: ModelShape, config: TrainConfig, device: str) -> float:
    """The base model's resident bytes, with what loading leaves behind on a CPU."""
    linear = sum(i * o for i, o in shape.linear_in_out)
    rest = max(shape.n_params - linear, 0)
    full = 2 if device == "cuda" else 4
    if config.quantize_4bit:
        weights = linear * 0.55 + rest * (full if device == "cuda" else 4)
        return weights + (shape.n_params * 4 if device == "cpu" else 0)
    weights = shape.n_params * full
    return weights * (1 + CPU_LOAD_COPIES if device == "cpu" else 1)


def _saved_bytes_per_token(shape: ModelShape, config: TrainConfig, device: str) -> float:
    """Activation bytes kept for the backward pass per token, all layers (calibrated)."""
    kind = "qlora_cpu" if config.quantize_4bit and device == "cpu" else "lora"
    if config.gradient_checkpointing:
        kind += "_checkpointed"
    return shape.hidden * SAVED_PER_HIDDEN[kind] * (2 if device == "cuda" else 4) * shape.layers


# Float32 logits the runner's chunked loss holds at once (runner/loss.py); fewer bytes means
# more, smaller matrix products.
CHUNK_BYTES = 128 * 1024**2


def chunk_positions(vocab: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Positions per chunk so that one chunk's float32 logits take about `chunk_bytes`."""
    return max(64, chunk_bytes // (4 * max(vocab, 1)))


def _logits_bytes(shape: ModelShape, config: TrainConfig, tokens: float) -> float:
    """SFT's chunked loss holds one chunk of float32 logits; the other methods hold them all."""
    if config.method in ("lora", "qlora"):
        return min(tokens, chunk_positions(shape.vocab)) * shape.vocab * 4 * LOGIT_COPIES
    return tokens * shape.vocab * 4 * 2


def fit_warning(result: Estimate, config: TrainConfig, device: str) -> tuple[str, bool]:
    """('', True) when the run fits the device's memory; else a sentence with the estimate and
    the settings to change, and whether it can fit at all (False: more than all the memory)."""
    memory = result.device_memory_gb
    if not memory:
        return "", True
    need = result.total_gb + (CUDA_CONTEXT_GB if device == "cuda" else 0.0)
    if need <= 0.9 * memory:
        return "", True
    hints = []
    if result.activations_gb + result.logits_gb >= result.weights_gb:
        hints.append(
            f"lower batch_size (now {config.batch_size}; raise grad_accumulation to keep the "
            f"effective batch) or max_length (now {config.max_length})"
        )
        if config.batching == "packed":
            hints.append('use batching="padding_free" (packed blocks are full max_length rows)')
        if not config.gradient_checkpointing:
            hints.append("set gradient_checkpointing=True")
    if not config.quantize_4bit:
        hints.append('use method="qlora" (4-bit base weights)')
    hints.append("or pick a smaller model")
    fits = need <= memory
    verdict = "may not fit in" if fits else "will not fit in"
    text = (
        f"About {need:.1f} GB needed: it {verdict} the {result.device}'s {memory:.1f} GB. "
        f"To fit, {'; '.join(hints)}."
    )
    return text, fits


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
