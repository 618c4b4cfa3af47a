"""Load instruction data from files and in-memory objects into an Arrow-backed dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .dataset import InstructionDataset


class DatasetLoadError(ValueError):
    """Data could not be loaded; the message names the file, line or row and what to do."""


def load_source(source: Any, *, cache_dir: Path | None = None) -> InstructionDataset:
    """Load a path (JSONL/JSON of chat `messages`) or a list of dicts as an InstructionDataset."""
    import datasets

    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DatasetLoadError(f"No data file at {path}. Check the path.")
        table = datasets.load_dataset(
            "json",
            data_files=str(path),
            split="train",
            cache_dir=str(cache_dir) if cache_dir else None,
        )
        ref = {"kind": "file", "path": str(path.resolve())}
    elif isinstance(source, list):
        table = datasets.Dataset.from_list(source)
        ref = None
    else:
        raise DatasetLoadError(f"Cannot load data from a {type(source).__name__}.")
    if "messages" not in table.column_names:
        raise DatasetLoadError(
            f"{source}: expected a 'messages' column; found {table.column_names}."
        )
    return InstructionDataset(table, source_ref=ref)
