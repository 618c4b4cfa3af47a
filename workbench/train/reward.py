"""Reward models (method "reward"): trained on preference pairs, then loaded to score answers.

The runner trains with TRL's RewardTrainer: LoRA on the session's base model with a scalar head
(sequence classification, one label; the head trains in full and is saved with the adapter),
on 4-bit weights when the plan says so. The tokenizer renders with the run's template, so
prompt and answer read exactly as in generation. The adapter folder gets reward_model.json:
held-out accuracy and margin, and fingerprints of the pairs it trained on and held out, so
agreement with later votes is measured only on pairs it never saw.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..models import ModelSpec
from ..persist import fields_from_json, read_json
from ..templates.template import Template
from .config import TrainConfig
from .folder import RunFolder

REWARD_FILE = "reward_model.json"
SCORE_BATCH = 16


class RewardModelError(ValueError):
    """A folder cannot serve as a reward model here; the message names it and what to do."""


@dataclass
class RewardRecord:
    """reward_model.json: how well the reward model ranks pairs it never trained on."""

    held_out_accuracy: float | None = None  # share of held-out pairs scored chosen > rejected
    held_out_margin: float | None = None  # mean score(chosen) - score(rejected) on them
    trained_pairs: list[str] = field(default_factory=list)  # fingerprints (pair_fingerprint)
    held_out_pairs: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = REWARD_FILE) -> RewardRecord:
        """Read reward_model.json; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))


def is_reward_model(folder: str | os.PathLike | None) -> bool:
    """Whether an adapter folder holds a reward model (it has reward_model.json)."""
    return folder is not None and (Path(folder) / REWARD_FILE).is_file()


def pair_fingerprint(prompt: Any, chosen: Any, rejected: Any) -> str:
    """A short hash of one pair as workbench.preferences.pairs.as_pairs gives it (prompt,
    chosen and rejected messages, or text): the same for a vote and the pair a run trained on."""
    sides = [_plain(prompt, "user"), _plain(chosen, "assistant"), _plain(rejected, "assistant")]
    return hashlib.sha1(json.dumps(sides, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any, role: str) -> list[dict]:
    """Messages (role and content only) from messages or a text of `role`."""
    if isinstance(value, str):
        return [{"role": role, "content": value.strip()}]
    return [{"role": m["role"], "content": str(m["content"]).strip()} for m in value]


def _messages(prompt: Any) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


# -- training, in the runner process ----------------------------------------------------------


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


def record_json(record: RewardRecord) -> dict[str, Any]:
    """reward_model.json's content."""
    return asdict(record)


# -- scoring ----------------------------------------------------------------------------------


class RewardModel:
    """A trained reward model loaded for scoring: base + scalar head + LoRA, its own template."""

    def __init__(self, folder: str | os.PathLike, spec: ModelSpec, device: str | None = None):
        from peft import PeftModel

        from ..models import best_device, load_tokenizer
        from .builders import load_reward_base

        self.folder = Path(folder)
        check_reward_model(self.folder, spec)
        self.record = RewardRecord.from_json(
            read_json(self.folder / REWARD_FILE), source=str(self.folder / REWARD_FILE)
        )
        self.device = device or best_device()
        self.tokenizer = load_tokenizer(spec)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.template = Template.load(self.folder).with_tokenizer(self.tokenizer)
        base = load_reward_base(spec, quantize_4bit=self.device == "cuda", device=self.device)
        base.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = PeftModel.from_pretrained(base, str(self.folder)).eval()

    def score(self, prompt: Any, answers: list[str]) -> list[float]:
        """The reward of each answer to one prompt (a string or messages)."""
        messages = _messages(prompt)
        return self.score_pairs([messages] * len(answers), answers)

    def score_pairs(self, prompts: list, answers: list[str]) -> list[float]:
        """The reward of answer i to prompt i, rendered as the reward model was trained."""
        return self.score_conversations(
            [
                _messages(p) + [{"role": "assistant", "content": str(a)}]
                for p, a in zip(prompts, answers)
            ]
        )

    def score_conversations(self, conversations: list[list[dict]]) -> list[float]:
        """The reward of whole conversations, each ending with the answer to score."""
        return self.score_texts([self.template.render(c) for c in conversations])

    def score_texts(self, texts: list[str]) -> list[float]:
        """Rewards of whole rendered conversations, in batches of SCORE_BATCH."""
        import torch

        out: list[float] = []
        for start in range(0, len(texts), SCORE_BATCH):
            batch = self.tokenizer(
                texts[start : start + SCORE_BATCH],
                return_tensors="pt",
                padding=True,
                padding_side="right",
                add_special_tokens=False,
            ).to(self.model.device)
            with torch.inference_mode():
                logits = self.model(**batch).logits
            out.extend(float(x) for x in logits[:, 0].float().cpu())
        return out


def check_reward_model(folder: str | os.PathLike, spec: ModelSpec) -> None:
    """Refuse a folder that is no reward model, has pickle weights, or was trained on another
    base than `spec` (both named)."""
    from ..answers.adapters import BASE_MODEL_FILE, WEIGHTS_FILE, same_model

    folder = Path(folder)
    if not is_reward_model(folder):
        raise RewardModelError(
            f"{folder} is not a reward model (no {REWARD_FILE}); train one with "
            "TrainConfig(method='reward') and name its run."
        )
    if not (folder / WEIGHTS_FILE).is_file():
        raise RewardModelError(
            f"{folder / WEIGHTS_FILE} is missing; only safetensors weights are loaded."
        )
    trained_on = ModelSpec.from_json(read_json(folder / BASE_MODEL_FILE))
    if not same_model(trained_on, spec):
        raise RewardModelError(
            f"The reward model in {folder} was trained on {trained_on.display_name!r}, but the "
            f"base model here is {spec.display_name!r}; score with a reward model trained on "
            "this base, or switch with session.set_model(...)."
        )


def load_reward_model(folder: str | os.PathLike, spec: ModelSpec) -> RewardModel:
    """A loaded reward model; the last two loaded stay in memory, reloaded when rewritten."""
    folder = Path(folder).resolve()
    check_reward_model(folder, spec)
    stamp = (folder / REWARD_FILE).stat().st_mtime_ns
    return _cached(str(folder), stamp, json.dumps(spec.to_json(), sort_keys=True))


@functools.lru_cache(maxsize=2)
def _cached(folder: str, stamp: int, spec_json: str) -> RewardModel:
    return RewardModel(folder, ModelSpec.from_json(json.loads(spec_json)))


def write_random_reward_model(
    folder: str | os.PathLike, spec: ModelSpec, template: Template, *, seed: int = 0
) -> Path:
    """Save an untrained reward model (random LoRA and head) as a run would; for tests and
    benchmarks, whose scores must differ between answers without any training."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ..answers.adapters import BASE_MODEL_FILE
    from ..persist import atomic_write_json
    from .builders import load_reward_base

    torch.manual_seed(seed)
    base = load_reward_base(spec, quantize_4bit=False, device="cpu")
    lora = LoraConfig(
        r=8, target_modules="all-linear", task_type="SEQ_CLS", init_lora_weights=False
    )
    folder = Path(folder)
    get_peft_model(base, lora).save_pretrained(str(folder), safe_serialization=True)
    template.save(folder)
    atomic_write_json(folder / BASE_MODEL_FILE, spec.to_json())
    atomic_write_json(folder / REWARD_FILE, record_json(RewardRecord()))
    return folder
