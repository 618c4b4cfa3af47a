"""Convert blocks of source rows into one canonical Arrow table: a memory-mapped cache file
(when there is a cache folder) or an in-memory table.

The cache file is written under a temporary name and renamed when complete, so a failed or
interrupted load leaves nothing behind, not even the folders it created.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from ..errors import DatasetLoadError, RowError
from ..persist import atomic_write_json
from .blocks import Block, LoadReport
from .convert import column_uses, convert_block
from .dataset import InstructionDataset
from .formats import FormatChoice, detect_format
from .options import LoadOptions

ROWS_PER_BATCH = 8192


def build_dataset(
    make_blocks: Callable[[], Iterator[Block]],
    opts: LoadOptions,
    report: LoadReport,
    cache: Path | None,
    key: str | None,
    ref: dict | None,
    name: str,
) -> InstructionDataset:
    """Convert every block, into the cache (memory-mapped) or into memory. When a later block
    brings a column or a type the first did not have, start again with the merged schema."""
    schema, carried = None, []  # notes about the merged schema outlive the attempt
    before = report.snapshot()
    for _attempt in range(5):
        report.restore(before)
        for what, sentence in carried:
            report.note(what, sentence)
        try:
            with _cache_writer(cache, key) as write:
                choice, rows = _convert_all(make_blocks(), opts, write, schema, report)
            break
        except _SchemaChanged as change:
            schema, carried = change.schema, carried + change.notes
    else:
        raise DatasetLoadError(f"{name}: its columns change type too often to load.")
    report.format, report.rows = choice.name, rows
    for sentence in report.warnings:
        warnings.warn(sentence, stacklevel=2)
    ds = _dataset_from(write.result, ref, key, report, cache)
    report.uses = column_uses(ds.extra_columns)
    return ds


def _convert_all(blocks, opts, write, schema, report: LoadReport) -> tuple[FormatChoice, int]:
    choice, rows, name = None, 0, report.source
    for block in blocks:
        if block.table.num_rows == 0:
            continue
        if choice is None:
            choice = detect_format(block.table.column_names, opts, name)

        def note(key: str, text: str, index: int | None, where=block.where) -> None:
            report.note(key, text, where(index) if index is not None else None)

        try:
            table = convert_block(block.table, choice, opts, note)
        except RowError as e:
            raise DatasetLoadError(
                f"{block.where(e.index)}: {e}", option=e.option, choices=e.choices
            ) from None
        schema, table = _conform(table, schema)
        write(table)
        rows += table.num_rows
    if choice is None or rows == 0:
        raise DatasetLoadError(f"{name} has no rows; expected rows of instruction data.")
    return choice, rows


class _SchemaChanged(Exception):
    def __init__(self, merged: tuple[pa.Schema, list[tuple[str, str]]]):
        self.schema, self.notes = merged


def _conform(table: pa.Table, schema: pa.Schema | None) -> tuple[pa.Schema, pa.Table]:
    """The table in the schema of the blocks before it (missing columns as nulls)."""
    if schema is None:
        return table.schema, table
    if set(table.column_names) - set(schema.names):
        raise _SchemaChanged(_merge_schemas(schema, table.schema))
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    try:
        return schema, table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise _SchemaChanged(_merge_schemas(schema, table.schema)) from None


def _merge_schemas(first: pa.Schema, later: pa.Schema) -> tuple[pa.Schema, list]:
    """One schema for both; a column with two unrelated types becomes text (and is noted)."""
    types, notes = {f.name: f.type for f in first}, []
    for f in later:
        known = types.get(f.name)
        if known is None or pa.types.is_null(known):
            types[f.name] = f.type
        elif not pa.types.is_null(f.type) and known != f.type:
            try:
                pair = [pa.schema([(f.name, known)]), pa.schema([f])]
                types[f.name] = pa.unify_schemas(pair, promote_options="permissive")[0].type
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                types[f.name] = pa.string()
                notes.append(
                    (
                        f"column {f.name}",
                        f"the column {f.name!r} holds {known} values "
                        f"and, further on, {f.type} values; all are kept as text",
                    )
                )
    return pa.schema(list(types.items())), notes


@contextlib.contextmanager
def _cache_writer(cache: Path | None, key: str | None):
    """A `write(table)` callable; on success `.result` is a memory-mapped or in-memory table.
    On failure every file and folder this created is removed."""
    if cache is None or key is None:
        tables: list[pa.Table] = []
        write = _Writer(tables.append)
        yield write
        write.result = pa.concat_tables(tables) if tables else None
        return
    created = _missing_parents(cache)
    cache.mkdir(parents=True, exist_ok=True)
    temp = cache / f".{key}.{os.getpid()}.arrow.tmp"
    sink, writer = None, None

    def append(table: pa.Table) -> None:
        nonlocal sink, writer
        if writer is None:
            sink = pa.OSFile(str(temp), "wb")
            writer = pa.ipc.new_stream(sink, table.schema)
        writer.write_table(table, max_chunksize=ROWS_PER_BATCH)

    write = _Writer(append)
    try:
        yield write
        writer.close()
        sink.close()
        os.replace(temp, cache / f"{key}.arrow")
        write.result = cache / f"{key}.arrow"
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
                sink.close()
        temp.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


class _Writer:
    def __init__(self, append):
        self.append, self.result = append, None

    def __call__(self, table: pa.Table) -> None:
        self.append(table)


def _missing_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing  # deepest first, the order to remove them in


def _dataset_from(result, ref, key, report, cache) -> InstructionDataset:
    import datasets
    from datasets.table import InMemoryTable

    if isinstance(result, Path):
        atomic_write_json(result.with_suffix(".json"), report.to_json())
        table = datasets.Dataset.from_file(str(result))
    else:
        table = datasets.Dataset(InMemoryTable(result))
        key = key or content_key(result)
    return InstructionDataset(table, ref, fingerprint=key, cache_dir=cache, load_report=report)


def open_cached(cache: Path | None, key: str, ref: dict | None) -> InstructionDataset | None:
    """The dataset converted earlier under `key`, memory-mapped, or None."""
    import datasets

    if cache is None:
        return None
    arrow, sidecar = cache / f"{key}.arrow", cache / f"{key}.json"
    if not (arrow.exists() and sidecar.exists()):
        return None
    report = LoadReport.from_json(json.loads(sidecar.read_text()))
    table = datasets.Dataset.from_file(str(arrow))
    return InstructionDataset(table, ref, fingerprint=key, cache_dir=cache, load_report=report)


def content_key(table: pa.Table) -> str:
    """A fingerprint of an in-memory table's content: equal data, equal key."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha1(sink.getvalue()).hexdigest()[:20]
