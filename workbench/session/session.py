"""Session: the single source of truth of a workbench, persisted to a workspace folder.

Everything a person does (load data, flag a row, edit a template, vote) is a method call here.
Each change is written to the workspace before observers hear of it, so a kernel restart loses
nothing, and views (widgets) stay thin: they call these methods and observe the changes.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import models
from ..data import InstructionDataset
from ..templates.template import Template, validate_template
from ..train import Run
from ..workspace import Workspace, WorkspaceError, WorkspaceWarning
from .answers import ComparisonActions
from .data import DataActions
from .export import ExportActions
from .keep import KeepActions
from .runs import RunsActions
from .state import DatasetRef, SessionState, Split
from .storage import StorageActions
from .synthesis import SynthesisActions
from .training import TrainingActions
from .watcher import RunWatcher

log = logging.getLogger(__name__)

OBSERVABLE = (
    "model",
    "template",
    "max_length",
    "dataset",
    "edits",
    "selected_row",
    "split",
    "preferences",
    "runs",
    "selected_run",
    "candidates",
)


@dataclass(frozen=True)
class Change:
    """What changed in a Session: the name of the state, its old and its new value."""

    name: str
    old: Any
    new: Any
    session: Session


class Session(
    DataActions,
    TrainingActions,
    KeepActions,
    RunsActions,
    ComparisonActions,
    ExportActions,
    SynthesisActions,
    StorageActions,
):
    """A workspace's state and every action on it; open one with `Session.open(path)`.

    The actions live in mixins by subject (data, training, answers, export, synthesis); this
    class holds the state, the observers and the persistence they share.
    """

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._observers: list[tuple[Callable[[Change], None], frozenset[str] | None]] = []
        self._tokenizer = None
        self._generator = None
        self._runs: dict[str, Run] = {}
        self._attached: dict[str, str] | None = None  # attached run folders, read on first use
        self._run_states: dict[str, tuple[str, int]] = {}  # (state, step) at the last check
        self._watcher: RunWatcher | None = None  # announces run changes; started with a run
        self._warm = None  # a WarmRunner waiting for the next run (session.warm_runner)
        self._shape = None  # (model spec, its ModelShape), computed on first use
        state = self._read_state()
        self._model: models.ModelSpec = state.model
        self._template: Template = state.template
        self._dataset_state: DatasetRef | None = state.dataset
        self._split: Split | None = state.split
        self._selected_row: int = state.selected_row
        self._selected_run: str | None = state.selected_run
        self._max_length: int = state.max_length
        self._dataset: InstructionDataset | None = None
        if self._dataset_state:
            self._dataset = self._restore_dataset(self._dataset_state)
        if not workspace.read_only and workspace.run_queue_file.exists():
            self._watch_runs()  # runs queued before a restart start when their device frees
        if not workspace.session_file.exists() and not workspace.read_only:
            self._save()

    @classmethod
    def open(cls, path: str | os.PathLike, *, read_only: bool = False) -> Session:
        """Create or restore the workspace at `path`; read_only looks without changing it.

        On a full disk it opens read-only, and on a nearly full one writable, with a
        WorkspaceWarning that says what takes the room.

        >>> s = wb.Session.open("workspace")  # created, or restored as it was left
        >>> s.read_only
        False
        >>> s.close()
        """
        workspace = Workspace(path, read_only=read_only)
        if told := workspace.read_only_reason or workspace.low_disk_warning():
            warnings.warn(told, WorkspaceWarning, stacklevel=2)
        return cls(workspace)

    @property
    def path(self) -> Path:
        """The workspace folder this session reads and writes."""
        return self.workspace.root

    @property
    def read_only(self) -> bool:
        """Whether this session only looks (opened read_only, or another kernel writes here)."""
        return self.workspace.read_only

    def close(self) -> None:
        """Release the workspace so another kernel may open it for writing."""
        if self._watcher is not None:
            self._watcher.stop()
        if self._warm is not None:
            self._warm.close()
        self.workspace.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        rows = len(self._dataset) if self._dataset is not None else 0
        mode = ", read-only" if self.read_only else ""
        return (
            f"Session({str(self.path)!r}{mode}: model={self._model.display_name!r}, "
            f"template={self._template.name!r}, rows={rows})"
        )

    # -- observers ----------------------------------------------------------------------------
    def observe(
        self, callback: Callable[[Change], None], names: Iterable[str] | str | None = None
    ) -> Callable[[], None]:
        """Call `callback(change)` after each change of the named state; returns an unsubscribe."""
        wanted = frozenset([names] if isinstance(names, str) else names) if names else None
        unknown = (wanted or frozenset()) - set(OBSERVABLE)
        if unknown:
            raise ValueError(f"Cannot observe {sorted(unknown)}; choose from {list(OBSERVABLE)}.")
        entry = (callback, wanted)
        self._observers.append(entry)
        return lambda: self._observers.remove(entry) if entry in self._observers else None

    def _notify(self, name: str, old: Any, new: Any) -> None:
        change = Change(name, old, new, self)
        for callback, wanted in list(self._observers):
            if wanted is None or name in wanted:
                try:
                    callback(change)
                except Exception:  # a broken view must not break the session or other views
                    log.exception("An observer of %r failed", name)

    # -- model and template -------------------------------------------------------------------
    @property
    def model(self) -> models.ModelSpec:
        """The base model every run tunes and every contestant answers with (see set_model)."""
        return self._model

    def set_model(self, model: models.ModelSpec | str | os.PathLike) -> None:
        """Choose the base model: wb.models.DEFAULT, a hub id or a local folder."""
        self.workspace.require_writable()
        old, self._model = self._model, models.as_spec(model)
        self._tokenizer = None
        self._generator = None
        self._save()
        self._notify("model", old, self._model)

    @property
    def tokenizer(self):
        """The base model's tokenizer, loaded on first use."""
        if self._tokenizer is None:
            self._tokenizer = models.load_tokenizer(self._model)
        return self._tokenizer

    @property
    def template(self) -> Template:
        """The current template, bound to the session's tokenizer."""
        return self._template.with_tokenizer(self.tokenizer)

    def set_template(self, template: Template | str, train_on: str | None = None) -> None:
        """Use a preset name, "model" (the tokenizer's own) or a Template; a bad one is refused.

        The template is checked by rendering before it is kept, so the session always holds the
        last valid template.

        >>> s.set_template("chatml")
        >>> s.template.name
        'chatml'
        """
        self.workspace.require_writable()
        new = Template.preset(template) if isinstance(template, str) else template
        if train_on is not None:
            new = Template(new.source, new.name, train_on)
        validate_template(new.with_tokenizer(self.tokenizer))  # renders, and shows the answer
        old, self._template = self._template, Template(new.source, new.name, new.train_on)
        self._save()
        self._notify("template", old, self._template)

    @property
    def max_length(self) -> int:
        """The training sequence length: quality checks and length stats measure against it."""
        return self._max_length

    def set_max_length(self, max_length: int) -> None:
        """Set the training sequence length (tokens)."""
        self.workspace.require_writable()
        if not isinstance(max_length, int) or max_length < 8:
            raise ValueError(f"max_length must be an int of at least 8 tokens; got {max_length!r}.")
        old, self._max_length = self._max_length, max_length
        self._save()
        self._notify("max_length", old, max_length)

    # -- persistence --------------------------------------------------------------------------
    def _read_state(self) -> SessionState:
        raw = self.workspace.read_state()
        if raw is None:
            return SessionState()
        try:
            return SessionState.from_json(raw, source=str(self.workspace.session_file))
        except (TypeError, ValueError) as e:
            raise WorkspaceError(
                f"Cannot read {self.workspace.session_file}: {e} Fix that entry, or move the file "
                "away to start this workspace afresh; nothing was changed."
            ) from e

    def _save(self) -> None:
        state = SessionState(
            model=self._model,
            template=self._template,
            dataset=self._dataset_state,
            split=self._split,
            selected_row=self._selected_row,
            max_length=self._max_length,
            selected_run=self._selected_run,
        )
        self.workspace.write_state(state.to_json())
