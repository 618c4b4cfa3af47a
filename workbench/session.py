"""Session: the single source of truth of a workbench, persisted to a workspace folder.

Everything a person does (load data, flag a row, edit a template, vote) is a method call here.
Each change is written to the workspace before observers hear of it, so a kernel restart loses
nothing, and views (widgets) stay thin: they call these methods and observe the changes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import models
from .data import DatasetLoadError, InstructionDataset, load_source
from .persist import append_jsonl, read_jsonl
from .preferences import PreferenceRecord
from .templates import Template, TemplateError, tokenize_with_labels
from .train import Run, TrainConfig
from .workspace import Workspace

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
)
DEFAULT_MAX_LENGTH = 1024


@dataclass(frozen=True)
class Change:
    """What changed in a Session: the name of the state, its old and its new value."""

    name: str
    old: Any
    new: Any
    session: Session


class Session:
    """A workspace's state and every action on it; open one with `Session.open(path)`."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._observers: list[tuple[Callable[[Change], None], frozenset[str] | None]] = []
        self._tokenizer = None
        self._generator = None
        self._runs: dict[str, Run] = {}
        state = workspace.read_state() or {}
        self._model = models.ModelSpec.from_json(state.get("model") or models.DEFAULT.to_json())
        self._template = Template.from_json(state.get("template") or {"name": "model"})
        self._dataset_state: dict | None = state.get("dataset")
        self._split: dict | None = state.get("split")
        self._selected_row: int = state.get("selected_row", 0)
        self._max_length: int = state.get("max_length", DEFAULT_MAX_LENGTH)
        self._dataset: InstructionDataset | None = None
        if self._dataset_state:
            self._dataset = self._restore_dataset(self._dataset_state)
        if state == {} and not workspace.read_only:
            self._save()

    @classmethod
    def open(cls, path: str | os.PathLike, *, read_only: bool = False) -> Session:
        """Create or restore the workspace at `path`; read_only looks without changing it."""
        return cls(Workspace(path, read_only=read_only))

    @property
    def path(self) -> Path:
        return self.workspace.root

    @property
    def read_only(self) -> bool:
        return self.workspace.read_only

    def close(self) -> None:
        """Release the workspace so another kernel may open it for writing."""
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
        """
        self.workspace.require_writable()
        new = Template.preset(template) if isinstance(template, str) else template
        if train_on is not None:
            new = Template(new.source, new.name, train_on)
        probe = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
        text = new.with_tokenizer(self.tokenizer).render(probe)
        if not text.strip():
            raise TemplateError(
                "The template renders an empty string; the session kept the last one."
            )
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

    # -- data ---------------------------------------------------------------------------------
    @property
    def dataset(self) -> InstructionDataset | None:
        """The dataset loaded last, with this workspace's edits applied (a failed load keeps it)."""
        return self._dataset

    def load_dataset(self, source: Any, **options: Any) -> InstructionDataset:
        """Load a file, HF dataset, DataFrame or list of dicts and make it the session's dataset."""
        self.workspace.require_writable()
        ds = load_source(source, cache_dir=self.workspace.cache_dir / "datasets", **options)
        ref = ds.source_ref or self._save_copy(ds)
        self._dataset_state = {"source": ref, "fingerprint": ds.fingerprint, "options": options}
        self._apply_edit_log(ds)
        self._bind(ds)
        old, self._dataset = self._dataset, ds
        self._selected_row = 0
        self._save()
        self._notify("dataset", old, ds)
        return ds

    def _save_copy(self, ds: InstructionDataset) -> dict:
        # In-memory data has no file to reload from; keep an Arrow copy in the workspace.
        folder = self.workspace.root / "datasets" / ds.fingerprint
        if not folder.exists():
            ds.table.save_to_disk(str(folder))
        return {"kind": "saved", "path": str(folder.relative_to(self.workspace.root))}

    def _restore_dataset(self, state: dict) -> InstructionDataset | None:
        source = dict(state["source"])
        path = Path(source["path"])
        if not path.is_absolute():
            path = self.workspace.root / path
        try:
            if source["kind"] == "saved":
                import datasets

                ds = InstructionDataset(datasets.load_from_disk(str(path)), source)
            else:
                ds = load_source(
                    path,
                    cache_dir=self.workspace.cache_dir / "datasets",
                    **state.get("options", {}),
                )
        except (OSError, DatasetLoadError) as e:
            log.warning("Could not reload the dataset %s (%s); load it again.", path, e)
            return None
        ds.fingerprint = state["fingerprint"]  # the edit log is keyed by the first load's identity
        self._apply_edit_log(ds)
        self._bind(ds)
        return ds

    def _bind(self, ds: InstructionDataset) -> None:
        # The data layer sees the session's template and training length, never the session.
        ds.bind(template=lambda: self.template, max_length=lambda: self._max_length)

    def _apply_edit_log(self, ds: InstructionDataset) -> None:
        for record in read_jsonl(self.workspace.edits_file):
            if record.get("dataset") == ds.fingerprint:
                ds.apply_edit(record)

    def _record_edit(self, op: str, **fields: Any) -> None:
        self.workspace.require_writable()
        ds = self._require_dataset()
        record = {"op": op, **fields, "dataset": ds.fingerprint, "time": time.time()}
        ds.apply_edit(dict(record))  # validates the row before anything is written
        append_jsonl(self.workspace.edits_file, record)
        self._notify("edits", None, record)

    def edit(self, row: int, messages: list[dict]) -> None:
        """Replace a row's messages (the source file is never modified)."""
        self._record_edit("edit", row=row, messages=_check_messages(messages, row))

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

    def add_row(self, messages: list[dict]) -> int:
        """Append a new row; returns its row number."""
        self._record_edit("add", messages=_check_messages(messages, "new row"))
        return len(self._require_dataset()) - 1

    def split(self, eval_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
        """Fix a deterministic train/eval split of the dataset; returns the two lists of rows."""
        self.workspace.require_writable()
        if not 0 <= eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1); got {eval_fraction}.")
        ds = self._require_dataset()
        old, self._split = self._split, {"eval_fraction": eval_fraction, "seed": seed}
        self._save()
        self._notify("split", old, self._split)
        return ds.split_indices(eval_fraction, seed)

    def export(self, path: str | os.PathLike) -> Path:
        """Write the cleaned dataset (edits applied, excluded rows left out) to JSONL or Parquet."""
        return self._require_dataset().export(path)

    @property
    def split_rows(self) -> tuple[list[int], list[int]]:
        """Train and eval rows under the saved split (all rows train when no split was made)."""
        ds = self._require_dataset()
        split = self._split or {"eval_fraction": 0.0, "seed": 0}
        return ds.split_indices(split["eval_fraction"], split["seed"])

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

    # -- preferences --------------------------------------------------------------------------
    def record_preference(
        self, prompt: Any, chosen: str, rejected: str, **details: Any
    ) -> PreferenceRecord:
        """Append one vote to preferences.jsonl; it is on disk when this returns."""
        self.workspace.require_writable()
        record = PreferenceRecord.create(prompt, chosen, rejected, **details)
        append_jsonl(self.workspace.preferences_file, record.to_json())
        self._notify("preferences", None, record)
        return record

    @property
    def preferences(self) -> list[PreferenceRecord]:
        """Every vote recorded in this workspace, oldest first."""
        return [PreferenceRecord.from_json(r) for r in read_jsonl(self.workspace.preferences_file)]

    # -- training -----------------------------------------------------------------------------
    def train(self, config: TrainConfig | None = None, *, resume: Run | str | None = None) -> Run:
        """Start a run in its own process and return its handle at once.

        With `resume=run` the stopped, failed or died run continues from its last checkpoint
        (its steps and loss curve continue); `config` may then only change the step budget.
        """
        from .train import launch

        self.workspace.require_writable()
        if resume is not None:
            run = resume if isinstance(resume, Run) else self.run(resume)
            new = launch.check_resume(run, config)
            launch.update_config(run, new)
            run = launch.start_runner(run)
        else:
            run = launch.prepare_run(
                self.workspace.runs_dir,
                self.plan(config or TrainConfig()),
                self._model,
                self.template,
                *self._split_examples(),
            )
            run = launch.start_runner(run)
        self._runs[run.name] = run
        self._notify("runs", None, run)
        return run

    def plan(self, config: TrainConfig | None = None) -> TrainConfig:
        """`config` with every open choice made for this model and hardware, with reasons."""
        from .train.estimate import detect_device

        config = config or TrainConfig()
        device, _, _ = detect_device()
        return config.resolve(
            n_params=self.model_shape.n_params, device=device, session_max_length=self._max_length
        )

    def estimate(self, config: TrainConfig | None = None):
        """Memory (GB by part) and seconds per step of `config` here, with a warning if it won't fit."""
        from .train.estimate import detect_device, estimate

        device, name, memory = detect_device()
        measured = None  # the speed of the last run of this model, when there is one
        for run in reversed(self.runs):
            if run.info["model"] == self._model.to_json():
                measured = run.status.extra.get("tokens_per_s")
                break
        mean_tokens = 256.0
        if self._dataset is not None and len(self._dataset):
            sample = [self._dataset[i] for i in range(min(64, len(self._dataset)))]
            mean_tokens = sum(
                len(t.input_ids) for t in tokenize_with_labels(self.template, sample)
            ) / len(sample)
        return estimate(
            self.model_shape, self.plan(config), device, name, memory, measured, mean_tokens
        )

    @property
    def model_shape(self):
        """Parameter count and layer shapes of the base model (read from its config, cached)."""
        from .train.estimate import model_shape

        if getattr(self, "_shape", None) is None or self._shape[0] != self._model:
            self._shape = (self._model, model_shape(self._model))
        return self._shape[1]

    def _split_examples(self) -> tuple[list[dict], list[dict]]:
        ds = self._require_dataset()
        train_rows, eval_rows = self.split_rows
        return [ds[i] for i in train_rows], [ds[i] for i in eval_rows]

    @property
    def runs(self) -> list[Run]:
        """Every run in this workspace, oldest first; live ones re-attached."""
        folder = self.workspace.runs_dir
        if folder.exists():
            for path in folder.glob("run-*"):
                if path.name not in self._runs and (path / "config.json").exists():
                    self._runs[path.name] = Run(path)
        return sorted(self._runs.values(), key=lambda r: int(r.name.split("-")[-1]))

    def run(self, name: str) -> Run:
        """The run called `name` (e.g. "run-3")."""
        for run in self.runs:
            if run.name == name:
                return run
        known = ", ".join(r.name for r in self.runs) or "none yet"
        raise KeyError(f"No run named {name!r} in this workspace; runs: {known}.")

    @property
    def adapters(self) -> dict[str, Path]:
        """Every trained adapter of this workspace, by run name."""
        return {r.name: r.adapter_path for r in self.runs if r.adapter_path is not None}

    # -- generation ---------------------------------------------------------------------------
    def generate(
        self, prompt_or_messages: str | list[dict], model: str = "base", **settings: Any
    ) -> str:
        """One answer from the session's model ("base") with its template; greedy at temperature 0."""
        from .generate import GenerationSettings, Generator

        if self._generator is None:
            self._generator = Generator(self._model, self._template)
        return self._generator.generate(prompt_or_messages, model, GenerationSettings(**settings))

    # -- persistence --------------------------------------------------------------------------
    def _save(self) -> None:
        self.workspace.write_state(
            {
                "model": self._model.to_json(),
                "template": self._template.to_json(),
                "dataset": self._dataset_state,
                "split": self._split,
                "selected_row": self._selected_row,
                "max_length": self._max_length,
            }
        )


def _check_messages(messages: Any, where: Any) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise TypeError(f"Row {where}: messages must be a non-empty list of role/content dicts.")
    for k, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("content"), str)
            or m.get("role") not in ("system", "user", "assistant")
        ):
            raise TypeError(
                f"Row {where}, message {k}: expected {{'role': 'system'|'user'|'assistant', "
                f"'content': str}}; got {m!r}."
            )
    return [{"role": m["role"], "content": m["content"]} for m in messages]
