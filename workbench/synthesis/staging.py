"""The staging area: candidates.jsonl, an append-only log of candidates and of what people decided.

A "candidate" record holds a generated row (or, for a malformed answer, the raw text), where it
came from and the filters' verdict. "accept", "reject" and "edit" records follow it. Reading
the log folds them into one Candidate per id, its status the latest decision. Nothing here
touches the dataset: accepting adds a row through the edit log (the Session does that).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..persist import append_jsonl, from_json, read_jsonl
from .filters import Verdict

STATUSES = ("pending", "dropped", "accepted", "rejected")
DECISIONS = ("accept", "reject", "edit")


@dataclass(frozen=True)
class Origin:
    """Where a candidate came from: the generator, the seed rows shown, when, and what was
    asked. An accepted row carries it (with the candidate's id), so exports mark it."""

    generator: str
    seed_rows: list[int]
    time: float
    instruction: str | None = None
    candidate: str = ""

    def to_json(self) -> dict[str, Any]:
        """As a JSON object (the row's `origin`, with the candidate's id)."""
        return asdict(self)


@dataclass(frozen=True)
class CandidateRecord:
    """A "candidate" line of the log."""

    id: str
    dataset: str  # the fingerprint of the dataset it was made for
    messages: list[dict] | None  # None for a malformed answer
    origin: dict[str, Any]
    verdict: dict[str, Any]
    raw: str | None = None  # the generation itself, kept for a malformed answer
    time: float = 0.0
    event: str = "candidate"


@dataclass(frozen=True)
class DecisionRecord:
    """An "accept", "reject" or "edit" line of the log."""

    event: str
    id: str
    time: float
    row: int | None = None  # accept: the row it became
    reason: str | None = None  # reject: why
    messages: list[dict] | None = None  # edit: the new messages
    verdict: dict[str, Any] | None = None  # edit: the filters' verdict on them


@dataclass(frozen=True)
class Candidate:
    """A staged candidate as it stands: its messages, origin, verdict and the latest decision."""

    id: str
    dataset: str
    messages: list[dict] | None
    origin: Origin
    verdict: Verdict
    status: str  # one of STATUSES
    row: int | None = None
    reason: str | None = None
    raw: str | None = None
    edited: bool = False
    history: list[str] = field(default_factory=list)  # the decisions, oldest first

    @property
    def instruction(self) -> str:
        """Its user turns as one text ("" for a malformed answer)."""
        return "\n".join(m["content"] for m in self.messages or [] if m["role"] == "user")


class Staging:
    """The candidates log of one workspace (Workspace.candidates_file)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def add(self, record: CandidateRecord) -> None:
        """Append a new candidate."""
        append_jsonl(self.path, asdict(record))

    def decide(
        self,
        event: str,
        ids: Iterable[str],
        *,
        rows: Iterable[int | None] | None = None,
        reason: str | None = None,
        messages: list[dict] | None = None,
        verdict: Verdict | None = None,
    ) -> None:
        """Append one decision per id (rows: the row each accepted id became)."""
        if event not in DECISIONS:
            raise ValueError(f"A decision is one of {DECISIONS}; got {event!r}.")
        ids = list(ids)
        rows = list(rows) if rows is not None else [None] * len(ids)
        for candidate_id, row in zip(ids, rows):
            record = DecisionRecord(
                event,
                candidate_id,
                time.time(),
                row,
                reason,
                messages,
                verdict.to_json() if verdict else None,
            )
            append_jsonl(self.path, asdict(record))

    def candidates(self, dataset: str | None = None) -> list[Candidate]:
        """Every candidate (of `dataset`, a fingerprint, when given), oldest first."""
        found: dict[str, Candidate] = {}
        for number, data in enumerate(read_jsonl(self.path), start=1):
            source = f"{self.path}, record {number}"
            if not isinstance(data, dict) or data.get("event") not in ("candidate", *DECISIONS):
                raise ValueError(
                    f"{source}: not a candidate or a decision ({str(data)[:120]!r}); fix or "
                    "delete that line."
                )
            if data["event"] == "candidate":
                found[data["id"]] = _candidate(from_json(CandidateRecord, data, source=source))
            elif data["id"] in found:
                decision = from_json(DecisionRecord, data, source=source)
                found[decision.id] = _decided(found[decision.id], decision, source)
        return [c for c in found.values() if dataset is None or c.dataset == dataset]


def _candidate(record: CandidateRecord) -> Candidate:
    source = f"candidate {record.id}"
    verdict = Verdict.from_json(record.verdict, source=source)
    origin = from_json(Origin, record.origin, source=source)
    status = "pending" if verdict.kept else "dropped"
    return Candidate(
        record.id, record.dataset, record.messages, origin, verdict, status, raw=record.raw
    )


def _decided(candidate: Candidate, decision: DecisionRecord, source: str) -> Candidate:
    history = [*candidate.history, decision.event]
    if decision.event == "accept":
        return replace(candidate, status="accepted", row=decision.row, history=history)
    if decision.event == "reject":
        return replace(candidate, status="rejected", reason=decision.reason, history=history)
    verdict = Verdict.from_json(decision.verdict or {}, source=source)
    status = "pending" if verdict.kept else "dropped"
    return replace(
        candidate,
        messages=decision.messages,
        verdict=verdict,
        status=status,
        edited=True,
        history=history,
    )
