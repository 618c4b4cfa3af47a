"""Session actions that take a tuned model out of the workbench: export it, push it to the Hub.

`export_model` refuses what cannot work before any weight loads (an unfinished or failed run, a
non-empty folder, a base model that is gone, an architecture the GGUF writer does not know),
then gathers what the workspace knows (probe prompts from the eval split, the template the
adapter answers with, the card's facts) and hands it to workbench.export, which writes and
checks. The export loads its own copy of the base model and records the adapter's answers with
the workbench's generation code; the session's comparison model is loaded only to read cached
evaluation figures for the card, after the export's model is gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..export.config import ExportConfig, ExportError

if TYPE_CHECKING:
    from ..export.card import CardFacts
    from ..export.result import Export
    from ..export.source import ExportSource
    from ..templates.template import Template
    from ..train import Run


class ExportActions:
    """Export and Hub push for Session (a mixin over its state)."""

    def export_model(
        self,
        model: str | os.PathLike | Run,
        path: str | os.PathLike,
        format: str = "merged",
        *,
        dtype: str = "auto",
        quantization: str = "f16",
        shard_size: str = "5GB",
        probes: int = 8,
        overwrite: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
        **options: Any,
    ) -> Export:
        """Export a tuned model (a run name, a Run, or an adapter folder) to the folder `path`.

        format: "merged" (safetensors), "gguf", "ollama" (GGUF + Modelfile) or "adapter"; the
        other settings are ExportConfig's fields. Every export is parity-checked on `probes`
        eval prompts; ParityError (nothing written) when an unquantised export answers
        differently, ExportError for every refusal. `progress(stage, done, total)`.
        """
        from ..export.parity import probe_prompts
        from ..export.pipeline import ExportJob, run_export
        from ..export.source import check_base_available, check_format
        from ..export.staging import check_target

        config = ExportConfig(
            format=format,
            dtype=dtype,
            quantization=quantization,
            shard_size=shard_size,
            probes=probes,
            overwrite=overwrite,
            **options,
        )
        source, run = self._export_source(model)
        target = check_target(path, overwrite)
        check_format(config, check_base_available(source.spec), source.spec)
        eval_rows = _scorable(self._export_eval_rows())
        prompts, probe_source = probe_prompts(_prompts_of(eval_rows), config.probes)
        job = ExportJob(
            source=source,
            path=target,
            config=config,
            template=self._export_template(source),
            prompts=prompts,
            probe_source=probe_source,
            card=self._card_facts(source, run),
            evaluation=lambda: self._cached_evaluation(source, run, eval_rows),
        )
        return run_export(job, progress)

    def default_export_path(self, model: str, format: str = "merged") -> Path:
        """Where an export goes unless told: exports/<model>-<format> in the workspace, with
        -2, -3, ... when that folder is already taken."""
        stem = f"{Path(str(model)).name}-{format}"
        path, n = self.workspace.exports_dir / stem, 1
        while path.exists() and any(path.iterdir()):
            n += 1
            path = self.workspace.exports_dir / f"{stem}-{n}"
        return path

    def push_to_hub(
        self, export_path: str | os.PathLike, repo_id: str, private: bool = True
    ) -> str:
        """Upload an export folder to the Hub repo `repo_id` (private unless asked); its URL.

        Offline or not logged in: ExportError saying what to do; the folder is never changed.
        """
        from ..export.hub import push_to_hub

        return push_to_hub(export_path, repo_id, private=private)

    # -- internals ----------------------------------------------------------------------------
    def _export_source(self, model: Any) -> tuple[ExportSource, Run | None]:
        """The adapter behind `model`, with the run that made it; refusals name what to do."""
        from ..export.source import adapter_source, check_run_state
        from ..train import Run

        if isinstance(model, Run):
            model = model.name
        runs = {r.name: r for r in self.runs}
        if isinstance(model, str) and model in runs:
            run = runs[model]
            status = run.status
            check_run_state(run.name, status.state, status.message)
            if run.adapter_path is None:
                raise ExportError(f"{run.name} has no adapter yet; nothing to export.")
            return adapter_source(run.name, run.adapter_path, self._model), run
        if model == "base":
            raise ExportError(
                "'base' is the session's model without an adapter; export a run's adapter "
                f"(one of: {', '.join(runs) or 'no runs yet'}) or an adapter folder."
            )
        folder = self._known_adapter(model)
        if folder is None:
            raise ExportError(
                f"No run or adapter folder {str(model)!r}; export one of: "
                f"{', '.join(runs) or 'no runs yet'}, or an adapter folder."
            )
        run = _run_of(folder)
        if run is not None:
            status = run.status
            check_run_state(run.name, status.state, status.message)
        name = folder.parent.name if folder.name == "adapter" else folder.name
        return adapter_source(name, folder, self._model), run

    def _known_adapter(self, model: Any) -> Path | None:
        generator = self._generator
        if isinstance(model, str) and generator is not None and model in generator.contestants:
            return generator.contestant(model).adapter
        folder = Path(model)
        return folder if folder.is_dir() else None

    def _export_eval_rows(self) -> list[dict]:
        if self._dataset is None or self._split is None:
            return []
        try:
            return self._eval_rows()
        except ValueError:  # a split with no eval rows: the probes fall back
            return []

    def _export_template(self, source: ExportSource) -> Template:
        """The template the adapter answers with: its own, else the session's (as Generator)."""
        from ..templates.template import TEMPLATE_FILE, Template

        if (source.adapter / TEMPLATE_FILE).is_file():
            return Template.load(source.adapter)
        return self.template

    def _card_facts(self, source: ExportSource, run: Run | None) -> CardFacts:
        from ..export.card import CardFacts, base_license

        data = self._dataset_state
        trained, run_config = _run_facts(run)
        return CardFacts(
            name=source.name,
            base_model=source.spec,
            license=base_license(source.spec),
            data_source=_describe_source(data.source) if data else None,
            data_fingerprint=data.fingerprint if data else None,
            train_rows=trained,
            train_config=source.train or run_config,
            notes=[source.note] if source.note else [],
        )

    def _cached_evaluation(
        self, source: ExportSource, run: Run | None, eval_rows: list[dict]
    ) -> dict[str, Any] | None:
        """Exact-match figures of base and the adapter from the answer cache (None if absent).

        Nothing is generated; the comparison model loads only when the cache has answers.
        """
        from ..export.card import cached_evaluation

        cache = self._answer_cache()
        if cache is None or not eval_rows or not self.workspace.answer_cache_file.is_file():
            return None
        name = self.load_contestant(source.name if run is not None else source.adapter)
        return cached_evaluation(self.generator, ["base", name], eval_rows, cache)


def _run_of(folder: Path) -> Run | None:
    """The run whose adapter/ this folder is, if it is one."""
    from ..train import Run

    if folder.name == "adapter" and (folder.parent / "config.json").is_file():
        try:
            return Run(folder.parent)
        except (OSError, ValueError):
            return None
    return None


def _run_facts(run: Run | None) -> tuple[int | None, dict[str, Any] | None]:
    """Rows the run trained on and its train config, from its config.json (None if unknown)."""
    if run is None:
        return None, None
    try:
        info = run.info
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    return info.data.get("train", {}).get("rows"), info.train.to_json()


def _prompts_of(rows: list[dict]) -> list[list[dict]]:
    from ..answers.evaluate import split_turns

    return [with_context(r, split_turns(r)[0]) for r in _scorable(rows)]


def with_context(row: dict, prompt: list[dict]) -> list[dict] | dict:
    """A row's prompt, as a row with its tools and documents when it has any (the template
    renders them), else the messages alone."""
    from ..templates.context import row_context

    return {**row_context(row), "messages": prompt} if row_context(row) else prompt


def _scorable(rows: list[dict]) -> list[dict]:
    """Rows that end in an assistant turn (a prompt and a reference)."""
    return [r for r in rows if any(m.get("role") == "assistant" for m in r["messages"][1:])]


def _describe_source(source: dict[str, Any]) -> str:
    kind, where = source.get("kind", "data"), source.get("path") or source.get("name")
    return f"{kind}: {where}" if where else str(kind)
