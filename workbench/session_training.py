"""Session actions on training: plan and estimate a run, start or resume it, list runs and adapters."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .templates import tokenize_with_labels
from .train import Run, TrainConfig


class TrainingActions:
    """The training half of Session (a mixin over the Session's state)."""

    def train(
        self,
        config: TrainConfig | None = None,
        *,
        resume: Run | str | None = None,
        preferences: Iterable[Any] | None = None,
    ) -> Run:
        """Start a run in its own process and return its handle at once.

        With `resume=run` the stopped, failed or died run continues from its last checkpoint
        (its steps and loss curve continue); `config` may then only change the step budget.
        A DPO run (method="dpo") trains on `preferences` (votes or prompt/chosen/rejected rows),
        by default on this workspace's votes.
        """
        from .train import launch

        self.workspace.require_writable()
        if resume is not None:
            run = resume if isinstance(resume, Run) else self.run(resume)
            new = launch.check_resume(run, config)
            launch.update_config(run, new)
        else:
            planned = self.plan(config or TrainConfig())
            if planned.method == "dpo":
                planned, examples = self._dpo_examples(planned, preferences)
            else:
                examples = self._split_examples()
            run = launch.prepare_run(
                self.workspace.runs_dir, planned, self._model, self.template, *examples
            )
        run = launch.start_runner(run)
        self._runs[run.name] = run
        self._notify("runs", None, run)
        return run

    def _dpo_examples(
        self, config: TrainConfig, preferences: Iterable[Any] | None
    ) -> tuple[TrainConfig, tuple[list[dict], list[dict]]]:
        from .train.dpo import as_pairs, check_pairs, split_pairs

        records = self.preferences if preferences is None else preferences
        pairs = as_pairs(records, include_ties=config.include_ties)
        check_pairs(pairs, self.template, config.max_length, config.max_prompt_length)
        if config.base_adapter and not Path(config.base_adapter).is_dir():
            adapter = self.run(config.base_adapter).adapter_path
            if adapter is None:
                raise ValueError(
                    f"{config.base_adapter} has no adapter yet; DPO starts from an adapter."
                )
            config = config.replace(base_adapter=str(adapter))
        return config, split_pairs(pairs.rows, seed=config.seed)

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

    def check_runs(self) -> list[Run]:
        """Runs whose state changed since the last check; observers of "runs" hear of each.

        Runs change in their own processes, so a view that polls (the training launcher) calls
        this, and every other view (the comparator's contestants) follows without polling.
        """
        states = self.__dict__.setdefault("_run_states", {})
        changed = []
        for run in self.runs:
            state = run.status.state
            if states.get(run.name) != state:
                states[run.name] = state
                changed.append(run)
        for run in changed:
            self._notify("runs", None, run)
        return changed

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
