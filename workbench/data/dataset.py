"""InstructionDataset: Arrow-backed rows in canonical chat form, seen through the edit log."""

from __future__ import annotations

import random
from typing import Any


class InstructionDataset:
    """Rows of chat `messages`, with the session's edits, flags, exclusions and added rows applied.

    The Arrow table is never modified: edits live in an overlay rebuilt from the workspace's
    append-only edit log.
    """

    def __init__(self, table, source_ref: dict | None = None):
        self.table = table
        self.source_ref = source_ref
        self.fingerprint: str = table._fingerprint
        self.edited: dict[int, list[dict]] = {}
        self.flags: dict[int, str] = {}
        self.excluded: set[int] = set()
        self.added: list[list[dict]] = []
        self._template = None
        self._max_length = None

    def bind(self, template, max_length) -> None:
        """Callables giving the session's current Template and training length, for length stats."""
        self._template, self._max_length = template, max_length

    def __len__(self) -> int:
        return len(self.table) + len(self.added)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = self._check_row(i)
        if i in self.edited:
            messages = self.edited[i]
        elif i >= len(self.table):
            messages = self.added[i - len(self.table)]
        else:
            messages = self.table[i]["messages"]
        return {
            "messages": messages,
            "row": i,
            "flag": self.flags.get(i),
            "excluded": i in self.excluded,
            "edited": i in self.edited,
        }

    def apply_edit(self, record: dict) -> None:
        """Apply one record of the edit log (edit, flag, unflag, exclude, include, add)."""
        op = record["op"]
        if op == "add":
            self.added.append(record["messages"])
            return
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

    def split_indices(self, eval_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        """Deterministic train and eval row numbers; excluded rows are in neither."""
        rows = [i for i in range(len(self)) if i not in self.excluded]
        random.Random(seed).shuffle(rows)
        n_eval = round(len(rows) * eval_fraction)
        return sorted(rows[n_eval:]), sorted(rows[:n_eval])

    def _check_row(self, i: int) -> int:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"A row number is an int; got {i!r}.")
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"Row {i} is out of range: the dataset has {n} rows (0 to {n - 1}).")
        return i
