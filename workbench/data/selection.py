"""Views of some rows of a dataset: a selection (filter result) and the page a view shows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .dataset import InstructionDataset

DEFAULT_PAGE_SIZE = 20


@dataclass
class Page:
    """One page of a view: its rows (dicts as `ds[i]` gives them) and where it is."""

    number: int
    size: int
    total: int  # rows in the whole view
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        """How many pages the view has (at least 1, so an empty view still shows page 1)."""
        return max(1, math.ceil(self.total / self.size))

    @property
    def first(self) -> int:
        """Position in the view of this page's first row."""
        return self.number * self.size


class RowSelection:
    """Some rows of a dataset, in row order, that can be paged through like the dataset."""

    def __init__(self, dataset: InstructionDataset, rows: np.ndarray, label: str = ""):
        self.dataset = dataset
        self.rows = np.asarray(rows, dtype=np.int64)
        self.label = label

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows.tolist())

    def __contains__(self, row: object) -> bool:
        return bool(np.isin(row, self.rows).any()) if isinstance(row, int) else False

    def __repr__(self) -> str:
        return f"RowSelection({self.label!r}: {len(self)} rows)"

    def tolist(self) -> list[int]:
        """The row numbers as a list."""
        return self.rows.tolist()

    def page(self, number: int = 0, size: int = DEFAULT_PAGE_SIZE) -> Page:
        """Page `number` (from 0) of this selection; a number past the end gives the last page."""
        number = clamp_page(number, size, len(self))
        chosen = self.rows[number * size : (number + 1) * size].tolist()
        return Page(number, size, len(self), self._decorate(self.dataset.rows(chosen)))

    def page_of(self, row: int, size: int = DEFAULT_PAGE_SIZE) -> int | None:
        """The page holding `row`, or None when the selection does not hold it."""
        position = int(np.searchsorted(self.rows, row))
        if position < len(self.rows) and self.rows[position] == row:
            return position // size
        return None

    def _decorate(self, rows: list[dict]) -> list[dict]:
        return rows


def clamp_page(number: int, size: int, total: int) -> int:
    """A valid page number for `total` rows in pages of `size`."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"A page size is a positive int; got {size!r}.")
    last = max(0, math.ceil(total / size) - 1)
    return min(max(0, int(number)), last)
