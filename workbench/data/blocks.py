"""Blocks of a data file: the reading that every file reader shares.

A text file is read in blocks of whole lines into one reused buffer, so a large file never
sits whole in memory and is not copied block by block. Line numbers and a block's bytes are
worked out again only when a line must be named in an error.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import DatasetLoadError
from ..persist import fields_from_json

BLOCK_BYTES = 16 << 20


@dataclass
class LoadReport:
    """What a load did: the layout found, rows read, lines skipped with on_error='skip', and
    warnings: one sentence for each kind of thing given that could not be kept as it was."""

    source: str = ""
    format: str = ""
    rows: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"line": n, "error": text}
    warnings: list[str] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)  # what each column beside the messages is for

    def __post_init__(self) -> None:
        self._seen: dict[str, list] = {}  # key -> [index in warnings, sentence, rows]

    def note(self, key: str, text: str, where: str | None = None) -> None:
        """Warn once per `key` that something given was not kept as it was; `where` (a line
        or row) is the first place seen, and later rows are counted."""
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = [len(self.warnings), f"{where or self.source}: {text}.", 1]
            self.warnings.append(self._seen[key][1])
        elif where is not None:
            seen[2] += 1
            self.warnings[seen[0]] = f"{seen[1][:-1]} ({seen[2]} rows in all)."

    def snapshot(self) -> tuple:
        """Skipped lines and warnings as they are now, to go back to when a load starts again."""
        return list(self.skipped), list(self.warnings), {k: list(v) for k, v in self._seen.items()}

    def restore(self, snapshot: tuple) -> None:
        """Go back to a `snapshot`."""
        skipped, warnings, seen = snapshot
        self.skipped, self.warnings = list(skipped), list(warnings)
        self._seen = {k: list(v) for k, v in seen.items()}

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (kept beside the cached table)."""
        return {
            "source": self.source,
            "format": self.format,
            "rows": self.rows,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "uses": self.uses,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "a load report") -> LoadReport:
        """A report read back from JSON; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))


@dataclass
class Block:
    """Rows of a file as an Arrow table, and how to name a row's place in the file."""

    table: pa.Table
    where: Callable[[int], str]


@dataclass
class Origin:
    """Where a block's lines come from, to name a line only when one must be named: the
    number of its first line and its bytes are worked out on demand (error paths only)."""

    name: str
    unit: str
    first: Callable[[], int]
    text: Callable[[], bytes]


def line_blocks(path: Path) -> Iterator[tuple[memoryview, int]]:
    """(bytes, file offset) of blocks of whole lines, read into one reused buffer; each view
    is valid until the next one is asked for. A UTF-8 byte order mark is left out."""
    buffer, carry, offset = bytearray(BLOCK_BYTES), 0, 0
    with open(path, "rb", buffering=0) as f:
        while True:
            with memoryview(buffer) as view:
                end = carry + f.readinto(view[carry:])
            if end == 0:
                return
            cut = end if end == carry else buffer.rfind(b"\n", 0, end) + 1
            if cut == 0:  # a line longer than the buffer: a buffer twice as big, read on
                bigger = bytearray(2 * len(buffer))  # (a new one: the last view may be alive)
                bigger[:end] = buffer[:end]
                buffer, carry = bigger, end
                continue
            start = bom_length(buffer, path) if offset == 0 else 0
            with memoryview(buffer) as view:
                yield view[start:cut], offset + start
            buffer[: end - cut] = buffer[cut:end]
            carry, offset = end - cut, offset + cut


def file_origin(path: Path, offset: int, length: int) -> Origin:
    """The origin of the block at `offset` of a file (line numbers counted on demand)."""

    def first() -> int:
        with open(path, "rb") as f:
            return 1 + sum(
                f.read(min(BLOCK_BYTES, offset - k)).count(b"\n")
                for k in range(0, offset, BLOCK_BYTES)
            )

    def text() -> bytes:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    return Origin(path.name, "line", first, text)


# -- encoding -------------------------------------------------------------------------------
def bom_length(data, path: Path) -> int:
    """Bytes of a UTF-8 byte order mark at the start of `data` (0 or 3); UTF-16 is refused."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DatasetLoadError(
            f"{path.name} is UTF-16 text; expected UTF-8. Save it as UTF-8 and load it again."
        )
    return 3 if data[:3] == b"\xef\xbb\xbf" else 0


def check_utf8(data, origin: Origin) -> None:
    """Refuse bytes that are not UTF-8, naming the line of the first bad byte."""
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError as e:
        line = origin.first() + bytes(data[: e.start]).count(b"\n")
        raise DatasetLoadError(
            f"{origin.name}, line {line}: byte {bytes(data[e.start : e.start + 1])!r} is not "
            "UTF-8 text; expected UTF-8. Re-save the file as UTF-8 (e.g. from Latin-1) and load "
            "it again."
        ) from None


def check_utf8_file(path: Path) -> None:
    """Refuse a file that is not UTF-8 (read in blocks), naming the line."""
    for data, offset in line_blocks(path):
        check_utf8(data, file_origin(path, offset, len(data)))
