"""Which candidates to drop, and why: duplicates, near duplicates, look-alikes, quality problems.

A candidate is compared with every row of the dataset and every candidate before it, with the
quality report's own definitions (data/chunks.py): an exact duplicate has the same turns; a
near duplicate the same text after normalising case, punctuation and spacing. As Self-Instruct
does, an instruction (the user turns) whose ROUGE-L F1 with an instruction already there reaches
the threshold is dropped as "similar". Empty turns and rows longer than the training length
under the current template are dropped too. Flags (language, format) never drop: a person judges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..data.chunks import canonical, message_chunks, normalise, row_texts
from ..data.invisible import character_names, invisible_characters
from ..data.messages import MESSAGES_TYPE, encode
from ..persist import from_json
from .flags import Style
from .parse import Parsed
from .similarity import nearest, tokens

if TYPE_CHECKING:
    from ..data import InstructionDataset

DROP_REASONS = ("malformed", "empty_turn", "duplicate", "near_duplicate", "similar", "too_long")
MAX_ROUGE_ROWS = 50_000  # dataset instructions compared by ROUGE-L (an even sample past this)


@dataclass
class Verdict:
    """What the filters (and the judge) made of a candidate: why it was dropped, if it was."""

    dropped: str | None = None  # one of DROP_REASONS, None when kept
    note: str = ""  # for people: "same as row 12", "ROUGE-L 0.82 with candidate 3f2a…"
    rouge_l: float = 0.0  # the highest ROUGE-L F1 of its instruction with one already there
    flags: dict[str, str] = field(default_factory=dict)  # kind -> why ("language", "format")
    grade: int | None = None  # the judge's grade, 1 (bad) to 5 (excellent)
    judge_reason: str | None = None

    @property
    def kept(self) -> bool:
        """Whether the filters let the candidate through to a person."""
        return self.dropped is None

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON object (`from_json` reads it back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> Verdict:
        """A verdict from `to_json` output; an unknown key is refused naming `source`."""
        return from_json(cls, data, source=source)


class References:
    """What a candidate must differ from: the dataset's rows and the candidates before it.

    The dataset's rows are kept as two sorted arrays of text hashes (exact and normalised), 16
    bytes a row, so a dataset of millions of rows costs one pass and no copy of its text; a
    hash that matches is confirmed on the row's own text. Instructions for ROUGE-L are kept as
    tokens, for at most MAX_ROUGE_ROWS rows (the seed rows and an even sample).
    """

    def __init__(self, ds: InstructionDataset | None, seed_rows: Sequence[int] = ()):
        self.ds = ds
        self.exact: dict[str, str] = {}  # candidates' text -> "candidate 3f2a…"
        self.near: dict[str, str] = {}
        self.instructions: list[list[str]] = []
        self.labels: list[str] = []
        self.words: Counter = Counter()
        self._hashes = {"exact": _HashIndex(), "near": _HashIndex()}
        if ds is not None:
            self._add_dataset(ds, set(seed_rows))

    def add(self, label: str, messages: list[dict]) -> None:
        """Count `messages` (a candidate called `label`) as already there."""
        exact, near, ask = texts_of([messages])
        self.exact.setdefault(exact[0], label)
        self.near.setdefault(near[0], label)
        self.instructions.append(tokens(ask[0]))
        self.labels.append(label)

    def where(self, kind: str, text: str) -> str | None:
        """Where `text` (of kind "exact" or "near") is already: "row 12", "candidate …" or None."""
        if self.ds is not None:
            row = self._hashes[kind].find(text, lambda r: _texts_of_row(self.ds, r, kind))
            if row is not None:
                return f"row {row}"
        return (self.exact if kind == "exact" else self.near).get(text)

    def _add_dataset(self, ds: InstructionDataset, seeds: set[int]) -> None:
        every = max(1, -(-len(ds) // MAX_ROUGE_ROWS))  # keep every k-th row past the cap
        for rows, chunk in message_chunks(ds):
            self._hashes["exact"].add(rows, canonical(row_texts(chunk)).to_pylist())
            self._hashes["near"].add(rows, normalise(row_texts(chunk, spaced=True)).to_pylist())
            sampled = [k for k, r in enumerate(rows.tolist()) if r % every == 0 or r in seeds]
            asks = row_texts(chunk.take(pa.array(sampled, pa.int64())), ("user",), True)
            for k, ask in zip(sampled, asks.to_pylist()):
                words = tokens(ask)
                self.instructions.append(words)
                self.labels.append(f"row {int(rows[k])}")
                self.words.update(words)
        for index in self._hashes.values():
            index.seal()


class _HashIndex:
    """Row numbers by the hash of their text: sorted, searched with NumPy."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.hashes = np.zeros(0, np.int64)
        self.rows = np.zeros(0, np.int64)

    def add(self, rows: np.ndarray, texts: list[str | None]) -> None:
        """Take in the texts of these rows (sorted for lookups by `seal`)."""
        self._parts.append((np.fromiter((hash(t) for t in texts), np.int64, len(texts)), rows))

    def seal(self) -> None:
        """Sort what was added, ready for `find`."""
        if self._parts:
            hashes = np.concatenate([h for h, _ in self._parts])
            rows = np.concatenate([r for _, r in self._parts])
            order = np.argsort(hashes, kind="stable")
            self.hashes, self.rows, self._parts = hashes[order], rows[order], []

    def find(self, text: str, text_of_row: Callable[[int], str]) -> int | None:
        """The first row whose text is `text` (a hash match is confirmed on the row's text)."""
        key = hash(text)
        start = np.searchsorted(self.hashes, key, side="left")
        stop = np.searchsorted(self.hashes, key, side="right")
        for row in sorted(self.rows[start:stop].tolist()):
            if text_of_row(row) == text:
                return row
        return None


def _texts_of_row(ds: InstructionDataset, row: int, kind: str) -> str:
    exact, near, _ = texts_of([ds.messages_of(row)])
    return exact[0] if kind == "exact" else near[0]


def texts_of(messages: list[list[dict]]) -> tuple[list[str], list[str], list[str]]:
    """Exact text, normalised text and instruction (user turns) of each candidate."""
    chunk = pa.array([encode(m) for m in messages], MESSAGES_TYPE)
    exact = canonical(row_texts(chunk)).to_pylist()
    near = normalise(row_texts(chunk, spaced=True)).to_pylist()
    asks = [" ".join(m["content"] for m in ms if m.get("role") == "user") for ms in messages]
    return exact, near, asks


class CandidateFilter:
    """Verdicts for parsed candidates; each checked candidate joins the references, so a later
    candidate that repeats it is dropped as well."""

    def __init__(
        self,
        references: References,
        style: Style,
        *,
        threshold: float = 0.7,
        length: Callable[[list[dict]], int] | None = None,
        max_length: int | None = None,
    ):
        self.references = references
        self.style = style
        self.threshold = threshold
        self.length = length
        self.max_length = max_length

    def check(self, labels: Sequence[str], parsed: Sequence[Parsed]) -> list[Verdict]:
        """The verdict on each candidate (`labels` name them in notes), in order."""
        if not parsed:
            return []
        messages = [p.messages for p in parsed]
        exact, near, asks = texts_of(messages)
        words = [tokens(a) for a in asks]
        before = nearest(words, self.references.instructions)
        verdicts = []
        for k, p in enumerate(parsed):
            verdict = self._verdict(p, exact[k], near[k], words[k], before, k, verdicts)
            verdict.flags = self.style.flags(p)
            verdicts.append(verdict)
            self.references.add(labels[k], p.messages)
        return verdicts

    def _verdict(self, parsed, exact, near, words, before, k, verdicts) -> Verdict:
        refs = self.references
        if any(not str(m["content"]).strip() for m in parsed.messages):
            return Verdict("empty_turn", "a turn is empty")
        if where := refs.where("exact", exact):
            return Verdict("duplicate", f"same as {where}{_unseen(parsed.messages)}", 1.0)
        if where := refs.where("near", near):
            return Verdict("near_duplicate", f"nearly the same as {where}", 1.0)
        score, where = float(before.scores[k]), int(before.index[k])
        start = len(refs.instructions) - k  # candidates checked in this call come last
        mine = nearest([words], refs.instructions[start:])  # they joined after `before`
        if mine.scores[0] > score:
            score, where = float(mine.scores[0]), start + int(mine.index[0])
        if score >= self.threshold and where >= 0:
            note = f"ROUGE-L {score:.2f} with {refs.labels[where]}"
            return Verdict("similar", note, score)
        if self.length is not None and self.max_length:
            size = self.length(parsed.messages)
            if size > self.max_length:
                note = f"{size} tokens > the training length {self.max_length}"
                return Verdict("too_long", note, score)
        return Verdict(None, "", score)


def dropped_counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    """How many verdicts dropped their candidate, by reason (reasons with none left out)."""
    counts = Counter(v.dropped for v in verdicts if v.dropped)
    return {reason: counts[reason] for reason in DROP_REASONS if counts[reason]}


def dataset_duplicates(
    ds: InstructionDataset, messages: Sequence[list[dict]]
) -> list[Verdict | None]:
    """For each list of messages, a "duplicate" or "near_duplicate" verdict naming the row of
    `ds` it repeats, or None: one Arrow pass over the dataset, looking the few texts up."""
    if not messages:
        return []
    exact, near, _ = texts_of(list(messages))
    found: list[Verdict | None] = [None] * len(exact)
    wanted = {"duplicate": exact, "near_duplicate": near}
    for rows, chunk in message_chunks(ds):
        texts = {
            "duplicate": canonical(row_texts(chunk)),
            "near_duplicate": normalise(row_texts(chunk, spaced=True)),
        }
        for reason, column in texts.items():
            hit = pc.is_in(column, value_set=pa.array(wanted[reason], pa.string()))
            for h in np.flatnonzero(hit.fill_null(False).to_numpy(zero_copy_only=False)):
                text = column[int(h)].as_py()
                for k, mine in enumerate(wanted[reason]):
                    upgrade = (
                        reason == "duplicate"
                        and found[k] is not None
                        and found[k].dropped != reason
                    )
                    better = found[k] is None or upgrade
                    if mine == text and better:
                        same = "same as" if reason == "duplicate" else "nearly the same as"
                        unseen = _unseen(messages[k]) if reason == "duplicate" else ""
                        found[k] = Verdict(reason, f"{same} row {int(rows[h])}{unseen}", 1.0)
    return found


def _unseen(messages: list[dict]) -> str:
    """ " but for invisible U+200B ZERO WIDTH SPACE" when the candidate holds such characters."""
    chars = invisible_characters("".join(str(m.get("content", "")) for m in messages))
    return f" but for invisible {character_names(chars)}" if chars else ""
