"""Groups of rows with equal text, found in Arrow without holding every text at once.

First pass: each row's text is reduced to a small key (byte length, first and last 24 bytes),
and rows are grouped by key. Only rows sharing a key with another row are candidates; a second
pass compares their full texts, so two texts that merely share a key are never reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EDGE_BYTES = 24
Chunks = Callable[[], Iterator[tuple[np.ndarray, pa.Array]]]
TextOf = Callable[[pa.Array], pa.Array]


def equal_groups(chunks: Chunks, text_of: TextOf) -> list[np.ndarray]:
    """Sorted arrays of rows (two or more each) whose texts are equal. `chunks()` yields
    (row numbers, rows) and is called once or twice; `text_of(rows)` gives one text per row."""
    keys = [_keys(rows, text_of(chunk)) for rows, chunk in chunks()]
    if not keys:
        return []
    table = pa.concat_tables(keys)
    grouped = table.group_by(["length", "head", "tail"]).aggregate([("row", "list")])
    lists = grouped.column("row_list")
    sizes = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    shared = grouped.filter(pa.array(sizes > 1))
    if shared.num_rows == 0:
        return []
    short = shared.column("length").to_numpy() <= 2 * EDGE_BYTES  # key is the whole text
    groups = [
        np.sort(np.array(g, np.int64))
        for g in shared.filter(pa.array(short)).column("row_list").to_pylist()
    ]
    long_rows = pc.list_flatten(shared.filter(pa.array(~short)).column("row_list"))
    if len(long_rows):
        groups += _verify(chunks, text_of, long_rows.to_numpy(zero_copy_only=False))
    return sorted(groups, key=lambda g: g[0])


def _keys(rows: np.ndarray, texts: pa.Array) -> pa.Table:
    raw = texts.cast(pa.binary())
    return pa.table(
        {
            "length": pc.binary_length(raw),
            "head": pc.binary_slice(raw, 0, EDGE_BYTES),
            "tail": pc.binary_slice(raw, -EDGE_BYTES),
            "row": pa.array(rows),
        }
    )


def _verify(chunks: Chunks, text_of: TextOf, candidates: np.ndarray) -> list[np.ndarray]:
    candidates = np.sort(candidates)
    parts = []
    for rows, chunk in chunks():
        wanted = np.isin(rows, candidates)
        if wanted.any():
            texts = text_of(chunk.filter(pa.array(wanted)))
            parts.append(pa.table({"text": texts, "row": pa.array(rows[wanted])}))
    table = pa.concat_tables(parts)
    grouped = table.group_by("text").aggregate([("row", "list")])
    return [
        np.sort(np.array(g, np.int64)) for g in grouped.column("row_list").to_pylist() if len(g) > 1
    ]
