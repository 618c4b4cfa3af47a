"""A trained reward model, kernel side: its record, the checks before use, and loading it to score.

A run of method "reward" (workbench.train.runner.reward) leaves LoRA with a scalar head and
reward_model.json: held-out accuracy and margin, and fingerprints of the pairs it trained on and
held out, so agreement with later votes is measured only on pairs it never saw. The session
loads it here to score answers; GRPO's runner loads it the same way as a reward.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..models import ModelSpec, compute_dtype, quantization_config, resolve
from ..persist import fields_from_json, read_json
from ..templates.template import Template

REWARD_FILE = "reward_model.json"
SCORE_BATCH = 16


class RewardModelError(ValueError):
    """A folder cannot serve as a reward model here; the message names it and what to do."""


@dataclass
class RewardRecord:
    """reward_model.json: how well the reward model ranks pairs it never trained on."""

    held_out_accuracy: float | None = None  # share of held-out pairs scored chosen > rejected
    held_out_margin: float | None = None  # mean score(chosen) - score(rejected) on them
    # the pairs' fingerprints (workbench.preferences.pairs.pair_fingerprint)
    trained_pairs: list[str] = field(default_factory=list)
    held_out_pairs: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = REWARD_FILE) -> RewardRecord:
        """Read reward_model.json; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))


def is_reward_model(folder: str | os.PathLike | None) -> bool:
    """Whether an adapter folder holds a reward model (it has reward_model.json)."""
    return folder is not None and (Path(folder) / REWARD_FILE).is_file()


def _messages(prompt: Any) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def record_json(record: RewardRecord) -> dict[str, Any]:
    """reward_model.json's content."""
    return asdict(record)


def load_reward_base(spec: ModelSpec, *, quantize_4bit: bool, device: str):
    """The base model with a fresh scalar head (sequence classification, one label), from
    safetensors only; 4-bit when asked. A reward adapter's saved head replaces the fresh one."""
    import torch

    kwargs: dict = {"revision": spec.revision, "use_safetensors": True, "num_labels": 1}
    if quantize_4bit:
        kwargs["quantization_config"] = quantization_config(device=device)
        kwargs["device_map"] = {"": device if device == "cpu" else 0}
    else:
        kwargs["dtype"] = compute_dtype(device) if device == "cuda" else torch.float32
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # not the "score.weight newly initialized" report: it is meant
    try:
        model = AutoModelForSequenceClassification.from_pretrained(resolve(spec), **kwargs)
    finally:
        logging.set_verbosity(level)
    return model if quantize_4bit else model.to(device)


class RewardModel:
    """A trained reward model loaded for scoring: base + scalar head + LoRA, its own template."""

    def __init__(self, folder: str | os.PathLike, spec: ModelSpec, device: str | None = None):
        from peft import PeftModel

        from ..models import best_device, load_tokenizer

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
