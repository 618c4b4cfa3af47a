"""Preference records: people's votes between two answers, the data of feedback (DPO) tuning."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..persist import fields_from_json

Verdict = Literal["chosen", "tie", "both_bad"]
VERDICTS = ("chosen", "tie", "both_bad")
VOTES = ("A", "B", "tie", "both_bad")
"""What a person clicks: A better, B better, tie, both bad."""


@dataclass(frozen=True)
class PreferenceRecord:
    """One vote: the prompt (as messages), the preferred and the other answer, and who gave them.

    `verdict` is "chosen" when `chosen` won; for "tie" and "both_bad" the two answers are kept
    in the order shown, and DPO skips the record unless asked. `rejected_prompt` is set only
    when the other answer continued a different conversation (multi-turn chats diverge).
    """

    prompt: list[dict]
    chosen: str
    rejected: str
    verdict: Verdict = "chosen"
    chosen_model: str | None = None
    rejected_model: str | None = None
    comment: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0
    id: str = ""
    rejected_prompt: list[dict] | None = None
    blind: bool = False

    @classmethod
    def create(
        cls, prompt: str | list[dict], chosen: str, rejected: str, **details: Any
    ) -> PreferenceRecord:
        """A validated record stamped with the time and an id."""
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        if not isinstance(prompt, list) or not all(isinstance(m, dict) for m in prompt):
            raise TypeError("A preference prompt is a string or a list of role/content messages.")
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise TypeError("The chosen and rejected answers must be strings.")
        verdict = details.get("verdict", "chosen")
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {verdict!r}.")
        unknown = set(details) - {f for f in cls.__dataclass_fields__} - {"time", "id"}
        if unknown:
            raise TypeError(f"Unknown preference fields: {sorted(unknown)}.")
        details.setdefault("time", time.time())
        details.setdefault("id", uuid.uuid4().hex)
        return cls(prompt=prompt, chosen=chosen, rejected=rejected, **details)

    @classmethod
    def from_vote(
        cls,
        prompt: str | list[dict],
        a: tuple[str, str],
        b: tuple[str, str],
        vote: str,
        b_prompt: list[dict] | None = None,
        **details: Any,
    ) -> PreferenceRecord:
        """The record of a click: `a` and `b` are (contestant, answer) as shown, `vote` in VOTES."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}; got {vote!r}.")
        prompt_a = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        prompts = {"A": prompt_a, "B": b_prompt if b_prompt is not None else prompt_a}
        shown = {"A": a, "B": b}
        first, second = ("B", "A") if vote == "B" else ("A", "B")
        verdict = "chosen" if vote in ("A", "B") else vote
        other = prompts[second] if prompts[second] != prompts[first] else None
        return cls.create(
            prompts[first],
            shown[first][1],
            shown[second][1],
            verdict=verdict,
            chosen_model=shown[first][0],
            rejected_model=shown[second][0],
            rejected_prompt=other,
            **details,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON line's dict."""
        return asdict(self)

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, source: str = "preferences.jsonl"
    ) -> PreferenceRecord:
        """A record from a preferences.jsonl line; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))


@dataclass
class PairTally:
    """Votes between two contestants: wins of each, ties and both-bad."""

    wins: dict[str, int] = field(default_factory=dict)
    ties: int = 0
    both_bad: int = 0

    @property
    def total(self) -> int:
        return sum(self.wins.values()) + self.ties + self.both_bad

    def win_rate(self, model: str) -> float:
        """Share of this pair's votes that `model` won (ties and both-bad count as not won)."""
        return self.wins.get(model, 0) / self.total if self.total else 0.0


class PreferenceSet(list):
    """Every vote of a workspace (a list of PreferenceRecord), with the views DPO and people need."""

    def pairs(self, include_ties: bool = False):
        """The votes as DPO pairs (prompt messages, chosen, rejected); ties and both-bad skipped
        unless asked, with counts of what was skipped and of each contestant pair."""
        from .pairs import as_pairs

        return as_pairs(self, include_ties=include_ties)

    def tally(self) -> dict[tuple[str, str], PairTally]:
        """Votes per contestant pair (names sorted), for win rates."""
        tallies: dict[tuple[str, str], PairTally] = {}
        for record in self:
            a, b = record.chosen_model or "?", record.rejected_model or "?"
            tally = tallies.setdefault(tuple(sorted((a, b))), PairTally())
            if record.verdict == "chosen":
                tally.wins[a] = tally.wins.get(a, 0) + 1
            elif record.verdict == "tie":
                tally.ties += 1
            else:
                tally.both_bad += 1
        return tallies
