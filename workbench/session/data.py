"""Session actions on data: load, edit, flag, exclude, split, select and export rows.

Every edit is appended to the workspace's edit log before the in-memory view changes, and is
validated first, so a refused edit leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

from ..data import DatasetLoadError, InstructionDataset, load_source
from ..data.dataset import check_origin
from ..data.messages import check_messages
from ..persist import append_jsonl, read_jsonl, staged_folder
from ..progress import quiet_datasets
from ..workspace import WorkspaceWarning
from .state import DatasetRef, Split

log = logging.getLogger(__name__)
SAVED_STATE = "state.json"  # the file datasets' save_to_disk writes last


class DataActions:
    """The data half of Session (a mixin: it uses the Session's workspace, save and notify)."""

    @property
    def dataset(self) -> InstructionDataset | None:
        """The dataset loaded last, with this workspace's edits applied (a failed load keeps it)."""
        return self._dataset

    def load_dataset(self, source: Any, **options: Any) -> InstructionDataset:
        """Load a file, HF dataset, DataFrame or list of dicts and make it the session's dataset.

        Raises DatasetLoadError naming the source and row; anything given that cannot be kept
        as it was is warned about once (UserWarning) and listed in `load_report.warnings`.

        >>> ds = s.load_dataset(wb.demo_data.generate(40, seed=1, handwritten=False))
        >>> len(ds)
        40
        """
        self.workspace.require_writable()
        ds = load_source(source, cache_dir=self.workspace.dataset_cache_dir, **options)
        ref = ds.source_ref or self._save_copy(ds)
        self._dataset_state = DatasetRef(ref, ds.fingerprint, options)
        self._apply_edit_log(ds)
        self._bind(ds)
        old, self._dataset = self._dataset, ds
        self._selected_row = 0
        self._save()
        self._notify("dataset", old, ds)
        return ds

    def _save_copy(self, ds: InstructionDataset) -> dict:
        """In-memory data has no file to reload from: keep an Arrow copy in the workspace,
        written whole or not at all (a copy is complete once its state.json is there)."""
        folder = self.workspace.datasets_dir / ds.fingerprint
        if not (folder / SAVED_STATE).exists():
            with staged_folder(folder) as staging, quiet_datasets():
                ds.table.save_to_disk(str(staging))
        return {"kind": "saved", "path": str(folder.relative_to(self.workspace.root))}

    def _restore_dataset(self, state: DatasetRef) -> InstructionDataset | None:
        source = dict(state.source)
        path = Path(source["path"])
        if not path.is_absolute():
            path = self.workspace.root / path
        try:
            if source["kind"] == "saved":
                table = _load_saved_copy(path)
                ds = InstructionDataset(table, source, cache_dir=self.workspace.dataset_cache_dir)
            else:
                ds = load_source(
                    path,
                    cache_dir=self.workspace.dataset_cache_dir,
                    **state.options,
                )
        except (OSError, DatasetLoadError) as e:
            told = f"Could not reload the dataset {path} ({e}); load it again."
            warnings.warn(told, WorkspaceWarning, stacklevel=4)
            return None
        if ds.fingerprint != state.fingerprint and source["kind"] != "saved":
            log.warning(
                "%s changed since it was loaded; this workspace's edits are applied by row number "
                "and may now point at different rows.",
                path,
            )
        ds.fingerprint = state.fingerprint  # the edit log is keyed by the first load's identity
        self._apply_edit_log(ds)
        self._bind(ds)
        return ds

    def _bind(self, ds: InstructionDataset) -> None:
        # The data layer sees the session's template and training length, never the session.
        ds.bind(template=lambda: self.template, max_length=lambda: self._max_length)

    def _apply_edit_log(self, ds: InstructionDataset) -> None:
        for number, record in enumerate(read_jsonl(self.workspace.edits_file), start=1):
            if record.get("dataset") != ds.fingerprint:
                continue
            try:
                ds.apply_edit(record)
            except (IndexError, ValueError, KeyError) as e:  # the data changed under the log
                log.warning("%s, record %d not applied: %s", self.workspace.edits_file, number, e)

    def _record_edit(self, op: str, **fields: Any) -> None:
        self.workspace.require_writable()
        ds = self._require_dataset()
        record = {"op": op, **fields, "dataset": ds.fingerprint, "time": time.time()}
        ds.apply_edit(dict(record))  # validates the row before anything is written
        append_jsonl(self.workspace.edits_file, record)
        self._notify("edits", None, record)

    def edit(self, row: int, messages: list[dict]) -> None:
        """Replace a row's messages (the source file is never modified). Keys other than role
        and content (reasoning_content, weight, ...) are kept; raises TypeError or ValueError
        for a message that is not role/content text, a key JSON cannot hold or a bad flag."""
        self._record_edit("edit", row=row, messages=check_messages(messages, row))

    def flag(self, row: int, reason: str = "flagged") -> None:
        """Mark a row with a reason, to find it again or to filter it out."""
        self._record_edit("flag", row=row, reason=str(reason))

    def unflag(self, row: int) -> None:
        """Remove a row's flag."""
        self._record_edit("unflag", row=row)

    def exclude(self, row: int) -> None:
        """Leave a row out of training, evaluation and export."""
        self._record_edit("exclude", row=row)

    def include(self, row: int) -> None:
        """Undo exclude."""
        self._record_edit("include", row=row)

    def add_row(self, messages: list[dict], origin: dict | None = None) -> int:
        """Append a new row; returns its row number. `origin` (a JSON object: generator, seed
        rows, time, ... for synthetic rows) stays with the row as `ds[i]["origin"]` and in
        exports; raises TypeError for an origin that is not a JSON object."""
        fields: dict[str, Any] = {"messages": check_messages(messages, "new row")}
        if origin is not None:
            fields["origin"] = check_origin(origin)
        self._record_edit("add", **fields)
        return len(self._require_dataset()) - 1

    def split(self, eval_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
        """Fix a deterministic train/eval split of the dataset; returns the two lists of rows.

        >>> train_rows, eval_rows = s.split(eval_fraction=0.1, seed=0)
        >>> len(train_rows), len(eval_rows)
        (36, 4)
        """
        self.workspace.require_writable()
        if not 0 <= eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1); got {eval_fraction}.")
        ds = self._require_dataset()
        old, self._split = self._split, Split(eval_fraction, seed)
        self._save()
        self._notify("split", old, self._split)
        return ds.split_indices(eval_fraction, seed)

    def export_dataset(self, path: str | os.PathLike) -> Path:
        """Write the cleaned dataset (edits applied, excluded rows left out) to JSONL or Parquet,
        by the path's suffix; the source file is never modified. Models: `export_model`.

        >>> s.export_dataset("clean.jsonl").name
        'clean.jsonl'
        """
        return self._require_dataset().export(path)

    export = export_dataset  # an alias: notebooks written for earlier versions call export(path)

    @property
    def split_rows(self) -> tuple[list[int], list[int]]:
        """Train and eval rows under the saved split (all rows train when no split was made)."""
        ds = self._require_dataset()
        split = self._split or Split()
        return ds.split_indices(split.eval_fraction, split.seed)

    @property
    def dataset_source(self) -> str | None:
        """Where the loaded dataset was read from: the file's path, else the name given to
        load_dataset (a hub dataset, kept in the workspace); None with no dataset."""
        ref, ds = self._dataset_state, self._dataset
        if ref is None or ds is None:
            return None
        if ref.source.get("kind") == "file":
            return str(ref.source["path"])
        return ds.load_report.source or None

    @property
    def selected_row(self) -> int:
        """The row the views show: selected in the browser, previewed in the template editor."""
        return self._selected_row

    def select(self, row: int) -> None:
        """Make `row` the selected row of every view."""
        ds = self._require_dataset()
        row = ds._check_row(row)
        old, self._selected_row = self._selected_row, row
        if not self.read_only:
            self._save()
        self._notify("selected_row", old, row)

    def _require_dataset(self) -> InstructionDataset:
        if self._dataset is None:
            raise RuntimeError("No dataset is loaded; call session.load_dataset(...) first.")
        return self._dataset


def _load_saved_copy(path: Path):
    """The Arrow copy the workspace keeps of in-memory data; DatasetLoadError when a crash or
    a full disk left it incomplete (copies are written whole since, persist.staged_folder)."""
    import datasets

    try:
        if not (path / SAVED_STATE).exists():
            raise FileNotFoundError(f"no {SAVED_STATE}")
        return datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:
        raise DatasetLoadError(
            f"the workspace's copy of the in-memory dataset, {path}, is incomplete or damaged "
            f"({e}); load the data again with session.load_dataset(...): the edits recorded "
            "for it apply again to the same rows"
        ) from e
