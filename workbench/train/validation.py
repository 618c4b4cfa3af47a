"""The checks a TrainConfig passes before anything runs, and the choices its fields allow.

Each ConfigError names the field, the value given and what is allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .rewards import check_rewards

if TYPE_CHECKING:
    from .config import TrainConfig

METHODS = ("qlora", "lora", "dpo", "reward", "grpo")
PREFERENCE_METHODS = ("dpo", "reward")  # methods that train on (prompt, chosen, rejected) pairs
BATCHING = ("padding_free", "padded", "packed")
SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup")
DPO_LOSSES = ("sigmoid", "ipo")
MIXED_PRECISION = ("no", "fp16", "bf16")
BEST_METRICS = ("eval_loss", "probe_score")
# report_to's trackers (transformers' integrations) and the package each one needs
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")
QUANT_STORAGE = ("uint8", "bfloat16", "float16", "float32")


class ConfigError(ValueError):
    """A TrainConfig value is out of range; the message names the field and what is allowed."""


MAX_REPLAY = 0.5  # past half, the run would mostly retrain what the base already says


def validate(config: TrainConfig) -> None:
    """Raise ConfigError naming the first field of `config` that is out of range (None is
    allowed wherever plan decides the value)."""
    if config.method is not None:
        _choice("method", config.method, METHODS)
    _choice("batching", config.batching, BATCHING)
    _choice("lr_schedule", config.lr_schedule, SCHEDULES)
    _choice("dpo_loss", config.dpo_loss, DPO_LOSSES)
    if config.max_steps == 0 or config.max_steps < -1:
        raise ConfigError(
            f"max_steps must be positive, or -1 to train by epochs; got {config.max_steps}."
        )
    if config.max_steps == -1 and not config.epochs > 0:
        raise ConfigError(f"epochs must be above 0 when max_steps is -1; got {config.epochs}.")
    for name in ("lora_r", "lora_alpha", "logging_steps"):
        _positive_int(name, getattr(config, name))
    for name in ("batch_size", "grad_accumulation", "eval_steps", "save_steps"):
        if getattr(config, name) is not None:
            _positive_int(name, getattr(config, name))
    for name in ("max_length", "max_prompt_length"):
        if getattr(config, name) is not None:
            _positive_int(name, getattr(config, name))
    if config.learning_rate is not None and not 0 < config.learning_rate < 1:
        raise ConfigError(f"learning_rate must be between 0 and 1; got {config.learning_rate}.")
    if not 0 <= config.warmup_ratio < 1:
        raise ConfigError(f"warmup_ratio must be in [0, 1); got {config.warmup_ratio}.")
    if not 0 <= config.lora_dropout < 1:
        raise ConfigError(f"lora_dropout must be in [0, 1); got {config.lora_dropout}.")
    _validate_feedback(config)
    _validate_processes(config)
    _validate_evaluation(config)
    _validate_keep(config)


def _validate_keep(config) -> None:
    """The keep set's counts, the drift limit, and replay (SFT only, from a keep set)."""
    _positive_int("keep_measure", config.keep_measure)
    for name in ("keep_answers", "keep_answers_every"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 0:
            raise ConfigError(f"{name} must be 0 or more; got {getattr(config, name)!r}.")
    if config.drift_limit is not None and not config.drift_limit > 0:
        raise ConfigError(f"drift_limit must be above 0, or None; got {config.drift_limit}.")
    if config.replay is None or config.replay == 0:
        return
    if not 0 < config.replay <= MAX_REPLAY:
        raise ConfigError(f"replay must be in [0, {MAX_REPLAY}]; got {config.replay}.")
    if config.keep_set == "off" or config.keep_set == []:
        raise ConfigError(
            "replay mixes keep prompts into the training rows, and keep_set is 'off'. Give a "
            "keep set ('default' is the bundled one), or set replay to 0."
        )
    if config.method not in (None, "lora", "qlora"):
        raise ConfigError(
            f"replay mixes rows into supervised training; a {config.method} run has none. "
            "Set replay to 0."
        )


def _validate_feedback(config) -> None:
    if config.beta is not None and not config.beta >= 0:
        raise ConfigError(f"beta must be 0 or more; got {config.beta}.")
    if config.method == "dpo" and config.beta == 0:
        raise ConfigError("DPO needs beta above 0 (0.1 is usual).")
    if config.method == "reward" and config.base_adapter:
        raise ConfigError(
            "A reward model trains a new head on the base model; leave base_adapter empty."
        )
    if config.temperature is not None and not config.temperature > 0:
        raise ConfigError(f"temperature must be above 0; got {config.temperature}.")
    if config.num_generations is not None:
        _positive_int("num_generations", config.num_generations)
        if config.num_generations < 2:
            raise ConfigError(
                "num_generations must be 2 or more: GRPO learns from differences between "
                f"the answers to one prompt; got {config.num_generations}."
            )
    if config.max_completion_length is not None:
        _positive_int("max_completion_length", config.max_completion_length)
    _validate_rewards(config)


def _validate_rewards(config) -> None:
    try:
        check_rewards(config.rewards, config.reward_weights, grpo=config.method == "grpo")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if config.method == "grpo" and None not in (
        config.batch_size,
        config.grad_accumulation,
        config.num_generations,
    ):
        answers = config.batch_size * config.grad_accumulation * config.num_processes
        if answers % config.num_generations:
            raise ConfigError(
                f"GRPO samples num_generations={config.num_generations} answers per prompt, so "
                "batch_size x grad_accumulation x num_processes (now "
                f"{answers}) must be a multiple of it."
            )


def _validate_processes(config) -> None:
    _positive_int("num_processes", config.num_processes)
    _positive_int("num_machines", config.num_machines)
    if config.num_processes % config.num_machines:
        raise ConfigError(
            f"num_processes counts processes on all machines, so it must be a multiple of "
            f"num_machines ({config.num_machines}); got {config.num_processes}."
        )
    if config.gpu is not None and (
        not isinstance(config.gpu, int) or isinstance(config.gpu, bool) or config.gpu < 0
    ):
        raise ConfigError(f"gpu must be a GPU's index (0, 1, ...) or None; got {config.gpu!r}.")
    if config.gpu is not None and config.num_processes > 1:
        raise ConfigError(
            "gpu names the GPU of a one-process run; a run of num_processes="
            f"{config.num_processes} takes that many free GPUs: leave gpu unset."
        )
    if config.mixed_precision is not None:
        _choice("mixed_precision", config.mixed_precision, MIXED_PRECISION)
    if config.bnb_4bit_quant_storage is not None:
        _choice("bnb_4bit_quant_storage", config.bnb_4bit_quant_storage, QUANT_STORAGE)
    if config.fsdp and config.num_processes < 2:
        raise ConfigError("fsdp shards the model over processes: set num_processes to 2 or more.")
    if config.fsdp_offload and not config.fsdp:
        raise ConfigError("fsdp_offload offloads FSDP shards: set fsdp=True as well.")
    if config.fsdp and config.quantize_4bit and config.bnb_4bit_quant_storage == "uint8":
        raise ConfigError(
            "FSDP shards only floating-point weights: with 4-bit weights set "
            "bnb_4bit_quant_storage='bfloat16' (or leave it None to have it chosen)."
        )


def _validate_evaluation(config: TrainConfig) -> None:
    probes = config.probes
    if isinstance(probes, bool) or not isinstance(probes, (int, list)):
        raise ConfigError(PROBES_ARE + f"; got {probes!r:.80}.")
    if isinstance(probes, int) and probes < 0:
        raise ConfigError(f"probes must be 0 or more; got {probes}.")
    for number, item in enumerate(probes if isinstance(probes, list) else []):
        if not (isinstance(item, str) and item.strip()) and not _is_messages(item):
            raise ConfigError(PROBES_ARE + f"; probe {number} is {item!r:.80}.")
    _positive_int("probe_max_new_tokens", config.probe_max_new_tokens)
    if config.early_stopping_patience is not None:
        _positive_int("early_stopping_patience", config.early_stopping_patience)
    _choice("best_metric", config.best_metric, BEST_METRICS)
    for tracker in config.report_to:
        _choice("report_to", tracker, TRACKERS)
    saves, evals = config.save_steps, config.eval_steps
    if config.keep_best and saves and evals and saves % evals:
        raise ConfigError(
            f"keep_best keeps a checkpoint of an evaluation: save_steps ({saves}) must be a "
            f"multiple of eval_steps ({evals}); leave save_steps empty to save at each evaluation."
        )
    if config.best_metric == "probe_score" and config.num_processes > 1:
        raise ConfigError("best_metric='probe_score' needs a one-process run; use 'eval_loss'.")


TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "trackio": ("trackio",),
}


def check_trackers(report_to: list[str]) -> None:
    """Raise ConfigError before launch for a tracker whose package is not installed here."""
    import importlib.util

    for tracker in report_to:
        packages = TRACKER_PACKAGES[tracker]
        if not any(importlib.util.find_spec(p) for p in packages):
            raise ConfigError(
                f"report_to={tracker!r} needs the package {packages[0]}, which is not installed "
                f"here: pip install {packages[0]}, or remove it from report_to."
            )


PROBES_ARE = "probes must be a count (0: none), a list of prompts, or a list of message lists"


def _is_messages(item: Any) -> bool:
    return (
        isinstance(item, list)
        and bool(item)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in item)
    )


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number; got {value!r}.")
