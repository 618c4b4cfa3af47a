"""Read data files block by block into Arrow, with errors that name the file and the line.

JSON Lines, JSON arrays, CSV/TSV and Parquet are read in blocks of about 16 MB so that a large
file never sits whole in memory. Arrow parses; Python only looks at a block again when Arrow
refuses it, to find the line and say what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DatasetLoadError
from .blocks import Block, LoadReport, check_utf8, check_utf8_file, file_origin, line_blocks
from .jsonl import json_array_blocks, parse_jsonl

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def file_type_of(path: Path, explicit: str | None) -> str:
    """jsonl / json / csv / tsv / parquet, from the option or the suffix (sniffing .json)."""
    kind = explicit or SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DatasetLoadError(
            f"Cannot tell how to read {path.name} from its suffix; pass file_type= one of "
            "jsonl, json, csv, tsv, parquet.",
            option="file_type",
            choices=["jsonl", "json", "csv", "tsv", "parquet"],
        )
    if kind == "json":
        with open(path, "rb") as f:
            start = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        kind = "json" if start.startswith(b"[") else "jsonl"
    return kind


def read_blocks(
    path: Path, kind: str, on_error: str, report: LoadReport, protected: set[str]
) -> Iterator[Block]:
    """Blocks of the file; `protected` columns must keep one type (others may mix types)."""
    if path.stat().st_size == 0:
        raise DatasetLoadError(
            f"{path.name} is empty; expected rows of instruction data. Check that the file was "
            "written completely."
        )
    if kind == "jsonl":
        yield from _jsonl_blocks(path, on_error, report, protected)
    elif kind == "json":
        yield from json_array_blocks(path, report, protected)
    elif kind in ("csv", "tsv"):
        yield from _csv_blocks(path, "\t" if kind == "tsv" else ",", on_error, report)
    else:
        yield from _parquet_blocks(path)


# -- JSON Lines -----------------------------------------------------------------------------
def _jsonl_blocks(path: Path, on_error: str, report: LoadReport, protected) -> Iterator[Block]:
    for data, offset in line_blocks(path):
        origin = file_origin(path, offset, len(data))
        check_utf8(data, origin)
        yield parse_jsonl(data, origin, on_error, report, protected)


# -- CSV and Parquet ------------------------------------------------------------------------
def _csv_blocks(path: Path, delimiter: str, on_error: str, report: LoadReport) -> Iterator[Block]:
    check_utf8_file(path)
    bad_rows: list[dict] = []

    def on_invalid(row) -> str:
        bad_rows.append(
            {
                "line": row.number,
                "error": f"expected {row.expected_columns} columns, found {row.actual_columns}",
            }
        )
        return "skip" if on_error == "skip" else "error"

    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid)
    read = pacsv.ReadOptions(block_size=8 << 20, use_threads=False)  # threads lose line numbers
    try:
        probe = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=lambda row: "skip")
        names = pacsv.open_csv(path, read_options=read, parse_options=probe).schema.names
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
        reader = pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        row = 0
        for batch in reader:
            table = pa.Table.from_batches([batch])
            yield Block(table, lambda i, base=row: f"{path.name}, data row {base + i + 1}")
            row += len(table)
    except pa.ArrowInvalid as e:
        if bad_rows and on_error != "skip":
            line = bad_rows[-1]
            raise DatasetLoadError(
                f"{path.name}, line {line['line']}: {line['error']}. Fix that line, or pass "
                "on_error='skip' to load the others and report the skipped ones.",
                option="on_error",
                choices=["skip"],
            ) from None
        raise DatasetLoadError(f"{path.name} is not readable as CSV ({e}).") from None
    report.skipped += bad_rows


def _parquet_blocks(path: Path) -> Iterator[Block]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetLoadError(f"{path.name} is not a Parquet file ({e}).") from None
    row, batches = 0, parquet.iter_batches(batch_size=65_536)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as e:
            raise DatasetLoadError(
                f"{path.name}, after row {row}: not readable as Parquet ({e}); expected a "
                "complete Parquet file. Write it again."
            ) from None
        if batch is None:
            return
        table = pa.Table.from_batches([batch])
        yield Block(table, lambda i, base=row: f"{path.name}, row {base + i + 1}")
        row += len(table)
