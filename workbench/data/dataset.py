"""InstructionDataset: Arrow-backed rows in canonical chat form, seen through the edit log."""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .blocks import LoadReport
from .messages import decode
from .selection import DEFAULT_PAGE_SIZE, Page, RowSelection, clamp_page

if TYPE_CHECKING:
    from .lengths import DatasetStats, TokenLengths
    from .quality import QualityReport
    from .search import SearchResult

RESERVED = ("messages", "row", "flag", "excluded", "edited")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class InstructionDataset:
    """Rows of chat `messages`, with the session's edits, flags, exclusions and added rows applied.

    The Arrow table (memory-mapped for files) is never modified: edits live in an overlay
    rebuilt from the workspace's append-only edit log. Reading goes through page/search/filter/
    quality/stats, which work on Arrow chunks rather than Python rows.
    """

    def __init__(
        self,
        table,
        source_ref: dict | None = None,
        *,
        fingerprint: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        load_report: LoadReport | None = None,
    ):
        if table._indices is not None:
            table = table.flatten_indices()
        self.table = table
        self.source_ref = source_ref
        self.fingerprint: str = fingerprint or table._fingerprint
        self.cache_dir: Path | None = Path(cache_dir) if cache_dir else _cache_dir_of(table)
        self.load_report = load_report or LoadReport(rows=len(table), format="chat")
        self.edited: dict[int, list[dict]] = {}
        self.flags: dict[int, str] = {}
        self.excluded: set[int] = set()
        self.added: list[list[dict]] = []
        self.origins: dict[int, dict] = {}  # added row -> where it came from (synthetic rows)
        self.edit_version = 0  # grows with each edit; keys what is cached about the rows
        self.last_split: tuple[float, int] | None = None
        self._template: Callable | None = None
        self._max_length: Callable | None = None
        self._memo: dict[Any, Any] = {}

    # -- what it is ---------------------------------------------------------------------------
    @property
    def arrow(self):
        """The base rows as a pyarrow Table (memory-mapped where loaded from a file)."""
        return self.table.data.table

    @property
    def is_preference(self) -> bool:
        """Preference pairs: `messages` ends with the chosen answer, `rejected` holds the other."""
        return "rejected" in self.table.column_names

    @property
    def extra_columns(self) -> list[str]:
        """Source columns kept beside `messages` (ids, answers, tools ...)."""
        return [c for c in self.table.column_names if c != "messages"]

    def bind(self, template: Callable, max_length: Callable) -> None:
        """Callables giving the session's current Template and training length, for length stats."""
        self._template, self._max_length = template, max_length

    @property
    def template(self):
        """The bound Template (with its tokenizer), or None before `bind`."""
        return self._template() if self._template is not None else None

    @property
    def max_length(self) -> int | None:
        """The bound training length in tokens, or None before `bind`."""
        return self._max_length() if self._max_length is not None else None

    def __len__(self) -> int:
        return len(self.table) + len(self.added)

    def __repr__(self) -> str:
        kind = "preference pairs" if self.is_preference else self.load_report.format
        return f"InstructionDataset({len(self)} rows, {kind}, {len(self.flags)} flagged)"

    # -- rows ---------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows([self._check_row(i)])[0]

    def messages_of(self, row: int) -> list[dict]:
        """The messages of a row as they are now (edits applied)."""
        row = self._check_row(row)
        if row in self.edited:
            return self.edited[row]
        if row >= len(self.table):
            return self.added[row - len(self.table)]
        return decode(self.arrow.column("messages").slice(row, 1).to_pylist()[0])

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Row dicts (as `ds[i]`) for several rows, read with one slice per run of rows."""
        indices = [self._check_row(i) for i in indices]
        base = _runs(sorted(i for i in set(indices) if i < len(self.table)))
        stored = {}
        for start, stop in base:
            for k, values in enumerate(self.arrow.slice(start, stop - start).to_pylist()):
                stored[start + k] = values
        empty = dict.fromkeys(self.table.column_names)
        return [self._row_dict(i, stored.get(i, empty)) for i in indices]

    def _row_dict(self, i: int, values: dict) -> dict[str, Any]:
        row = {k: v for k, v in values.items() if k not in RESERVED}
        if "rejected" in row:
            row["rejected"] = decode(row["rejected"])
        overlaid = i in self.edited or i >= len(self.table)
        row["messages"] = self.messages_of(i) if overlaid else decode(values["messages"])
        row["row"] = i
        row["flag"] = self.flags.get(i)
        row["excluded"] = i in self.excluded
        row["edited"] = i in self.edited
        if i in self.origins:
            row["origin"] = self.origins[i]
        return row

    def page(self, number: int = 0, size: int = DEFAULT_PAGE_SIZE) -> Page:
        """Page `number` (from 0) of all rows; a number past the end gives the last page."""
        number = clamp_page(number, size, len(self))
        start = number * size
        return Page(number, size, len(self), self.rows(range(start, min(start + size, len(self)))))

    def page_of(self, row: int, size: int = DEFAULT_PAGE_SIZE) -> int:
        """The page of all rows that holds `row` (to jump to it)."""
        return self._check_row(row) // size

    def sample(self, n: int = DEFAULT_PAGE_SIZE, seed: int | None = None) -> RowSelection:
        """`n` rows drawn at random (without replacement), to read a fair slice of the data."""
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(self), size=min(n, len(self)), replace=False)
        return RowSelection(self, np.sort(rows), f"random sample of {len(rows)}")

    def all_rows(self) -> RowSelection:
        """Every row, as a selection."""
        return RowSelection(self, np.arange(len(self)), "all rows")

    # -- reading: search, filter, quality, lengths ---------------------------------------------
    def search(
        self,
        query: str,
        *,
        regex: bool = False,
        ignore_case: bool = False,
        roles: Sequence[str] | None = None,
        within: RowSelection | Sequence[int] | None = None,
    ) -> SearchResult:
        """Rows whose turns contain `query` (a substring or a regular expression), with where."""
        from .search import search

        return search(self, query, regex=regex, ignore_case=ignore_case, roles=roles, within=within)

    def filter(self, **criteria: Any) -> RowSelection:
        """Rows meeting every criterion: min_tokens, max_tokens, role, flagged, excluded,
        edited, problem (a quality problem name) and within (rows to start from)."""
        from .filters import filter_rows

        return filter_rows(self, **criteria)

    def quality(
        self, *, lengths: bool = True, eval_rows: Sequence[int] | None = None
    ) -> QualityReport:
        """The quality report: every problem found and the rows that have it (see quality.py)."""
        from .quality import quality_report

        return quality_report(self, lengths=lengths, eval_rows=eval_rows)

    def token_lengths(self) -> TokenLengths:
        """Prompt/response/total token counts of every row under the bound template (cached)."""
        from .lengths import token_lengths

        return token_lengths(self)

    def stats(self) -> DatasetStats:
        """Token length distributions, turns per conversation and role counts."""
        from .lengths import dataset_stats

        return dataset_stats(self)

    # -- edits --------------------------------------------------------------------------------
    def apply_edit(self, record: dict) -> None:
        """Apply one record of the edit log (edit, flag, unflag, exclude, include, add)."""
        op = record["op"]
        if op == "add":
            if record.get("origin") is not None:
                self.origins[len(self)] = check_origin(record["origin"])
            self.added.append(record["messages"])
        else:
            row = self._check_row(record["row"])
            if op == "edit":
                self.edited[row] = record["messages"]
            elif op == "flag":
                self.flags[row] = record.get("reason") or "flagged"
            elif op == "unflag":
                self.flags.pop(row, None)
            elif op == "exclude":
                self.excluded.add(row)
            elif op == "include":
                self.excluded.discard(row)
            else:
                raise ValueError(f"Unknown edit operation {op!r} in the edit log.")
        self.edit_version += 1

    def split_indices(self, eval_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        """Deterministic train and eval row numbers; excluded rows are in neither.

        Each row gets a pseudo-random rank from (seed, row number); the lowest ranks are eval.
        Rows that ask the same (data.prompt_groups) share the rank of the first of them, so they
        fall on one side: eval gets the few more rows a group needs rather than a leak. Adding
        rows later moves at most a few rows, unlike reshuffling everything.
        """
        from .prompt_groups import prompt_leads

        salt = _mix(np.array([seed % (1 << 64)], np.uint64))
        leads = prompt_leads(self)
        keys = _mix(leads.astype(np.uint64) ^ salt)
        candidates = np.setdiff1d(np.arange(len(self)), np.fromiter(self.excluded, np.int64))
        n_eval = round(len(candidates) * eval_fraction)
        order = candidates[np.argsort(keys[candidates], kind="stable")]
        while 0 < n_eval < len(order) and leads[order[n_eval]] == leads[order[n_eval - 1]]:
            n_eval += 1  # the group at the cut goes whole to eval
        self.last_split = (eval_fraction, seed)
        return np.sort(order[n_eval:]).tolist(), np.sort(order[:n_eval]).tolist()

    def export(self, path: str | os.PathLike) -> Path:
        """Write the cleaned set (edits applied, excluded rows left out, added rows at the end)
        as JSON Lines (.jsonl) or Parquet (.parquet); the source is never touched."""
        from .export import export

        return export(self, Path(path))

    def _check_row(self, i: int) -> int:
        if not isinstance(i, numbers.Integral) or isinstance(i, bool):
            raise TypeError(f"A row number is an int; got {i!r}.")
        i, n = int(i), len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"Row {i} is out of range: the dataset has {n} rows (0 to {n - 1}).")
        return i


def check_origin(origin: Any) -> dict:
    """An added row's origin, checked: a JSON object (TypeError names what is wrong)."""
    if not isinstance(origin, dict):
        raise TypeError(
            f"A row's origin is a JSON object (generator, seed rows, ...); got {origin!r:.80}."
        )
    try:
        json.dumps(origin)
    except (TypeError, ValueError) as e:
        raise TypeError(f"A row's origin must hold only JSON values: {e}.") from None
    return origin


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs [start, stop) of sorted row numbers."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and runs[-1][1] == r:
            runs[-1] = (runs[-1][0], r + 1)
        else:
            runs.append((r, r + 1))
    return runs


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64: a fixed, platform-independent scramble of 64-bit integers."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def _cache_dir_of(table) -> Path | None:
    """Where to cache derived data of a dataset given without a cache folder: beside its file."""
    files = getattr(table, "cache_files", None) or []
    return Path(files[0]["filename"]).parent / "workbench-cache" if files else None
