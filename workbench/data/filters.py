"""Filters: the rows meeting criteria on token length, roles, flags, edits and quality."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc

from .chunks import message_chunks
from .messages import ROLES
from .quality import TITLES
from .selection import RowSelection

if TYPE_CHECKING:
    from .dataset import InstructionDataset

LENGTH_PROBLEMS = ("too_long", "template_error")


def filter_rows(
    ds: InstructionDataset,
    *,
    min_tokens: int | None = None,
    max_tokens: int | None = None,
    role: str | None = None,
    flagged: bool | None = None,
    excluded: bool | None = None,
    edited: bool | None = None,
    problem: str | None = None,
    within=None,
) -> RowSelection:
    """Rows meeting every criterion given (None means "any"); see InstructionDataset.filter."""
    keep = np.ones(len(ds), bool)
    said = []
    if min_tokens is not None or max_tokens is not None:
        total = ds.token_lengths().total
        low = -1 if min_tokens is None else min_tokens
        high = np.iinfo(np.int32).max if max_tokens is None else max_tokens
        keep &= (total >= max(low, 0)) & (total <= high)
        said.append(f"{min_tokens or 0}-{max_tokens if max_tokens is not None else 'max'} tokens")
    if role is not None:
        keep &= _has_role(ds, role)
        said.append(f"has {'an' if role[:1] in 'aeio' else 'a'} {role} turn")  # "a user turn"
    for name, wanted, rows in (
        ("flagged", flagged, ds.flags),
        ("excluded", excluded, ds.excluded),
        ("edited", edited, ds.edited),
    ):
        if wanted is not None:
            keep &= _mask(len(ds), rows) == bool(wanted)
            said.append(name if wanted else f"not {name}")
    if problem is not None:
        if problem not in TITLES:
            raise ValueError(f"Unknown quality problem {problem!r}; choose from {list(TITLES)}.")
        report = ds.quality(lengths=problem in LENGTH_PROBLEMS)
        rows = report.problems[problem].rows if problem in report.problems else []
        keep &= _mask(len(ds), rows)
        said.append(TITLES[problem].lower())
    if within is not None:
        keep &= _mask(len(ds), within.rows if isinstance(within, RowSelection) else within)
        said.append(getattr(within, "label", "chosen rows"))
    return RowSelection(ds, np.flatnonzero(keep), ", ".join(said) or "all rows")


def _has_role(ds, role: str) -> np.ndarray:
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {list(ROLES)}.")
    has = np.zeros(len(ds), bool)
    for rows, chunk in message_chunks(ds, include_excluded=True):
        mask = pc.equal(pc.list_flatten(chunk).field("role"), role).fill_null(False)
        parents = pc.filter(pc.list_parent_indices(chunk), mask).to_numpy(zero_copy_only=False)
        has[rows[parents]] = True
    return has


def _mask(n: int, rows) -> np.ndarray:
    mask = np.zeros(n, bool)
    rows = np.fromiter(rows, np.int64) if not isinstance(rows, np.ndarray) else rows
    mask[rows[(rows >= 0) & (rows < n)]] = True
    return mask
