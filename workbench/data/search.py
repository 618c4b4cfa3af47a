"""Full-text search over every turn, in Arrow, with where each match is for highlighting.

Finding rows is one Arrow kernel per chunk (substring or RE2 regular expression over the flat
content column); the character spans of matches are worked out only for the rows a page shows,
and for a long turn only around the window of it a view shows (`window_matches`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .chunks import message_chunks
from .messages import ROLES
from .selection import RowSelection

if TYPE_CHECKING:
    from .dataset import InstructionDataset

MAX_MATCHES_PER_ROW = 100
MAX_EMPTY = 10 * MAX_MATCHES_PER_ROW  # a pattern that matches empty text: stop, not scan on
LOOKBACK_CHARS = 1_000  # a match starting this far before a window may still reach into it


@dataclass(frozen=True)
class Match:
    """One match: the turn it is in and its character span [start, end) in that turn's text."""

    turn: int
    start: int
    end: int


@dataclass(frozen=True)
class WindowMatches:
    """Matches in one turn around a window of it: `spans` overlap the window (characters of the
    whole turn); `before` and `after` count those wholly outside it, each up to
    MAX_MATCHES_PER_ROW (so a view can say that the hidden part holds matches, and where)."""

    spans: list[tuple[int, int]]
    before: int = 0
    after: int = 0


class SearchResult(RowSelection):
    """The rows that match a query; `matches(row)` says where, and pages carry "matches"."""

    def __init__(self, dataset, rows, query: str, pattern: re.Pattern | None, roles):
        super().__init__(dataset, rows, f"search {query!r}")
        self.query = query
        self._pattern = pattern
        self._roles = set(roles)

    def matches(self, row: int) -> list[Match]:
        """Where the query matches in `row`'s turns (empty when Python cannot run the pattern)."""
        if self._pattern is None:
            return []
        found = []
        for k, message in enumerate(self.dataset.messages_of(row)):
            content = message.get("content")
            if message.get("role") not in self._roles or not isinstance(content, str):
                continue
            empty = 0
            for m in self._pattern.finditer(content):
                if m.end() > m.start():
                    found.append(Match(k, m.start(), m.end()))
                if len(found) >= MAX_MATCHES_PER_ROW:
                    return found
                empty += m.end() == m.start()
                if empty >= MAX_EMPTY:
                    break
        return found

    def window_matches(self, message: dict, start: int, end: int) -> WindowMatches:
        """Where the query matches in `message` around the window [start, end) of its content
        (none for a role not searched); reads no more of a long turn than it must."""
        content = message.get("content")
        if (
            self._pattern is None
            or message.get("role") not in self._roles
            or not isinstance(content, str)
        ):
            return WindowMatches([])
        before = self._count(content, 0, start)
        spans, empty = [], 0
        for m in self._pattern.finditer(content, max(0, start - LOOKBACK_CHARS)):
            empty += m.end() == m.start()
            if m.start() >= end or len(spans) >= MAX_MATCHES_PER_ROW or empty >= MAX_EMPTY:
                break
            if m.end() > max(m.start(), start):
                spans.append((m.start(), m.end()))
        return WindowMatches(spans, before, self._count(content, end, len(content)))

    def _count(self, content: str, start: int, end: int) -> int:
        found = empty = 0
        for m in self._pattern.finditer(content, start, end):
            found += m.end() > m.start()
            empty += m.end() == m.start()
            if found >= MAX_MATCHES_PER_ROW or empty >= MAX_EMPTY:
                break
        return found

    def _decorate(self, rows: list[dict]) -> list[dict]:
        for row in rows:
            row["matches"] = self.matches(row["row"])
        return rows


def search(
    ds: InstructionDataset,
    query: str,
    *,
    regex: bool = False,
    ignore_case: bool = False,
    roles: Sequence[str] | None = None,
    within=None,
) -> SearchResult:
    """Rows with a turn (of `roles`, default all) containing `query`; see InstructionDataset."""
    if not isinstance(query, str) or not query:
        raise ValueError("Search for a non-empty text; to see every row, page the dataset.")
    roles = tuple(roles) if roles else ROLES
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"Unknown role(s) {sorted(unknown)}; roles are {list(ROLES)}.")
    if regex:
        _check_regex(query)
    found = [
        rows[_matching_rows(chunk, query, regex, ignore_case, roles)]
        for rows, chunk in message_chunks(ds, include_excluded=True)
    ]
    hits = np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)
    if within is not None:
        hits = hits[np.isin(hits, np.asarray(list(within), dtype=np.int64))]
    return SearchResult(ds, hits, query, _python_pattern(query, regex, ignore_case), roles)


def _matching_rows(chunk, query: str, regex: bool, ignore_case: bool, roles) -> np.ndarray:
    flat = pc.list_flatten(chunk)
    kernel = pc.match_substring_regex if regex else pc.match_substring
    mask = kernel(flat.field("content"), query, ignore_case=ignore_case)
    if len(roles) < len(ROLES):
        mask = pc.and_(mask, pc.is_in(flat.field("role"), value_set=pa.array(list(roles))))
    parents = pc.filter(pc.list_parent_indices(chunk), mask.fill_null(False))
    return np.unique(parents.to_numpy(zero_copy_only=False))


def _check_regex(query: str) -> None:
    try:
        pc.match_substring_regex(pa.array([""]), query)
    except pa.ArrowInvalid as e:
        detail = str(e).split(":", 1)[-1].strip()
        raise ValueError(
            f"{query!r} is not a valid regular expression ({detail}); fix it, or search it as "
            "plain text with regex=False."
        ) from None


def _python_pattern(query: str, regex: bool, ignore_case: bool) -> re.Pattern | None:
    try:
        return re.compile(query if regex else re.escape(query), re.IGNORECASE if ignore_case else 0)
    except re.error:  # valid RE2 that Python's re does not read: rows found, spans not shown
        return None
