"""Session actions on training: plan and estimate a run, start or resume it, list runs and adapters."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..templates.template import tokenize_with_labels
from ..train import Run, TrainConfig
from ..train.config import PREFERENCE_METHODS

if TYPE_CHECKING:
    from ..train.queue import QueuedRun, RunQueue


class TrainingActions:
    """The training half of Session (a mixin over the Session's state)."""

    def prepare(
        self, config: TrainConfig | None = None, preferences: Iterable[Any] | None = None
    ) -> Run:
        """Plan `config` and write its run folder (config, data snapshot, template); nothing starts.

        For run.export_job(path) to a machine with more GPUs than this one, or to start later.
        DPO and reward-model runs (method "dpo", "reward") train on `preferences` (votes or
        prompt/chosen/rejected rows), by default on this workspace's votes; GRPO runs on the
        prompts of the train split. Raises ConfigError or TrainingDataError.
        """
        self.workspace.require_writable()
        run = self._write_run(self.plan(config), preferences)
        self._add_run(run, watch=False)  # nothing runs until it is started
        return run

    def train(
        self,
        config: TrainConfig | None = None,
        *,
        resume: Run | str | None = None,
        preferences: Iterable[Any] | None = None,
        start: bool = True,
    ) -> Run:
        """Plan `config`, write the run folder and start the run in its own process; returns at once.

        The open settings are decided by `plan` (see `session.plan(config).reasons`), as for
        the launcher's Start button. While another run holds the device (the CPU, or the GPUs
        it asks for) it waits in the queue, status "queued" (see `queue`), and starts by itself
        in turn. `start=False` is `prepare`; `resume=run` is `resume`.

        >>> run = s.train(wb.TrainConfig(max_steps=2, keep_set="off"))
        >>> run.wait().state
        'finished'
        >>> run.name in s.contestants  # its adapter answers in generate and compare
        True
        """
        if resume is not None:
            return self.resume(resume, config, start=start)
        if not start:
            return self.prepare(config, preferences)
        from ..train.distributed import check_devices

        self.workspace.require_writable()
        planned = self.plan(config)
        check_devices(planned)
        self._check_disk(planned)
        return self._enqueue(self._write_run(planned, preferences))

    def resume(
        self, run: Run | str, config: TrainConfig | None = None, *, start: bool = True
    ) -> Run:
        """Continue a stopped, failed or died run from its last checkpoint; returns at once.

        Its steps and loss curve continue. `config` may only change the step budget (max_steps,
        epochs): fields left at their defaults are not asked for, so a launcher form left as it
        was resumes any run. Raises ConfigError when the run is active or has no checkpoint.
        """
        from ..train import launch
        from ..train.distributed import check_devices

        self.workspace.require_writable()
        run = run if isinstance(run, Run) else self.run(run)
        new = launch.check_resume(run, config)
        check_devices(new)
        launch.update_config(run, new)
        if start:
            return self._enqueue(run)
        self._add_run(run, watch=False)
        return run

    def _check_disk(self, planned: TrainConfig) -> None:
        """Refuse a run whose files will not fit on the workspace's disk (DiskFullError)."""
        import errno

        from ..persist import DiskFullError

        estimate = self.estimate(planned)
        if not estimate.disk_fits:
            raise DiskFullError(errno.ENOSPC, f"Not started: {estimate.warning}")

    @property
    def queue(self) -> list[QueuedRun]:
        """Runs waiting for a device (list of QueuedRun: name, position, waits_for), next first.

        The queue is this workspace's and this machine's: it survives a kernel restart, and
        the kernel holding the workspace starts each run in turn. Stop a waiting run to cancel it.
        """
        return self._run_queue().waiting({r.name: r for r in self.runs})

    def runs_on_answer_device(self) -> list[Run]:
        """Runs training now on the device answers (generate, compare) use: while they train,
        answers are slower and memory is tight."""
        from ..models import best_device
        from ..train.distributed import machine_devices
        from ..train.queue import runs_on

        device = "cuda:0" if best_device() == "cuda" else "cpu"
        return runs_on(device, self.runs, machine_devices())

    def _run_queue(self) -> RunQueue:
        from ..train.queue import RunQueue

        return RunQueue(self.workspace.run_queue_file, self.workspace.runs_dir)

    def _enqueue(self, run: Run) -> Run:
        """Queue `run`, start it at once when its device is free, and watch it."""
        self._run_queue().add(run)
        self._add_run(run)
        self._start_queued()
        return run

    def _start_queued(self) -> None:
        """Start the waiting runs whose turn it is; only the session holding the workspace does."""
        if self.read_only:
            return
        from ..train import launch

        runs = {r.name: r for r in self.runs}
        self._run_queue().dispatch(runs, lambda run: launch.start_runner(run, self._warm))
        if self._warm is not None and not self._warm.alive:
            self._warm = None  # it took a run (or died): the next one starts when asked

    def warm_runner(self) -> bool:
        """Start a runner process ahead of the next run, its training libraries imported, so
        that a run reaches its first step about 6 s sooner on a 2-core CPU (train/warm.py).

        The launcher asks for one when it is shown. None starts while a run of this session is
        active (the imports would slow it), read-only, or with WORKBENCH_WARM_RUNNER=0 in the
        environment; it holds ~0.5 GB until used or `close()`. It sees the device the queue
        would give the next run; a run given another starts cold. Returns whether one waits now.
        """
        import os

        from ..train.launch import runner_env
        from ..train.warm import WarmRunner

        if self._warm is not None and self._warm.alive:
            return True
        if self.read_only or os.environ.get("WORKBENCH_WARM_RUNNER", "1") == "0":
            return False
        if any(run.status.active for run in self._runs.values()):
            return False
        # Started for the GPU the next run will get: it cannot be told another one later,
        # since importing peft (bitsandbytes) initialises CUDA with the devices it sees.
        devices = self._run_queue().next_devices({r.name: r for r in self.runs})
        self._warm = WarmRunner(runner_env(devices))
        return True

    def _write_run(self, planned: TrainConfig, preferences: Iterable[Any] | None) -> Run:
        from ..train import launch

        if planned.method in PREFERENCE_METHODS:
            planned, examples = self._pair_examples(planned, preferences)
        elif planned.method == "grpo":
            planned, examples = self._grpo_examples(planned)
        else:
            examples = self._split_examples()
        train_rows, eval_rows = examples
        keep, replayed = self._keep_for_run(planned, train_rows)
        return launch.prepare_run(
            self.workspace.runs_dir,
            planned,
            self._model,
            self.template,
            [*train_rows, *replayed],
            eval_rows,
            taken_names=self._attached_runs(),
            keep=keep,
        )

    def _add_run(self, run: Run, watch: bool = True) -> None:
        """Know `run` under its name, tell the observers of "runs", make it the selected run
        (the one just made is the one a person looks at next), and watch it while it runs."""
        self._runs[run.name] = run
        self._notify("runs", None, run)
        self.select_run(run.name)
        if watch:
            self._watch_runs()

    def _pair_examples(
        self, config: TrainConfig, preferences: Iterable[Any] | None
    ) -> tuple[TrainConfig, tuple[list[dict], list[dict]]]:
        from ..preferences.pairs import as_pairs, check_pairs, split_pairs

        records = self.preferences if preferences is None else preferences
        pairs = as_pairs(records, include_ties=config.include_ties)
        method = "A reward model" if config.method == "reward" else "DPO"
        check_pairs(pairs, self.template, config.max_length, config.max_prompt_length, method)
        return self._with_base_adapter(config), split_pairs(pairs.rows, seed=config.seed)

    def _grpo_examples(self, config: TrainConfig) -> tuple[TrainConfig, tuple[list[dict], list]]:
        """GRPO's prompts (train split), checked; reward models and base adapter as folders."""
        from ..train.grpo_prompts import grpo_prompts

        ds = self._require_dataset()
        rows = {i: ds[i] for i in self.split_rows[0]}
        prompts = grpo_prompts(rows, config, self.template)
        config = self._with_base_adapter(config)
        specs = [self._reward_spec(spec) for spec in config.rewards]
        return config.replace(rewards=specs), (prompts, [])

    def _with_base_adapter(self, config: TrainConfig) -> TrainConfig:
        """`config` with base_adapter as the adapter folder of the run it names."""
        if not config.base_adapter or Path(config.base_adapter).is_dir():
            return config
        adapter = self.run(config.base_adapter).adapter_path
        if adapter is None:
            raise ValueError(
                f"{config.base_adapter} has no adapter yet; {config.method} starts from an adapter."
            )
        if adapter in self.reward_models.values():
            raise ValueError(
                f"{config.base_adapter} is a reward model; start from an adapter that writes answers."
            )
        return config.replace(base_adapter=str(adapter))

    def _reward_spec(self, spec: str) -> str:
        """A reward_model=RUN spec as the reward model's folder, checked against this base."""
        from ..train.reward_model import RewardModelError, check_reward_model
        from ..train.rewards import parse_reward

        parsed = parse_reward(spec)
        if parsed.kind != "reward_model":
            return spec
        folder, known = Path(parsed.value), self.reward_models
        if not folder.is_dir():
            if parsed.value not in known:
                raise RewardModelError(
                    f"{spec}: no reward model of that run name or folder; reward models: "
                    f"{', '.join(known) or 'none yet'}."
                )
            folder = known[parsed.value]
        check_reward_model(folder, self._model)
        return f"reward_model={folder.resolve()}"

    def plan(self, config: TrainConfig | None = None) -> TrainConfig:
        """`config` with every open choice made for this model and hardware, with reasons.

        The one place a run's settings are decided (workbench.train.plan), for code and the
        launcher alike; train, prepare and estimate all go through it.

        >>> planned = s.plan(wb.TrainConfig(max_steps=100))
        >>> planned.max_steps, planned.method in ("lora", "qlora"), "batch_size" in planned.reasons
        (100, True, True)
        """
        from ..train.estimate import detect_device
        from ..train.plan import plan

        device, name, _ = detect_device()
        return plan(
            config or TrainConfig(),
            n_params=self.model_shape.n_params,
            device=device,
            device_name=name,
            session_max_length=self._max_length,
        )

    def estimate(self, config: TrainConfig | None = None):
        """Memory (GB by part) and seconds per step of `config` here, with a warning if it won't fit."""
        from ..resources import free_disk_gb
        from ..train.estimate import detect_device, estimate

        device, name, memory = detect_device()
        measured = None  # the speed of the last run of this model, when there is one
        for run in reversed(self.runs):  # an ended run: a live one's speed is shared with answers
            try:
                if run.status.active or run.info.model != self._model:
                    continue
            except (OSError, ValueError, TypeError):
                continue  # a run folder that cannot be read says so in the runs table
            measured = run.status.progress.tokens_per_s
            break
        mean_tokens = 256.0
        if self._dataset is not None and len(self._dataset):
            sample = [self._dataset[i] for i in range(min(64, len(self._dataset)))]
            mean_tokens = sum(
                len(t.input_ids) for t in tokenize_with_labels(self.template, sample)
            ) / len(sample)
        rows = len(self._dataset) if self._dataset is not None else 0
        free = free_disk_gb(self.workspace.runs_dir)
        return estimate(
            self.model_shape,
            self.plan(config),
            device,
            name,
            memory,
            measured,
            mean_tokens,
            rows,
            free,
        )

    @property
    def model_shape(self):
        """Parameter count and layer shapes of the base model (read from its config, cached)."""
        from ..train.estimate import model_shape

        if self._shape is None or self._shape[0] != self._model:
            self._shape = (self._model, model_shape(self._model))
        return self._shape[1]

    def _split_examples(self) -> tuple[list[dict], list[dict]]:
        ds = self._require_dataset()
        train_rows, eval_rows = self.split_rows
        return [ds[i] for i in train_rows], [ds[i] for i in eval_rows]
