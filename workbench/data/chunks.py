"""The dataset as Arrow chunks of messages, with the edit overlay applied, for vectorised work.

Search, quality checks and statistics run over `message_chunks`: the memory-mapped base table a
chunk at a time (rows that were edited left out), then one small chunk of edited and added rows.
Each chunk comes with the row numbers of its rows, so results map back to rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .messages import MESSAGES_TYPE, ROLES, encode

if TYPE_CHECKING:
    from .dataset import InstructionDataset

TURN_SEPARATOR = "\x1e"
ROLE_SEPARATOR = "\x1f"
INVISIBLE = r"\p{Cf}"  # format characters: they change the bytes, not what a reader sees


@dataclass
class Turns:
    """The turns of a chunk: row position in the chunk, role code (index in ROLES, -1 unknown),
    role and content."""

    parents: np.ndarray
    codes: np.ndarray
    role: pa.Array
    content: pa.Array
    offsets: np.ndarray  # per row: index of its first turn; len(rows) + 1 entries


def message_chunks(
    ds: InstructionDataset, include_excluded: bool = True
) -> Iterator[tuple[np.ndarray, pa.ListArray]]:
    """(row numbers, messages) for every row, base table first, then edited and added rows."""
    base_rows = len(ds.table)
    skip = set(ds.edited) | (set() if include_excluded else ds.excluded)
    skip_base = np.array(sorted(r for r in skip if r < base_rows), dtype=np.int64)
    start = 0
    for chunk in ds.arrow.column("messages").chunks:
        n = len(chunk)
        rows = np.arange(start, start + n, dtype=np.int64)
        lo, hi = np.searchsorted(skip_base, [start, start + n])
        if hi > lo:
            keep = np.ones(n, dtype=bool)
            keep[skip_base[lo:hi] - start] = False
            chunk, rows = chunk.filter(pa.array(keep)), rows[keep]
        if len(rows):
            yield rows, chunk
        start += n
    overlay = sorted(set(ds.edited) | set(range(base_rows, len(ds))))
    if not include_excluded:
        overlay = [r for r in overlay if r not in ds.excluded]
    if overlay:
        messages = [encode(ds.messages_of(r)) for r in overlay]
        yield np.array(overlay, dtype=np.int64), pa.array(messages, MESSAGES_TYPE)


def turns_of(chunk: pa.ListArray) -> Turns:
    """The flattened turns of a chunk of messages."""
    flat = pc.list_flatten(chunk)
    role, content = flat.field("role"), flat.field("content")
    codes = (
        pc.index_in(role, value_set=pa.array(ROLES)).fill_null(-1).to_numpy(zero_copy_only=False)
    )
    parents = pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(chunk).fill_null(0).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Turns(parents, codes.astype(np.int8), role, content, offsets)


def rows_where(turns: Turns, mask) -> np.ndarray:
    """Positions (in the chunk) of rows with at least one turn where `mask` holds."""
    if isinstance(mask, (pa.Array, pa.ChunkedArray)):
        mask = mask.fill_null(False).to_numpy(zero_copy_only=False)
    return np.unique(turns.parents[mask])


def row_texts(chunk: pa.ListArray, roles: tuple[str, ...] = ROLES, spaced: bool = False):
    """One string per row: its turns of the given roles as "role\\x1fcontent", joined by
    "\\x1e" (or by spaces when `spaced`, for text that is normalised next)."""
    turns = turns_of(chunk)
    separators = (" ", " ") if spaced else (ROLE_SEPARATOR, TURN_SEPARATOR)
    tagged = pc.binary_join_element_wise(
        turns.role.fill_null(""), turns.content.fill_null(""), separators[0]
    )
    if set(roles) != set(ROLES):
        keep = np.isin(turns.codes, [ROLES.index(r) for r in roles])
        counts = np.bincount(turns.parents[keep], minlength=len(chunk))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        tagged = tagged.filter(pa.array(keep))
    else:
        offsets = turns.offsets.astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), tagged)
    return pc.binary_join(lists, separators[1])


def canonical(texts: pa.Array) -> pa.Array:
    """Texts as a reader sees them, compared for exact duplicates: one Unicode form (NFC: "é"
    as one code point or as "e" and a combining accent alike) and no invisible characters
    (format characters, category Cf: zero-width space and joiners, BOM, soft hyphen)."""
    return pc.replace_substring_regex(pc.utf8_normalize(texts, form="NFC"), INVISIBLE, "")


def normalise(texts: pa.Array) -> pa.Array:
    """Text compared for near duplicates (from `row_texts(..., spaced=True)`): compatibility
    forms folded (NFKC: "ﬁ" as "fi"), no invisible characters, lower case, punctuation and
    symbols as spacing, runs of spacing as one space."""
    texts = pc.replace_substring_regex(pc.utf8_normalize(texts, form="NFKC"), INVISIBLE, "")
    texts = pc.replace_substring_regex(pc.utf8_lower(texts), r"[\p{P}\p{S}]+", " ")
    texts = pc.replace_substring_regex(texts, r"\s\s+|[^\S ]", " ")
    return pc.utf8_trim_whitespace(texts)
