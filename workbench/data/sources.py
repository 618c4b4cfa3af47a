"""Load instruction data from files and in-memory objects into an Arrow-backed dataset.

Files are converted once to canonical chat form in an Arrow file in the cache folder, keyed by
the file's path, size, modification time and the load options; reopening memory-maps that
file. A failed load leaves the cache folder as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DatasetLoadError
from .blocks import Block, LoadReport
from .building import build_dataset, open_cached
from .dataset import InstructionDataset
from .formats import detect_format, fields_of
from .messages import MESSAGES_TYPE, PLAIN_MESSAGES_TYPE, ROLES
from .options import FORMATS, LoadOptions
from .readers import file_type_of, read_blocks

__all__ = ["DatasetLoadError", "describe_columns", "load_source"]

CACHE_VERSION = 2  # 2: messages keep their extra keys (extra_json)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".pq", ".ndjson")


def load_source(
    source: Any, *, cache_dir: Path | None = None, **options: Any
) -> InstructionDataset:
    """Load a path, hub name, HF Dataset/DatasetDict, DataFrame or list of dicts.

    Options are those of LoadOptions (format, mapping, file_type, on_error, split, tool_turns,
    instances). Raises DatasetLoadError, naming what was found and what to do.
    """
    opts = LoadOptions.from_kwargs(**options)
    cache = Path(cache_dir) if cache_dir is not None else None
    if isinstance(source, (str, os.PathLike)):
        return _load_path(source, opts, cache)
    if isinstance(source, list):
        report = LoadReport(source="the list")
        return _load_table(_table_of_rows(source, report), opts, report)
    if type(source).__name__ == "DataFrame" and hasattr(source, "to_dict"):
        return _load_table(_table_of_frame(source), opts, LoadReport(source="the DataFrame"))
    return _load_hf_object(source, opts, cache, "the Dataset")


def describe_columns(source: Any, **options: Any) -> tuple[list[str], str | None]:
    """The source's columns and the layout detected (None when a choice is needed), cheaply:
    only the first block of a file is read. Views use it to offer a column mapping."""
    opts = LoadOptions.from_kwargs(**options)
    if isinstance(source, (str, os.PathLike)) and Path(source).expanduser().is_file():
        path = Path(source).expanduser()
        kind = file_type_of(path, opts.file_type)
        block = next(read_blocks(path, kind, "skip", LoadReport(), _protected(opts)), None)
        columns = block.table.column_names if block else []
    elif isinstance(source, list):
        columns = list(dict.fromkeys(k for row in source[:1000] for k in row))
    else:
        columns = list(getattr(source, "column_names", None) or getattr(source, "columns", []))
    try:
        return columns, detect_format(columns, opts).name
    except DatasetLoadError:
        return columns, None


# -- paths ----------------------------------------------------------------------------------
def _load_path(source, opts: LoadOptions, cache: Path | None) -> InstructionDataset:
    if not str(source).strip():
        raise DatasetLoadError("No source was given; pass a data file path or a hub name.")
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_saved_folder(path, opts, cache)
    if path.is_file():
        return _load_file(path.resolve(), opts, cache)
    text = str(source)
    if isinstance(source, str) and _HUB_ID.match(text) and not text.endswith(_DATA_SUFFIXES):
        return _load_hub(text, opts, cache)
    raise DatasetLoadError(
        f"No data file at {path}. Check the path (a relative path starts from {Path.cwd()})."
    )


def _load_file(path: Path, opts: LoadOptions, cache: Path | None) -> InstructionDataset:
    try:
        stat = path.stat()
        key = _key(CACHE_VERSION, str(path), stat.st_size, stat.st_mtime_ns, opts.to_json())
        ref = {"kind": "file", "path": str(path)}
        cached = open_cached(cache, key, ref)
        if cached is not None:
            return cached
        kind = file_type_of(path, opts.file_type)
        report = LoadReport(source=path.name)
        protected = _protected(opts)

        def blocks():
            return read_blocks(path, kind, opts.on_error, report, protected)

        ds = build_dataset(blocks, opts, report, cache, key, ref, path.name)
    except PermissionError as e:
        raise DatasetLoadError(f"Cannot read {path}: permission denied ({e.strerror}).") from None
    if report.skipped:
        lines = ", ".join(str(s["line"]) for s in report.skipped[:10])
        warnings.warn(
            f"{path.name}: skipped {len(report.skipped)} malformed line(s) ({lines}"
            f"{', ...' if len(report.skipped) > 10 else ''}); see dataset.load_report.skipped.",
            stacklevel=3,
        )
    return ds


def _load_saved_folder(path: Path, opts: LoadOptions, cache: Path | None) -> InstructionDataset:
    import datasets

    if not any((path / name).exists() for name in ("state.json", "dataset_dict.json")):
        raise DatasetLoadError(
            f"{path} is a folder but not one written by Dataset.save_to_disk; pass a data file "
            "(JSONL, JSON, CSV, Parquet) or a saved dataset folder."
        )
    name = f"{path.name} (a saved dataset)"
    ds = _load_hf_object(datasets.load_from_disk(str(path)), opts, cache, name)
    ds.source_ref = {"kind": "file", "path": str(path.resolve())}
    return ds


def _load_hub(name: str, opts: LoadOptions, cache: Path | None) -> InstructionDataset:
    import datasets

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise DatasetLoadError(
            f"{name!r} is not a file here, and the Hugging Face hub is offline (HF_HUB_OFFLINE "
            "is set); check the path, or go online to load it from the hub."
        )
    try:
        loaded = datasets.load_dataset(name, split=opts.split)
    except Exception as e:  # the hub raises many kinds (not found, gated, network)
        raise DatasetLoadError(
            f"Could not load {name!r} from the Hugging Face hub ({type(e).__name__}: {e})."
        ) from None
    return _load_hf_object(loaded, opts, cache, f"the dataset {name!r}")


# -- in-memory objects ----------------------------------------------------------------------
def _load_hf_object(
    obj: Any, opts: LoadOptions, cache: Path | None, name: str
) -> InstructionDataset:
    """A Hugging Face Dataset (or one split of a DatasetDict); `name` says which in errors."""
    import datasets

    if isinstance(obj, (datasets.IterableDataset, datasets.IterableDatasetDict)):
        raise DatasetLoadError(
            "A streaming (iterable) dataset cannot be browsed; load it without streaming=True."
        )
    if isinstance(obj, datasets.DatasetDict):
        obj = _pick_split(obj, opts.split, name)
    if not isinstance(obj, datasets.Dataset):
        raise DatasetLoadError(
            f"Cannot load data from a {type(obj).__name__}; pass a file path, hub name, Hugging "
            "Face Dataset or DatasetDict, pandas DataFrame or list of dicts."
        )
    if obj._indices is not None:
        obj = obj.flatten_indices()
    table = obj.data.table
    key = _key(CACHE_VERSION, obj._fingerprint, opts.to_json())
    cached = open_cached(cache, key, None)
    if cached is not None:
        return cached
    if _is_canonical(table, opts, name):
        return InstructionDataset(obj, None, fingerprint=key, cache_dir=cache)
    blocks = lambda: _table_blocks(table, name)  # noqa: E731
    return build_dataset(blocks, opts, LoadReport(source=name), cache, key, None, name)


def _load_table(table: pa.Table, opts: LoadOptions, report: LoadReport) -> InstructionDataset:
    blocks = lambda: _table_blocks(table, report.source)  # noqa: E731
    return build_dataset(blocks, opts, report, None, None, None, report.source)


def _pick_split(obj, split: str | None, name: str):
    splits = list(obj)
    if split is None:
        split = "train" if "train" in obj else (splits[0] if len(splits) == 1 else None)
    if split not in obj:
        raise DatasetLoadError(
            f"{name}: the DatasetDict has the splits {splits}; pass split= one of them.",
            option="split",
            choices=splits,
        )
    return obj[split]


def _table_of_rows(rows: list, report: LoadReport) -> pa.Table:
    for k, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DatasetLoadError(
                f"the list, row {k}: a {type(row).__name__} ({row!r:.60}); expected a dict (one "
                "row of instruction data)."
            )
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        error = e
    # A column of mixed types is kept as JSON text; the layout then says what is wrong with it.
    columns = dict.fromkeys(k for row in rows for k in row)
    mixed = [c for c in columns if not _arrow_holds([row.get(c) for row in rows])]
    protected = {f for name in FORMATS for f in fields_of(name)}
    for column in mixed:
        if column not in protected:  # a layout's column is checked, and named, by the layout
            report.note(
                f"column {column}",
                f"the column {column!r} holds values of several types; all are kept as JSON text",
            )
    rows = [{k: _jsonish(v) if k in mixed else v for k, v in row.items()} for row in rows]
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise DatasetLoadError(
            f"the list: its rows hold values Arrow cannot store ({error})."
        ) from None


def _table_of_frame(frame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        error = e
    bad = [c for c in frame.columns if not _arrow_holds(frame[c].tolist())]
    raise DatasetLoadError(
        f"the DataFrame: the column(s) {bad or list(frame.columns)} hold values Arrow cannot "
        f"store ({error}); expected text, numbers, lists or dicts of one kind per column."
    ) from None


def _arrow_holds(values: list) -> bool:
    try:
        pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def _jsonish(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def _table_blocks(table: pa.Table, name: str) -> Iterator[Block]:
    """Blocks of an in-memory table; rows are named as `ds[i]` counts them, from 0."""
    start = 0
    for batch in table.to_batches(max_chunksize=50_000):
        yield Block(pa.Table.from_batches([batch]), lambda i, s=start: f"{name}, row {s + i}")
        start += batch.num_rows


def _is_canonical(table: pa.Table, opts: LoadOptions, name: str) -> bool:
    """Already in canonical form: used as it is, without a copy."""
    choice = detect_format(table.column_names, opts, name)
    if choice.columns != {"messages": "messages"}:
        return False
    if table.schema.field("messages").type not in (MESSAGES_TYPE, PLAIN_MESSAGES_TYPE):
        return False
    column = table.column("messages")
    roles = pc.unique(pc.struct_field(pc.list_flatten(column), "role")).to_pylist()
    return column.null_count == 0 and set(roles) <= set(ROLES)


def _protected(opts: LoadOptions) -> set[str]:
    """Columns a layout reads: their values must have the right type, never be re-encoded."""
    return {f for name in FORMATS for f in fields_of(name)} | set(opts.mapping.values())


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
