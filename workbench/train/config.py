"""TrainConfig: every setting of a training run, validated, with its help text as field metadata.

Each field carries `help`, its `group` for the form and, where it has them, its `choices`;
rarely touched fields are marked `advanced`. Fields left as None are decided for the model and
the hardware by `workbench.train.plan.plan`, each with a one-line reason in `reasons`. A field that
only one method reads names it under `when` ({"method": (...)}), and the form shows it only for
that method. The launcher form is generated from this metadata (widgets.common.forms.ConfigForm), so a
new field shows in the form without touching the widget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..persist import fields_from_json
from ..settings import documented, setting
from .rewards import as_specs
from .validation import (  # noqa: F401 - the names other modules import from here
    BATCHING,
    BEST_METRICS,
    DPO_LOSSES,
    METHODS,
    MIXED_PRECISION,
    PREFERENCE_METHODS,
    QUANT_STORAGE,
    SCHEDULES,
    TRACKERS,
    ConfigError,
    validate,
)

PLANNED = "None: decided by plan for this model and hardware (see `reasons`)."
# `when` metadata: the methods whose runs read a field (the form shows it only for them)
DPO = {"method": ("dpo",)}
GRPO = {"method": ("grpo",)}
PAIRS = {"method": PREFERENCE_METHODS}
FROM_ADAPTER = {"method": ("dpo", "grpo")}
FEEDBACK = {"method": ("dpo", "reward", "grpo")}
FROM_BASE_4BIT = {"method": ("reward", "grpo")}
# None: the method is planned, and plan picks lora or qlora (supervised tuning) for it.
PROBED = {"method": (None, "lora", "qlora", "dpo")}  # methods whose model answers probes
SFT = {"method": (None, "lora", "qlora")}
# Keep drift past which a run is said to forget (nats per token). benchmarks/forgetting.py: at
# 0.12, after 10 steps of the defaults, 31 of 32 keep answers of the embedded model had changed,
# most into fragments; runs with replay stayed below 0. README, "No worse elsewhere".
DRIFT_LIMIT = 0.1


@documented
@dataclass
class TrainConfig:
    """Settings of one run. None means "decided by plan for this model and hardware"."""

    method: str | None = setting(
        None,
        "qlora: LoRA on 4-bit weights; lora: on full weights; dpo: tuning from preference "
        "pairs; reward: a reward model from preference pairs; grpo: reinforcement learning "
        f"with reward functions. {PLANNED}",
        "basics",
        choices=METHODS,
    )
    max_steps: int = setting(-1, "Optimizer steps to train; -1 trains for `epochs`.", "basics")
    epochs: float = setting(1.0, "Passes over the training rows when max_steps is -1.", "basics")
    learning_rate: float | None = setting(None, f"Peak step size of AdamW. {PLANNED}", "basics")
    batch_size: int | None = setting(None, f"Rows per device per step. {PLANNED}", "basics")
    grad_accumulation: int | None = setting(
        None, f"Batches summed before each optimizer step. {PLANNED}", "basics"
    )
    max_length: int | None = setting(
        None, "Tokens per row; longer rows are cut. None: the session's max_length.", "basics"
    )
    batching: str = setting(
        "padding_free",
        "padding_free: rows end to end without padding; padded: one row per line; "
        "packed: rows packed into full blocks.",
        "basics",
        choices=BATCHING,
    )
    seed: int = setting(0, "Seed of data order and adapter initialisation.", "basics")
    lr_schedule: str = setting(
        "cosine", "How the learning rate changes over the run.", "schedule", choices=SCHEDULES
    )
    warmup_ratio: float = setting(
        0.03, "Share of the steps spent ramping the learning rate up, in [0, 1).", "schedule"
    )
    weight_decay: float = setting(0.0, "AdamW weight decay.", "schedule", advanced=True)
    max_grad_norm: float = setting(
        1.0, "Gradients are clipped to this norm.", "schedule", advanced=True
    )
    gradient_checkpointing: bool | None = setting(
        None,
        f"Recompute activations to save memory (~30% slower). {PLANNED}",
        "schedule",
        advanced=True,
    )
    logging_steps: int = setting(1, "Steps between metrics records.", "schedule", advanced=True)
    eval_steps: int | None = setting(
        None,
        "Steps between evaluations. None: about five per run when there is an eval split.",
        "schedule",
        advanced=True,
    )
    save_steps: int | None = setting(
        None, "Steps between checkpoints. None: about five per run.", "schedule", advanced=True
    )
    probes: int | list[str] = setting(
        4,
        "Prompts answered at each evaluation, kept in samples.jsonl beside the curve: a count "
        "taken from the eval split (its answers are the references), or prompts (one a line; "
        "from code also message lists). 0: none.",
        "evaluation",
        separator="\n",
        rows=2,
        when=PROBED,
    )
    probe_max_new_tokens: int = setting(
        48, "Tokens each probe answer may have.", "evaluation", advanced=True, when=PROBED
    )
    early_stopping_patience: int | None = setting(
        None,
        "Stop when this many evaluations in a row bring no better best_metric (transformers' "
        "EarlyStoppingCallback). None: never stop early.",
        "evaluation",
    )
    keep_best: bool = setting(
        False,
        "The adapter written at the end is the one of the best evaluation, not the last step "
        "(transformers' load_best_model_at_end). Needs an eval split.",
        "evaluation",
    )
    best_metric: str = setting(
        "eval_loss",
        "What 'best' means for keep_best and early stopping: the lowest eval loss, or the "
        "highest probe exact match.",
        "evaluation",
        choices=BEST_METRICS,
        advanced=True,
    )
    report_to: list[str] = setting(
        [],
        "Trackers that also receive the metrics (the package must be installed): "
        f"{', '.join(TRACKERS)}. metrics.jsonl stays the live plot's source.",
        "evaluation",
        advanced=True,
    )
    keep_set: str | list[str] = setting(
        "default",
        "General prompts the run is not about, whose answers should not change: 'default' "
        "(about 200 bundled prompts), 'off', a .jsonl or .txt file, or prompts one a line "
        "(from code also message lists or rows). Its drift from the base is measured as the "
        "run trains.",
        "keep",
        separator="\n",
        rows=2,
        when=PROBED,
    )
    keep_measure: int = setting(
        32,
        "Keep prompts that measure drift; the others may be replayed.",
        "keep",
        advanced=True,
        when=PROBED,
    )
    keep_answers: int = setting(
        16,
        "Measuring prompts answered greedily at the end of the run, with and without the "
        "adapter: the share whose answer changed.",
        "keep",
        advanced=True,
        when=PROBED,
    )
    keep_answers_every: int = setting(
        0,
        "Also answer them at every Nth evaluation; 0: only at the end.",
        "keep",
        advanced=True,
        when=PROBED,
    )
    drift_limit: float | None = setting(
        DRIFT_LIMIT,
        "Keep drift (nats per token) past which the launcher warns and an evaluation never "
        "counts as best (keep_best, early stopping). None: drift is only measured.",
        "keep",
        when=PROBED,
    )
    replay: float | None = setting(
        None,
        "Share of the training rows that are keep prompts with the base's own answers "
        "(self-distillation replay: holds what the model already does). 0: none. "
        f"{PLANNED}",
        "keep",
        when=SFT,
    )
    lora_r: int = setting(16, "LoRA rank: the adapter's capacity.", "lora")
    lora_alpha: int = setting(32, "LoRA scaling; the update is scaled by alpha / r.", "lora")
    lora_dropout: float = setting(0.05, "Dropout on the LoRA input, in [0, 1).", "lora")
    target_modules: list[str] | str = setting(
        "all-linear",
        "Layers that get adapters: 'all-linear', or module names separated by commas.",
        "lora",
        advanced=True,
    )
    base_adapter: str | None = setting(
        None,
        "DPO, GRPO: the run name or adapter folder to start from. None: the base model.",
        "feedback",
        when=FROM_ADAPTER,
    )
    beta: float | None = setting(
        None,
        "KL coefficient: how far the policy may move from where it started (DPO's beta; "
        f"GRPO's KL term, where 0 skips the reference pass). {PLANNED}",
        "feedback",
        when=FROM_ADAPTER,
    )
    dpo_loss: str = setting(
        "sigmoid", "DPO loss.", "feedback", choices=DPO_LOSSES, advanced=True, when=DPO
    )
    max_prompt_length: int = setting(
        512,
        "DPO, reward, GRPO: tokens allowed in a prompt; longer prompts are refused before launch.",
        "feedback",
        advanced=True,
        when=FEEDBACK,
    )
    include_ties: bool = setting(
        False,
        "DPO, reward: also train on votes marked as ties.",
        "feedback",
        advanced=True,
        when=PAIRS,
    )
    rewards: list[str] = setting(
        [],
        "GRPO: reward functions, one per line, summed with reward_weights: exact_match, "
        "contains (against the row's reference answer), format=REGEX (1 when the whole answer "
        "matches), length=N (a penalty past N tokens), reward_model=RUN (a reward model run), "
        "or module:function, a function f(prompts, completions, **columns) -> list[float] in "
        "a .py file the training process can import.",
        "reinforcement",
        rows=4,
        separator="\n",
        when=GRPO,
    )
    reward_weights: list[float] = setting(
        [],
        "GRPO: one weight per reward function, separated by commas; empty: 1 each.",
        "reinforcement",
        when=GRPO,
    )
    num_generations: int | None = setting(
        None,
        f"GRPO: answers sampled per prompt, compared with each other. {PLANNED}",
        "reinforcement",
        when=GRPO,
    )
    max_completion_length: int | None = setting(
        None,
        f"GRPO: tokens sampled per answer at most; longer answers are cut. {PLANNED}",
        "reinforcement",
        when=GRPO,
    )
    temperature: float | None = setting(
        None,
        f"GRPO: sampling temperature of the answers. {PLANNED}",
        "reinforcement",
        when=GRPO,
    )
    load_in_4bit: bool | None = setting(
        None,
        f"Reward, GRPO: train LoRA on 4-bit weights (QLoRA). {PLANNED}",
        "reinforcement",
        advanced=True,
        when=FROM_BASE_4BIT,
    )
    num_processes: int = setting(
        1, "Processes in all, over every machine; the global batch grows with it.", "distributed"
    )
    num_machines: int = setting(1, "Machines the processes run on.", "distributed", advanced=True)
    gpu: int | None = setting(
        None,
        "The GPU (index) a one-process run trains on; it waits in the queue until that GPU is "
        "free. None: the first free GPU (a run of N processes takes N free GPUs).",
        "distributed",
        advanced=True,
    )
    mixed_precision: str | None = setting(
        None,
        "None: bf16 (or fp16) on a GPU that has it, 'no' on a CPU.",
        "distributed",
        choices=MIXED_PRECISION,
        advanced=True,
    )
    fsdp: bool = setting(
        False,
        "Shard weights, gradients and optimizer state instead of DDP replicas.",
        "distributed",
        advanced=True,
    )
    fsdp_offload: bool = setting(
        False,
        "FSDP: keep parameter shards in CPU memory between uses.",
        "distributed",
        advanced=True,
    )
    bnb_4bit_quant_storage: str | None = setting(
        None,
        "Storage of 4-bit weights. None: uint8, or bfloat16 for FSDP.",
        "distributed",
        choices=QUANT_STORAGE,
        advanced=True,
    )
    reasons: dict[str, str] = setting(
        {}, "Why plan chose each value it decided.", "plan", form=False
    )

    def __post_init__(self) -> None:
        try:  # a function given in code is stored by its importable name
            self.rewards, self.reward_weights = as_specs(self.rewards, self.reward_weights)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range (None is allowed
        wherever plan decides the value); the checks live in validation.py."""
        validate(self)

    @property
    def distributed(self) -> bool:
        """True when the run needs `accelerate launch` (more than one process)."""
        return self.num_processes > 1

    @property
    def quantize_4bit(self) -> bool:
        """QLoRA and DPO train LoRA on 4-bit weights; plain LoRA on full-precision ones; reward
        models and GRPO as `load_in_4bit` says.

        False while `method` is None (not yet planned).
        """
        if self.method in ("reward", "grpo"):
            return bool(self.load_in_4bit)
        return self.method in ("qlora", "dpo")

    @property
    def unplanned(self) -> list[str]:
        """The fields plan still has to decide (None), by name: every method's, then this one's."""
        names = PLANNED_FIELDS + METHOD_PLANNED.get(self.method or "", ())
        return [name for name in names if getattr(self, name) is None]

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON-ready values (`from_json` reads it back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "TrainConfig") -> TrainConfig:
        """Rebuild from JSON read from `source`; an unknown key raises ConfigError naming it,
        so a typo never passes silently."""
        try:
            values = fields_from_json(cls, data, source=source)
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from e
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)


# The fields whose None plan always replaces with a value for this model and hardware.
PLANNED_FIELDS = (
    "method",
    "batch_size",
    "grad_accumulation",
    "learning_rate",
    "max_length",
    "gradient_checkpointing",
    "eval_steps",
    "save_steps",
)
# The fields plan decides only for one method (other methods never read them).
METHOD_PLANNED: dict[str, tuple[str, ...]] = {
    "lora": ("replay",),
    "qlora": ("replay",),
    "dpo": ("beta",),
    "reward": ("load_in_4bit",),
    "grpo": ("beta", "num_generations", "max_completion_length", "temperature", "load_in_4bit"),
}
