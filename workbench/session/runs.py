"""Session actions on the runs of a workspace: list, attach, watch, look one up, compare."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..train import Run


class RunsActions:
    """The runs half of Session (a mixin over the Session's state)."""

    @property
    def runs(self) -> list[Run]:
        """Every run in this workspace, oldest first, then attached runs; live ones re-attached."""
        found = []
        folder = self.workspace.runs_dir
        if folder.exists():
            for path in folder.glob("run-*"):
                if path.name not in self._runs and (path / "config.json").exists():
                    found.append(self._runs.setdefault(path.name, Run(path)))
        attached = self._attached_runs()
        for name, path in attached.items():
            if name not in self._runs and (Path(path) / "config.json").exists():
                found.append(self._runs.setdefault(name, Run(path, name=name)))
        if any(run.status.active for run in found):  # e.g. started by an earlier kernel
            self._watch_runs()
        order = {name: i for i, name in enumerate(attached)}
        return sorted(self._runs.values(), key=lambda r: _run_order(r.name, order))

    def attach_run(self, folder: str | os.PathLike, *, name: str | None = None) -> Run:
        """Follow a run written elsewhere: a job folder on shared storage or copied back.

        The folder stays where it is; the run joins `runs` under its folder's name (or `name`),
        with its live plot and adapter like any other run, also after a kernel restart.
        A folder from an incompatible version is refused, naming the file and both versions.
        """
        from ..persist import atomic_write_json
        from ..train.jobs import check_folder

        self.workspace.require_writable()
        path = Path(folder).expanduser().resolve()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a run or job folder (no config.json); attach the folder that "
                "holds config.json and metrics.jsonl."
            )
        check_folder(path)
        if path.parent == self.workspace.runs_dir.resolve():
            return self.run(path.name)  # one of this workspace's own runs
        name = name or path.name
        known = {r.name: r for r in self.runs}.get(name)
        if known is not None and Path(known.path).resolve() != path:
            raise ValueError(
                f"A run named {name!r} is already in this session; attach with name='...'."
            )
        attached = {**self._attached_runs(), name: str(path)}
        atomic_write_json(self.workspace.attached_runs_file, attached)
        self._attached = attached
        run = Run(path, name=name)
        self._add_run(run)
        return run

    def _attached_runs(self) -> dict[str, str]:
        """Attached run folders by name, as saved in the workspace (read once per session)."""
        from ..persist import read_json

        if self._attached is None:
            path = self.workspace.attached_runs_file
            self._attached = dict(read_json(path)) if path.exists() else {}
        return self._attached

    def check_runs(self) -> list[Run]:
        """Runs whose state or step changed since the last check; observers of "runs" hear of each.

        Runs change in their own processes; the session's run watcher calls this about twice a
        second while a run is active, so views only observe "runs" and never poll.
        """
        return self._check_runs()[0]

    def _check_runs(self) -> tuple[list[Run], bool]:
        """The changed runs (announced), and whether any run is still active."""
        states = self._run_states
        changed, active = [], False
        for run in self.runs:
            status = run.status
            active = active or status.active
            if states.get(run.name) != (status.state, status.step):
                states[run.name] = (status.state, status.step)
                changed.append(run)
        for run in changed:
            self._notify("runs", None, run)
        return changed, active

    def _poll_runs(self) -> bool:
        """One look by the run watcher: start queued runs whose device freed, announce changes;
        True while a run is active (waiting runs count)."""
        self._start_queued()
        return self._check_runs()[1]

    def _watch_runs(self) -> None:
        """Have the session's one run watcher poll while any run is active."""
        from .watcher import RunWatcher

        watcher = self._watcher
        if watcher is None:
            watcher = self._watcher = RunWatcher(self)
        watcher.ensure()

    def compare_runs(self, names: list[str]):
        """Runs side by side (train.insight.RunComparison): only the settings that differ, and
        per run its final losses, best eval step, probe score, tokens/s and wall time."""
        from ..train.insight import compare_runs

        return compare_runs([self.run(name) for name in names])

    def run(self, name: str) -> Run:
        """The run called `name` (e.g. "run-3")."""
        for run in self.runs:
            if run.name == name:
                return run
        known = ", ".join(r.name for r in self.runs) or "none yet"
        raise KeyError(f"No run named {name!r} in this workspace; runs: {known}.")

    @property
    def selected_run(self) -> Run | None:
        """The run the views follow: the one selected in the Train tab (or by `select_run`; a
        run just prepared, started, resumed or attached becomes it), else the newest. The Export
        panel, DPO's starting adapter and the comparator's second contestant offer it first.
        None before the first run."""
        runs = self.runs
        chosen = [r for r in runs if r.name == self._selected_run]
        return (chosen or runs[-1:] or [None])[0]

    def select_run(self, name: str) -> None:
        """Make run `name` the one every view follows (kept in session.json across restarts);
        raises KeyError for an unknown name."""
        run = self.run(name)
        if run.name == self._selected_run:
            return
        old, self._selected_run = self._selected_run, run.name
        if not self.read_only:
            self._save()
        self._notify("selected_run", old, run.name)

    @property
    def adapters(self) -> dict[str, Path]:
        """Every trained adapter that writes answers (the contestants), by run name; reward
        models are in `reward_models`."""
        from ..train.reward_model import is_reward_model

        found = {r.name: r.adapter_path for r in self.runs if r.adapter_path is not None}
        return {name: path for name, path in found.items() if not is_reward_model(path)}

    @property
    def reward_models(self) -> dict[str, Path]:
        """Every trained reward model (method "reward") of this workspace, by run name."""
        from ..train.reward_model import is_reward_model

        found = {r.name: r.adapter_path for r in self.runs}
        return {name: path for name, path in found.items() if is_reward_model(path)}


def _run_order(name: str, attached: dict[str, int]) -> tuple[int, int, str]:
    """This workspace's run-N by number, then attached runs in the order they were attached."""
    if name not in attached and (m := re.fullmatch(r"run-(\d+)", name)):
        return (0, int(m.group(1)), name)
    return (1, attached.get(name, 0), name)
