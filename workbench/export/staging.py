"""Exports appear whole or not at all: written to a staging folder beside the target, renamed.

A failure midway (an error, a failed parity check, a full disk, an interrupt) removes the
staging folder and leaves the target path as it was. An existing non-empty folder is replaced
only with overwrite=True, and only once the new export is complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..persist import staged_folder
from .config import ExportError


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """The export folder, checked before any work; ExportError names the path and what to do."""
    path = Path(path).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path} is a file; choose a folder path for the export.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ExportError(
            f"{path} exists and is not empty; choose a new folder, or pass overwrite=True to "
            "replace it once the new export is complete."
        )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise ExportError(f"Cannot write in {parent}; choose a folder you can write to.")
    return path


@contextmanager
def staged(path: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a fresh staging folder beside `path`; on success it becomes `path` (an old export
    is replaced only with `overwrite`), else it goes and `path` is as it was."""
    with staged_folder(path) as staging:
        yield staging
        if path.exists() and any(path.iterdir()) and not overwrite:  # filled meanwhile
            raise ExportError(f"{path} was filled by someone else during the export; kept it.")


def folder_files(folder: Path) -> dict[str, int]:
    """Every file under `folder` by relative path, with its size in bytes."""
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
