"""Export the cleaned dataset: edits applied, excluded rows left out, added rows at the end.

Messages are written as the source gave them: role, content and every extra key of a turn
(reasoning_content, weight, name, ...) at the top level of the message, never the internal
`extra_json` field. Parquet gets one struct field per extra key found in the data. Rows added
with an origin (synthetic rows, accepted from candidates) mark it in an `origin` column, null
for every other row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .messages import EXTRA, MESSAGES_TYPE, decode, encode

if TYPE_CHECKING:
    from .dataset import InstructionDataset

ROWS_PER_BATCH = 8192
FORMATS = {".jsonl": "jsonl", ".parquet": "parquet"}
TURN_COLUMNS = ("messages", "rejected")
ORIGIN = "origin"


def export(ds: InstructionDataset, path: Path) -> Path:
    """Write `ds` to `path` (.jsonl or .parquet) atomically; returns the absolute path.
    Raises ValueError for another suffix, or for Parquet when one extra key of the turns holds
    values of several types (JSON Lines keeps them as they are)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"Export to a .jsonl or .parquet file; got {path.name!r}.")
    path = path.expanduser().resolve()
    if not path.parent.is_dir():
        raise FileNotFoundError(f"No folder {path.parent} to export into; create it first.")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if kind == "parquet":
            _write_parquet(ds, temp)
        else:
            _write_jsonl(ds, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def _write_jsonl(ds: InstructionDataset, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for table in _cleaned_tables(ds):
            for row in table.to_pylist():
                for name in TURN_COLUMNS:
                    if name in row:
                        row[name] = decode(row[name])
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _write_parquet(ds: InstructionDataset, path: Path) -> None:
    extras = {name: _extras_type(ds, name) for name in TURN_COLUMNS if name in _schema(ds).names}
    schema = _schema(ds)
    for name, extra in extras.items():
        schema = schema.set(schema.get_field_index(name), pa.field(name, _file_type(extra)))
    with pq.ParquetWriter(str(path), schema) as writer:
        for table in _cleaned_tables(ds):
            for name, extra in extras.items():
                index = table.column_names.index(name)
                table = table.set_column(index, name, _for_file(table.column(name), extra))
            writer.write_table(table.cast(schema))


def _file_type(extra: pa.StructType | None) -> pa.DataType:
    fields = [pa.field("role", pa.string()), pa.field("content", pa.string())]
    return pa.list_(pa.struct(fields + (list(extra) if extra is not None else [])))


def _for_file(column: pa.ChunkedArray, extra: pa.StructType | None) -> pa.ChunkedArray:
    """Stored turns as the file holds them: the extra keys as struct fields of their own."""
    kind = _file_type(extra)
    if extra is None:  # role and content only: no Python
        chunks = []
        for chunk in column.chunks:
            flat = pc.list_flatten(chunk)
            offsets = pc.subtract(chunk.offsets, chunk.offsets[0])
            fields = [pc.struct_field(flat, "role"), pc.struct_field(flat, "content")]
            struct = pa.StructArray.from_arrays(fields, fields=list(kind.value_type))
            chunks.append(pa.ListArray.from_arrays(offsets, struct, mask=chunk.is_null()))
        return pa.chunked_array(chunks, kind)
    return pa.array([decode(m) for m in column.to_pylist()], kind)


def _extras_type(ds: InstructionDataset, name: str) -> pa.StructType | None:
    """One struct type for every extra key the turns of column `name` carry, or None."""
    values = []
    if EXTRA in ds.arrow.schema.field(name).type.value_type.names:
        flat = pc.list_flatten(ds.arrow.column(name))
        values = [json.loads(v) for v in pc.drop_null(pc.struct_field(flat, EXTRA)).to_pylist()]
    if name == "messages":
        overlay = list(ds.edited.values()) + ds.added
        values += [json.loads(m[EXTRA]) for ms in overlay for m in encode(ms) if m[EXTRA]]
    if not values:
        return None
    try:
        return pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(
            f"The turns' extra keys hold values of several types ({e}), which one Parquet column "
            "cannot; export to .jsonl to keep them as they are."
        ) from None


def _cleaned_tables(ds: InstructionDataset):
    """The rows to write, in batches of the stored form (turns as MESSAGES_TYPE)."""
    excluded = np.fromiter(ds.excluded, np.int64)
    edited = np.fromiter(ds.edited, np.int64)
    schema, start = _schema(ds), 0
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
                messages[k] = encode(ds.edited[int(rows[k])])
            index = table.column_names.index("messages")
            table = table.set_column(index, "messages", pa.array(messages, MESSAGES_TYPE))
        yield _stored(table, schema)
    base = len(ds.table)
    added = [
        encode(ds.edited.get(base + k, m))
        for k, m in enumerate(ds.added)
        if base + k not in ds.excluded
    ]
    if added:
        columns = {"messages": pa.array(added, MESSAGES_TYPE)}
        if ORIGIN in schema.names and ds.origins:
            columns[ORIGIN] = _origins(ds, schema.field(ORIGIN).type)
        for f in schema:
            columns.setdefault(f.name, pa.nulls(len(added), f.type))
        yield pa.table(columns).select(schema.names).cast(schema)


def _schema(ds) -> pa.Schema:
    """The stored schema: every turn column as MESSAGES_TYPE (older copies lack extra_json),
    and an `origin` column when added rows carry one."""
    schema = ds.arrow.schema
    for name in TURN_COLUMNS:
        if name in schema.names:
            schema = schema.set(schema.get_field_index(name), pa.field(name, MESSAGES_TYPE))
    if ds.origins and ORIGIN not in schema.names:
        schema = schema.append(pa.field(ORIGIN, pa.array(list(ds.origins.values())).type))
    return schema


def _origins(ds: InstructionDataset, kind: pa.DataType) -> pa.Array:
    """The origin of each added row that is kept (null for rows added without one)."""
    base = len(ds.table)
    values = [ds.origins.get(base + k) for k in range(len(ds.added)) if base + k not in ds.excluded]
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise ValueError(
            f"The source's own {ORIGIN!r} column ({kind}) cannot hold the origins of the rows "
            "added from candidates; rename that column in the source, or export to .jsonl."
        ) from None


def _stored(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if ORIGIN in schema.names and ORIGIN not in table.column_names:  # base rows: not synthetic
        table = table.append_column(
            schema.field(ORIGIN), pa.nulls(len(table), schema.field(ORIGIN).type)
        )
    for name in TURN_COLUMNS:
        if name in table.column_names and table.schema.field(name).type != MESSAGES_TYPE:
            column = pa.array(table.column(name).to_pylist(), MESSAGES_TYPE)
            table = table.set_column(table.column_names.index(name), name, column)
    return table.cast(schema)
