"""The keep set: general prompts a run is not about, whose answers should not change.

A model tuned narrowly can get worse everywhere else (catastrophic forgetting). The keep set is
what a run is measured against: by default about 200 varied prompts bundled with the package
(facts, explanations, rewriting, lists, short code, advice, small talk, prompts with a system
turn), or any prompts, rows or file a person gives. Part of it measures drift
(train/runner/keep_drift.py); the rest can be replayed with the base's own answers (keep/replay.py), so the two never mix.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import TrainingDataError

DEFAULT = "default"  # TrainConfig.keep_set: the bundled prompts
OFF = "off"  # TrainConfig.keep_set: no keep set, nothing measured
BUNDLED_FILE = "keep_prompts.jsonl"  # in workbench/demo/assets


@dataclass
class KeepPrompt:
    """One keep prompt: the conversation up to the answer, its kind (bundled prompts only), and
    whether the same prompt is also among the run's training rows (then it measures nothing)."""

    id: int
    messages: list[dict]
    kind: str = ""
    in_training: bool = False

    @property
    def key(self) -> str:
        """The prompt as text, to find it among training prompts."""
        return prompt_key(self.messages)


@dataclass
class KeepSet:
    """Keep prompts and where they came from ("bundled", a file's path, or "given")."""

    prompts: list[KeepPrompt]
    source: str
    flagged: list[int] = field(default_factory=list)  # ids also in the training rows

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def fingerprint(self) -> str:
        """A hash of the prompts, in order (part of the base answers' cache key)."""
        text = "\n".join(p.key for p in self.prompts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def split(self, measure: int, seed: int = 0) -> tuple[list[KeepPrompt], list[KeepPrompt]]:
        """(measuring prompts, replay prompts): `measure` prompts drawn at random (seeded) among
        those not in the training rows, the rest for replay. Never the same prompt in both."""
        usable = [p for p in self.prompts if not p.in_training]
        order = random.Random(seed).sample(usable, len(usable))
        return sorted(order[:measure], key=_id), sorted(order[measure:], key=_id)


def _id(prompt: KeepPrompt) -> int:
    return prompt.id


def bundled_keep_set() -> KeepSet:
    """The ~200 general prompts shipped with the package (workbench/demo/assets)."""
    text = resources.files("workbench.demo").joinpath("assets", BUNDLED_FILE).read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    prompts = [KeepPrompt(i, r["messages"], r.get("kind", "")) for i, r in enumerate(rows)]
    return KeepSet(prompts, "bundled")


def load_keep_set(asked: str | Sequence[Any]) -> KeepSet | None:
    """The keep set `TrainConfig.keep_set` names: "default" (bundled), "off" (None), a .jsonl
    file (rows with `messages` or `prompt`) or .txt file (a prompt a line), or prompts given as
    strings, message lists or rows. Raises TrainingDataError for an empty set or a bad row,
    naming the file and line."""
    if isinstance(asked, str) and asked.strip() in (DEFAULT, OFF):
        return bundled_keep_set() if asked.strip() == DEFAULT else None
    if isinstance(asked, str) and "\n" not in asked and Path(asked).suffix in (".jsonl", ".txt"):
        return _from_file(Path(asked))
    items = asked.splitlines() if isinstance(asked, str) else list(asked)
    prompts = [
        KeepPrompt(i, _messages(item, f"keep_set item {i}"))
        for i, item in enumerate(x for x in items if not (isinstance(x, str) and not x.strip()))
    ]
    return _checked(KeepSet(prompts, "given"), "keep_set")


def _from_file(path: Path) -> KeepSet:
    if not path.is_file():
        raise TrainingDataError(f"keep_set: {path} does not exist. Give a .jsonl or .txt file.")
    lines = path.read_text(encoding="utf-8").splitlines()
    prompts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        if path.suffix == ".txt":
            item: Any = line
        else:
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                raise TrainingDataError(f"keep_set: {where} is not JSON ({e.msg}).") from None
        prompts.append(KeepPrompt(len(prompts), _messages(item, where)))
    return _checked(KeepSet(prompts, str(path)), str(path))


def _messages(item: Any, where: str) -> list[dict]:
    """The conversation up to the answer of a prompt, message list or row."""
    if isinstance(item, str):
        return [{"role": "user", "content": item.strip()}]
    if isinstance(item, dict) and "prompt" in item:
        return _messages(item["prompt"], where)
    messages = item.get("messages") if isinstance(item, dict) else item
    if not _is_conversation(messages):
        raise TrainingDataError(
            f"keep_set: {where} is neither a prompt, a message list nor a row with `messages` "
            "or `prompt`."
        )
    if messages[-1]["role"] == "assistant":  # a whole row: its prompt is what comes before
        messages = messages[:-1]
    if not messages:
        raise TrainingDataError(f"keep_set: {where} has no prompt before its answer.")
    return [dict(m) for m in messages]


def _is_conversation(messages: Any) -> bool:
    if not isinstance(messages, list) or not messages:
        return False
    return all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)


def _checked(keep: KeepSet, source: str) -> KeepSet:
    if not keep.prompts:
        raise TrainingDataError(
            f"keep_set: {source} has no prompts. Give some, use 'default', or 'off' to measure "
            "nothing."
        )
    return keep


def flag_training_overlap(keep: KeepSet, train_rows: Sequence[dict]) -> KeepSet:
    """Mark keep prompts that are also training prompts (they would measure the task, not the
    rest). Raises TrainingDataError when every keep prompt is one: such a keep set measures
    nothing, naming the first few."""
    trained = {prompt_key(_prompt_of(row)) for row in train_rows}
    for prompt in keep.prompts:
        prompt.in_training = prompt.key in trained
    keep.flagged = [p.id for p in keep.prompts if p.in_training]
    if len(keep.flagged) == len(keep.prompts):
        raise TrainingDataError(
            f"keep_set: all {len(keep.prompts)} keep prompts are training prompts too (the first: "
            f"{keep.prompts[0].messages[-1]['content'][:60]!r}), so it would measure nothing. "
            "Keep prompts are what the run is not about: use 'default' or other prompts."
        )
    return keep


def _prompt_of(row: dict) -> list[dict]:
    if "prompt" in row:  # a preference pair
        prompt = row["prompt"]
        return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    messages = row.get("messages") or []
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1]
    return messages


def prompt_key(messages: list[dict]) -> str:
    """Roles and contents of a conversation as one string (other keys left out)."""
    pairs = [[m.get("role"), m.get("content")] for m in messages]
    return json.dumps(pairs, ensure_ascii=False)
