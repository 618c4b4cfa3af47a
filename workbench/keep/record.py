"""keep.json: what a run measures its drift on, written by the launcher, read by the runner.

The measuring prompts with the base's answers (their tokens and labels are the run's `data/keep`
snapshot), how many keep answers to write and when, and the drift limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..persist import atomic_write_json, from_json, read_json


@dataclass
class KeepItem:
    """One measuring prompt: its id in the keep set, the conversation, the text the model
    continues from (rendered with the run's template) and the base's greedy answer."""

    id: int
    messages: list[dict]
    prompt: str
    base_answer: str


@dataclass
class KeepRecord:
    """A run's keep measurement (keep.json)."""

    source: str  # "bundled", a file's path or "given"
    measure: list[KeepItem]
    flagged: list[int] = field(default_factory=list)  # keep ids also among the training rows
    replayed: int = 0  # replay rows in the training data
    answers: int = 16  # measuring prompts answered greedily at the end of the run
    answers_every: int = 0  # ... and at every Nth evaluation (0: only at the end)
    max_new_tokens: int = 48
    drift_limit: float | None = None

    def write(self, path: Path) -> None:
        atomic_write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> KeepRecord:
        data = read_json(path)
        data["measure"] = [from_json(KeepItem, m, source=str(path)) for m in data["measure"]]
        return from_json(cls, data, source=str(path))

    def rows(self) -> list[dict]:
        """The measuring prompts with the base's answers, as training rows (for the snapshot)."""
        return [
            {"messages": [*m.messages, {"role": "assistant", "content": m.base_answer}]}
            for m in self.measure
        ]
