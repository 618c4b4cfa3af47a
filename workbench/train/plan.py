"""plan: the one place that decides a run's open settings, for code and the launcher alike.

Every TrainConfig field left as None that depends on the model or the hardware (method, batch
size, accumulation, learning rate, sequence length, checkpointing, 4-bit storage under FSDP,
the KL coefficient of DPO and GRPO, 4-bit weights of reward models and GRPO, GRPO's sampling)
is decided here, and each decision gets a one-line reason in `config.reasons`. A value the
person set is never changed. `Session.plan` calls this with the detected device.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import TrainConfig

# Per card: the method and batch shape that suit it, and why. Other GPUs plan as "gpu".
HARDWARE: dict[str, tuple[dict[str, Any], str]] = {
    "cpu": (
        {"method": "lora", "batch_size": 8, "grad_accumulation": 1},
        "CPU: 4-bit weights bring no speed or memory gain for a small model here, so plain LoRA "
        "with batches of 8",
    ),
    "T4": (
        {"method": "qlora", "batch_size": 4, "grad_accumulation": 2},
        "T4 (16 GB, fp16): QLoRA, small batches of 4 with accumulation over 2",
    ),
    "gpu": (
        {"method": "qlora", "batch_size": 16, "grad_accumulation": 1},
        "QLoRA with bf16 and large batches of 16",
    ),
}


def hardware_defaults(device_name: str) -> tuple[dict[str, Any], str]:
    """The method and batch shape for a card ('cpu', 'T4', 'A100', ...), and the reason."""
    if device_name in HARDWARE:
        return HARDWARE[device_name]
    values, why = HARDWARE["gpu"]
    return values, f"{device_name or 'GPU'}: {why}"


def plan(
    config: TrainConfig,
    *,
    n_params: int,
    device: str,
    device_name: str,
    session_max_length: int,
) -> TrainConfig:
    """A copy of `config` with every None decided for this model size (parameters) and device.

    `device` is 'cuda' or 'cpu'; `device_name` the card ('cpu', 'T4', 'A100', 'H100', ...).
    Each decided field gets its reason in `reasons`; values already set are kept as they are.
    Raises ConfigError when the decided values clash with the ones set.
    """
    reasons = dict(config.reasons)
    changes: dict[str, Any] = {}
    values, why = hardware_defaults(device_name)
    for name, value in values.items():
        if getattr(config, name) is None:
            changes[name], reasons[name] = value, why
    method = changes.get("method", config.method)
    if method == "grpo":
        _plan_sampling(config, changes, reasons, device, session_max_length)
    if config.learning_rate is None:
        changes["learning_rate"], reasons["learning_rate"] = _learning_rate(n_params, method)
    if config.max_length is None:
        changes["max_length"] = session_max_length
        reasons["max_length"] = "the session's training length (session.max_length)"
    if config.gradient_checkpointing is None:
        batch = changes.get("batch_size", config.batch_size)
        length = changes.get("max_length", config.max_length)
        changes["gradient_checkpointing"], reasons["gradient_checkpointing"] = _checkpointing(
            n_params, device, config.batching, batch * length
        )
    _plan_feedback(config, method, device, changes, reasons)
    _plan_schedule(config, changes, reasons)
    if config.mixed_precision is None and (decided := _mixed_precision(device, device_name)):
        changes["mixed_precision"], reasons["mixed_precision"] = decided
    if config.replay is None and method in ("lora", "qlora"):  # the runs with supervised rows
        changes["replay"], reasons["replay"] = _replay(config)
    four_bit = method in ("qlora", "dpo") or changes.get("load_in_4bit", config.load_in_4bit)
    if config.fsdp and four_bit and config.bnb_4bit_quant_storage is None:
        changes["bnb_4bit_quant_storage"] = "bfloat16"
        reasons["bnb_4bit_quant_storage"] = (
            "bfloat16: FSDP shards only floating-point tensors, so the 4-bit weights are "
            "stored packed in bfloat16"
        )
    if config.method == "qlora" and device == "cpu":
        reasons["method"] = (
            "qlora as asked; on a CPU 4-bit weights save no time and little memory for a small "
            "model, and method='lora' trains faster with a slightly better loss"
        )
    return dataclasses.replace(config, **changes, reasons=reasons)


def _plan_feedback(config: TrainConfig, method, device: str, changes: dict, reasons: dict) -> None:
    """DPO's and GRPO's KL coefficient, and 4-bit weights for reward models and GRPO."""
    if config.beta is None and method in BETA:
        changes["beta"], reasons["beta"] = BETA[method]
    if config.load_in_4bit is None and method in ("reward", "grpo"):
        on = device == "cuda"
        changes["load_in_4bit"] = on
        reasons["load_in_4bit"] = (
            "on: 4-bit weights on a GPU, as QLoRA"
            if on
            else "off: on a CPU 4-bit weights save no time and little memory for a small model"
        )


# Evaluations (and checkpoints) a run gets when their interval is not set: enough points for the
# eval curve, the probes and keep drift to show a trend, few enough to cost little.
EVALUATIONS = 5
STEPS_UNKNOWN = 500  # a run's length in steps before its rows are counted (an epoch budget)
# Cards without bfloat16 arithmetic (compute capability under 8.0): fp16 there.
FP16_CARDS = ("T4", "V100")


def schedule(config: TrainConfig) -> tuple[int, int]:
    """(eval_steps, save_steps) of `config`, each as set or as plan decides it."""
    changes: dict[str, int] = {}
    _plan_schedule(config, changes, {})
    return (
        changes.get("eval_steps", config.eval_steps),
        changes.get("save_steps", config.save_steps),
    )


def _plan_schedule(config: TrainConfig, changes: dict, reasons: dict) -> None:
    """eval_steps and save_steps, about EVALUATIONS a run; keep_best saves at each evaluation."""
    steps = config.max_steps if config.max_steps > 0 else STEPS_UNKNOWN
    every = max(1, steps // EVALUATIONS)
    basis = (
        f"{steps} steps" if config.max_steps > 0 else f"an epoch budget (counted as {steps} steps)"
    )
    if config.eval_steps is None:
        changes["eval_steps"] = every
        reasons["eval_steps"] = f"{every}: about {EVALUATIONS} evaluations over {basis}"
    if config.save_steps is None:
        evals = changes.get("eval_steps", config.eval_steps)
        keep = config.keep_best
        changes["save_steps"] = evals if keep else every
        reasons["save_steps"] = (
            f"{evals}: keep_best keeps the best evaluation's checkpoint, so one at each"
            if keep
            else f"{every}: about {EVALUATIONS} checkpoints over {basis}"
        )


def _mixed_precision(device: str, device_name: str) -> tuple[str, str] | None:
    """The Trainer's mixed precision for the device, and why; None for a card this table does
    not know (the runner then reads its bf16 support when it starts)."""
    if device != "cuda":
        return "no", "no: float32 on a CPU"
    if device_name in FP16_CARDS:
        return "fp16", f"fp16: a {device_name} has no bfloat16 arithmetic"
    if device_name in ("A100", "H100", "H200", "L4"):
        return "bf16", f"bf16: a {device_name} computes bfloat16 fastest, without fp16's overflow"
    return None


# What replay plan picks for supervised runs with a keep set (benchmarks/forgetting.py).
REPLAY = 0.1
REPLAY_REASON = (
    "0.1: a tenth of the rows are keep prompts with the base's own answers; measured on the demo "
    "skills it held the model's other answers (keep drift 0.57 -> -0.30 nats per token) for 2 "
    "points of task exact match and 2% more time (benchmarks/forgetting.py)"
)


def _replay(config: TrainConfig) -> tuple[float, str]:
    """The share of replayed keep rows in a supervised run, and why."""
    if config.keep_set in ("off", []):
        return 0.0, "0: there is no keep set to replay (keep_set='off')"
    return REPLAY, REPLAY_REASON


# Full packed blocks of this many tokens a step keep activations of several GB (3.3 MB a token
# on the embedded 135M model, benchmarks/train_memory.py): worth recomputing them.
PACKED_TOKENS_TO_CHECKPOINT = 4096


def _checkpointing(n_params: int, device: str, batching: str, tokens: int) -> tuple[bool, str]:
    """Whether to recompute activations in the backward pass (gradient checkpointing), and why."""
    if device == "cuda" and n_params > 1_000_000_000:
        return True, "on: a model over 1B parameters on a GPU needs the activation memory"
    if batching == "packed" and tokens >= PACKED_TOKENS_TO_CHECKPOINT:
        return True, (
            f"on: packed blocks of {tokens} tokens a step keep activations of several GB; "
            "recomputing them costs ~30% speed"
        )
    return False, "off: memory is not the limit here, and recomputation would cost ~30% speed"


def _plan_sampling(
    config: TrainConfig, changes: dict, reasons: dict, device: str, session_max_length: int
) -> None:
    """GRPO's answers per prompt, their length and temperature, and a batch that holds whole
    groups of answers."""
    gpu = device == "cuda"
    batch = changes.get("batch_size", config.batch_size)
    steps = changes.get("grad_accumulation", config.grad_accumulation)
    if config.num_generations is None:
        wanted = 8 if gpu else 4
        if config.batch_size is not None:  # set by the person: a group size that fits it
            answers = batch * steps * config.num_processes
            wanted = max((g for g in range(2, wanted + 1) if answers % g == 0), default=wanted)
        changes["num_generations"] = wanted
        reasons["num_generations"] = f"{wanted} answers per prompt: enough spread to compare" + (
            " on a GPU" if gpu else ", few enough that sampling on a CPU stays quick"
        )
    groups = changes.get("num_generations", config.num_generations)
    if config.batch_size is None and (batch * steps * config.num_processes) % groups:
        changes["batch_size"] = groups * max(1, round(batch / groups))
        reasons["batch_size"] = f"whole groups of {groups} answers per step"
    if config.max_completion_length is None:
        length = min(256 if gpu else 64, session_max_length)
        changes["max_completion_length"] = length
        reasons["max_completion_length"] = (
            f"{length} tokens: every sampled token costs a forward pass"
            + ("" if gpu else " on a CPU; raise it for longer answers")
        )
    if config.temperature is None:
        changes["temperature"] = 1.0
        reasons["temperature"] = (
            "1.0: answers sampled as the model's own distribution, so the group's answers differ"
        )


BETA = {
    "dpo": (0.1, "DPO's usual strength of the pull towards the starting point"),
    "grpo": (0.04, "the GRPO paper's KL coefficient; 0 skips the reference pass (faster)"),
}


def _learning_rate(n_params: int, method: str | None) -> tuple[float, str]:
    if method == "dpo":
        return 5e-6 if n_params > 3e9 else 5e-5, "DPO moves a tuned policy: a small step size"
    if method == "reward":
        return (1e-4 if n_params > 1e9 else 5e-4), "a reward model's LoRA and fresh head"
    if method == "grpo":
        return (
            1e-5 if n_params > 1e9 else 5e-5,
            "GRPO moves a tuned policy by sampled rewards: a small LoRA step size",
        )
    if n_params < 1e9:
        return 1e-3, "LoRA on a model under 1B parameters learns fastest near 1e-3"
    if n_params < 1e10:
        return 2e-4, "the QLoRA paper's rate for 7B-class models"
    return 1e-4, "large models are stable at 1e-4 with LoRA"


def for_hardware(device_name: str, **overrides: Any) -> TrainConfig:
    """Deprecated: use TrainConfig(...) and let plan decide; kept for old notebooks.

    Returns an unplanned TrainConfig with this card's method and batch shape set explicitly.
    """
    import warnings

    warnings.warn(
        "for_hardware is deprecated: pass TrainConfig(...) to session.train, whose plan "
        "chooses the hardware defaults (see session.plan(config).reasons).",
        DeprecationWarning,
        stacklevel=2,
    )
    values, why = hardware_defaults(device_name)
    config = TrainConfig(**{**values, **overrides})
    config.reasons = {"method": why, **config.reasons}
    return config
