"""JSON Lines and JSON arrays into Arrow, naming the line whenever Arrow refuses one.

Arrow parses each block. Only a refused block is read again in Python, to find the malformed
line (or skip it with on_error="skip"), or the value whose type breaks its column: an error
where a layout reads the column, kept as text where no layout does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as paj

from ..errors import DatasetLoadError
from .blocks import Block, LoadReport, Origin, bom_length, check_utf8

JSON_ITEMS_PER_BLOCK = 20_000
PARSER_BLOCK = 1 << 20
_CONFLICT = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")
_FOUND = {"string": "a string", "number": "a number", "boolean": "a boolean"}
_FOUND |= {"array": "a list", "object": "an object", "null": "null"}
_EXPECTED = {**_FOUND, "string": "text"}
_LIST_FIELDS = ("messages", "conversations", "instances", "history")


def parse_jsonl(data, origin: Origin, on_error: str, report: LoadReport, protected) -> Block:
    """A block of JSON Lines as a table; malformed lines are named, or skipped (on_error)."""
    lines = None  # split lazily: only a refused block is looked at line by line
    skipped: set[int] = set()
    while True:
        try:
            return Block(_arrow_json(data), _row_namer(origin, skipped))
        except pa.ArrowInvalid as e:
            if lines is None:
                first, lines = origin.first(), bytes(data).split(b"\n")
            bad = _malformed_lines(lines, first, skipped)
            if bad and on_error != "skip":
                number, message = bad[0]
                raise DatasetLoadError(
                    f"{origin.name}, {origin.unit} {number}: not valid JSON ({message}). Fix "
                    f"that {origin.unit}, or pass on_error='skip' to load the others and report "
                    "the skipped ones.",
                    option="on_error",
                    choices=["skip"],
                ) from None
            if bad:
                report.skipped += [{"line": n, "error": m} for n, m in bad]
                skipped |= {n for n, _ in bad}
            else:
                lines = _encode_mixed_column(lines, e, origin, first, protected, skipped, report)
            data = b"\n".join(
                line for k, line in enumerate(lines) if first + k not in skipped and line.strip()
            )
            if not data:
                return Block(pa.table({}), _row_namer(origin, skipped))


def _arrow_json(data) -> pa.Table:
    """Parse JSON Lines bytes (or a view of them) without copying them."""
    try:
        options = paj.ReadOptions(block_size=PARSER_BLOCK)
        return paj.read_json(pa.BufferReader(pa.py_buffer(data)), read_options=options)
    except pa.ArrowInvalid as e:
        if "straddling" not in str(e) and "JSON conversion" not in str(e):
            raise
        options = paj.ReadOptions(block_size=len(data) + 1)  # a line longer than a block
        return paj.read_json(pa.BufferReader(pa.py_buffer(data)), read_options=options)


def _malformed_lines(lines: list[bytes], first: int, skipped: set[int]) -> list[tuple[int, str]]:
    bad = []
    for k, line in enumerate(lines):
        if first + k in skipped or not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append((first + k, e.msg))
            continue
        if not isinstance(value, dict):
            bad.append((first + k, f"a JSON {type(value).__name__}, not an object"))
            continue
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            bad.append((first + k, "broken unicode: a \\u escape of half a surrogate pair"))
    return bad


def _encode_mixed_column(lines, error, origin, first, protected, skipped, report) -> list[bytes]:
    """Arrow refused a column holding several types: name the line, or keep a free column
    (one no layout reads) as JSON text, with a warning that names it."""
    name, unit = origin.name, origin.unit
    found = _CONFLICT.search(str(error))
    if not found:
        raise DatasetLoadError(f"{name}: Arrow could not read it ({error}).") from None
    path, was, now = found.groups()
    steps = path.strip("/").split("/")
    column = steps[0]
    expected, odd = _expected_kind(steps, was, now)
    for k, line in enumerate(lines):
        if first + k in skipped or not line.strip():
            continue
        for where, value in _values_at(json.loads(line), steps, column):
            if _json_kind(value) == odd:
                if column in protected:
                    raise DatasetLoadError(
                        f"{name}, {unit} {first + k}: {where} is {_FOUND.get(odd, odd)} "
                        f"({json.dumps(value)[:60]}); expected {_EXPECTED.get(expected, expected)}."
                    ) from None
                report.note(
                    f"column {column}",
                    f"the column {column!r} holds {was} and {now} "
                    f"values ({unit} {first + k} has {_FOUND.get(odd, odd)}); all are "
                    "kept as JSON text",
                )
                return [_stringify(line, column) for line in lines]
    raise DatasetLoadError(f"{name}: Arrow could not read it ({error}).") from None


def _expected_kind(steps: list[str], was: str, now: str) -> tuple[str, str]:
    """Which of two JSON kinds a field should have, and which one is the odd one out."""
    if len(steps) == 1 and steps[0] in _LIST_FIELDS:
        expected = "array"
    else:
        expected = "string" if "string" in (was, now) else was
    return expected, now if expected == was else was


def _values_at(value: Any, steps: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and steps and steps[0] in value:
        value = value[steps[0]]
    elif isinstance(value, dict):
        return
    if len(steps) == 1:
        yield where, value
    elif steps[1] == "[]" and isinstance(value, list):
        for k, item in enumerate(value):
            yield from _values_at(item, steps[2:], f"{where}[{k}]" + _dot(steps[2:]))
    elif steps[1] != "[]":
        yield from _values_at(value, steps[1:], f"{where}.{steps[1]}")


def _dot(steps: list[str]) -> str:
    return f".{steps[0]}" if steps else ""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    kinds = {str: "string", list: "array", dict: "object"}
    return kinds.get(type(value), "object")


def _stringify(line: bytes, column: str) -> bytes:
    if not line.strip():
        return line
    row = json.loads(line)
    value = row.get(column)
    if value is not None and not isinstance(value, str):
        row[column] = json.dumps(value, ensure_ascii=False)
    return json.dumps(row, ensure_ascii=False).encode()


def _row_namer(origin: Origin, skipped: set[int]) -> Callable[[int], str]:
    def where(index: int) -> str:
        first, seen = origin.first(), -1
        for k, line in enumerate(origin.text().split(b"\n")):
            if line.strip() and first + k not in skipped:
                seen += 1
                if seen == index:
                    return f"{origin.name}, {origin.unit} {first + k}"
        return f"{origin.name}, row {index + 1} of the block at {origin.unit} {first}"

    return where


# -- JSON arrays ----------------------------------------------------------------------------
def json_array_blocks(path: Path, report: LoadReport, protected) -> Iterator[Block]:
    """Blocks of a JSON array of row objects (the whole file is parsed: JSON arrays must be)."""
    data = path.read_bytes()
    data = data[bom_length(data, path) :]
    check_utf8(data, Origin(path.name, "line", lambda: 1, lambda d=data: d))
    try:
        items = json.loads(data)
    except json.JSONDecodeError as e:
        raise DatasetLoadError(
            f"{path.name}, line {e.lineno}, column {e.colno}: not valid JSON ({e.msg}). Fix the "
            "file (on_error='skip' works for JSON Lines files only)."
        ) from None
    del data
    if not isinstance(items, list):
        keys = list(items)[:8] if isinstance(items, dict) else type(items).__name__
        raise DatasetLoadError(
            f"{path.name} holds a JSON object ({keys}); expected a JSON array of rows or JSON "
            "Lines. Load the list inside it as a list of dicts instead."
        )
    for start in range(0, len(items), JSON_ITEMS_PER_BLOCK):
        chunk = items[start : start + JSON_ITEMS_PER_BLOCK]
        for k, item in enumerate(chunk):
            if not isinstance(item, dict):
                raise DatasetLoadError(
                    f"{path.name}, item {start + k + 1}: a JSON {type(item).__name__}; "
                    "expected an object (one row)."
                )
        lines = b"\n".join(json.dumps(item, ensure_ascii=False).encode() for item in chunk)
        origin = Origin(path.name, "item", lambda s=start: s + 1, lambda b=lines: b)
        yield parse_jsonl(lines, origin, "raise", report, protected)
