"""Rows that ask the same thing, so that a train/eval split keeps them on one side.

Two rows share a prompt when their system and user turns are equal after normalising (case,
punctuation, spacing, Unicode form, invisible characters: data.chunks.normalise), as the quality
report's eval-overlap check compares them. A split that put one in train and the other in eval
would measure memory, not generalisation (the leak of datasets #4261's kind).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .chunks import message_chunks, normalise, row_texts
from .dedup import equal_groups

if TYPE_CHECKING:
    from .dataset import InstructionDataset


def prompt_leads(ds: InstructionDataset) -> np.ndarray:
    """For each row number, the first row that asks the same (itself when none does); rows
    without a system or user turn ask nothing and lead themselves. Cached per edit version."""
    key = ("prompt_leads", ds.edit_version, len(ds))
    if key not in ds._memo:
        ds._memo = {k: v for k, v in ds._memo.items() if k[0] != "prompt_leads"}
        ds._memo[key] = _leads(ds)
    return ds._memo[key]


def _leads(ds: InstructionDataset) -> np.ndarray:
    def chunks():
        return message_chunks(ds, include_excluded=False)

    def prompt(chunk):
        return normalise(row_texts(chunk, ("system", "user"), spaced=True))

    leads = np.arange(len(ds), dtype=np.int64)
    for group in equal_groups(chunks, prompt):
        if _asks(ds[int(group[0])]["messages"]):
            leads[group] = group[0]
    return leads


def _asks(messages: list[dict]) -> bool:
    return any(
        m["role"] in ("system", "user") and str(m["content"] or "").strip() for m in messages
    )
