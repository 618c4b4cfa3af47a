"""Export the cleaned dataset: edits applied, excluded rows left out, added rows at the end."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .convert import MESSAGES_TYPE

if TYPE_CHECKING:
    from .dataset import InstructionDataset

ROWS_PER_BATCH = 8192
FORMATS = {".jsonl": "jsonl", ".parquet": "parquet"}


def export(ds: InstructionDataset, path: Path) -> Path:
    """Write `ds` to `path` (.jsonl or .parquet) atomically; returns the absolute path."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"Export to a .jsonl or .parquet file; got {path.name!r}.")
    path = path.expanduser().resolve()
    if not path.parent.is_dir():
        raise FileNotFoundError(f"No folder {path.parent} to export into; create it first.")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _writer(temp, kind, _schema(ds)) as write:
            for table in _cleaned_tables(ds):
                write(table)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def _cleaned_tables(ds: InstructionDataset):
    excluded = np.fromiter(ds.excluded, np.int64)
    edited = np.fromiter(ds.edited, np.int64)
    start = 0
    for batch in ds.arrow.to_batches(max_chunksize=ROWS_PER_BATCH):
        table = pa.Table.from_batches([batch])
        rows = np.arange(start, start + len(table))
        start += len(table)
        keep = ~np.isin(rows, excluded)
        table, rows = table.filter(pa.array(keep)), rows[keep]
        changed = np.flatnonzero(np.isin(rows, edited))
        if len(changed):
            messages = table.column("messages").to_pylist()
            for k in changed:
                messages[k] = ds.edited[int(rows[k])]
            index = table.column_names.index("messages")
            table = table.set_column(index, "messages", pa.array(messages, MESSAGES_TYPE))
        yield table.cast(_schema(ds))
    base = len(ds.table)
    added = [
        ds.edited.get(base + k, m) for k, m in enumerate(ds.added) if base + k not in ds.excluded
    ]
    if added:
        columns = {"messages": pa.array(added, MESSAGES_TYPE)}
        for f in _schema(ds):
            columns.setdefault(f.name, pa.nulls(len(added), f.type))
        yield pa.table(columns).select(_schema(ds).names).cast(_schema(ds))


def _schema(ds) -> pa.Schema:
    schema = ds.arrow.schema
    return schema.set(schema.get_field_index("messages"), pa.field("messages", MESSAGES_TYPE))


@contextlib.contextmanager
def _writer(path: Path, kind: str, schema: pa.Schema):
    if kind == "parquet":
        with pq.ParquetWriter(str(path), schema) as writer:
            yield writer.write_table
        return
    with open(path, "w", encoding="utf-8") as f:

        def write(table: pa.Table) -> None:
            rows = table.to_pylist()
            f.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)

        yield write
        f.flush()
        os.fsync(f.fileno())
