"""Run: a handle on one training run's folder, from the kernel that launched it or any later one.

The runner process owns the folder's writes; a Run only reads it (status, metrics, log) and asks
the runner to stop. Because everything goes through the folder, a Run re-attaches after a kernel
restart or to a folder copied from another machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

from ..data.excerpt import LOG_CHARS, tail
from ..persist import whole_folder
from ..resources import oom_kill_count
from .config import TrainConfig
from .faults import death_message
from .folder import RunFolder, RunInfo, RunProgress, RunStatus

DEAD_AFTER_SECONDS = 60.0
REAP_SECONDS = 60.0


class NothingToStopWarning(UserWarning):
    """Stop was asked of a run that had already ended; nothing changed."""


class Run:
    """A training run: its status, metrics, adapter, and stop/wait controls."""

    def __init__(
        self,
        folder: str | os.PathLike,
        process: subprocess.Popen | None = None,
        name: str | None = None,
    ):
        self.folder = RunFolder(folder)
        self._name = name  # an attached run may be known under another name than its folder's
        if not self.folder.config_file.exists():
            raise FileNotFoundError(f"{self.folder.root} is not a run folder (no config.json).")
        self._process = process
        self._metrics: list[dict] = []
        self._metrics_offset = 0
        self.metrics_problem = ""  # why some of metrics.jsonl could not be read, once it is known

    @property
    def name(self) -> str:
        return self._name or self.folder.root.name

    @property
    def path(self) -> Path:
        return self.folder.root

    @property
    def info(self) -> RunInfo:
        """config.json: the planned TrainConfig, the model, the data summary."""
        return self.folder.read_info()

    @property
    def config(self) -> TrainConfig:
        """The run's settings as planned (every default decided), from config.json."""
        return self.info.train

    def __repr__(self) -> str:
        s = self.status
        return f"Run({self.name!r}, {s.state}, step {s.step}/{s.max_steps})"

    def _repr_html_(self) -> str:
        from .run_view import run_html

        return run_html(self)

    @property
    def status(self) -> RunStatus:
        """The runner's last word, or "died" when it stopped without one."""
        status = self.folder.readable_status()
        if status.active and not self._runner_alive(status):
            status.state = "died"
            exit_code = self._process.returncode if self._process is not None else None
            status.message = death_message(
                self.log_tail(), exit_code, (status.oom_kills, oom_kill_count()), self.path
            )
            if status.host and status.host != socket.gethostname():
                status.message = (
                    f"No heartbeat from {status.host} for over {DEAD_AFTER_SECONDS:.0f} s: the "
                    "run ended there without a word, or this copy of its folder is out of date."
                )
            status.traceback_tail = self.log_tail()
        return status

    def _runner_alive(self, status: RunStatus) -> bool:
        pids = {p for p in (status.pid, status.worker_pid) if p}
        if pids and status.host == socket.gethostname():
            return any(self._pid_alive(pid) for pid in pids)
        if status.state == "queued" and not status.devices:
            return True  # waiting for its turn: no process yet
        return time.time() - status.heartbeat < DEAD_AFTER_SECONDS  # started: its heartbeat

    @property
    def process_alive(self) -> bool:
        """Whether a process of this run is still alive here (after its last status, a runner
        may take a few seconds to exit); our own child is reaped when it has ended."""
        status = self.folder.readable_status()
        if status.host != socket.gethostname():
            return False
        return any(self._pid_alive(p) for p in {status.pid, status.worker_pid} if p)

    def _pid_alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # our own child: poll() also reaps it
        return _pid_alive(pid)

    @property
    def metrics(self) -> list[dict]:
        """Every metrics record so far (read incrementally: only new lines are parsed)."""
        self.new_metrics()
        return list(self._metrics)

    def new_metrics(self) -> list[dict]:
        """Metrics records written since the last call; what a live plot appends."""
        import json

        path = self.folder.metrics_file
        if not path.exists():
            return []
        with open(path, "rb") as f:
            f.seek(self._metrics_offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
        self._metrics_offset += len(complete)
        fresh, broken = [], 0
        for line in complete.splitlines():
            try:
                fresh.append(json.loads(line))
            except ValueError:
                broken += 1  # a torn line from a killed runner carries nothing we can use
        self._metrics.extend(fresh)
        partial = len(chunk) > len(complete)
        if (broken or partial) and not self.metrics_problem:
            self._note_metrics_problem(broken, partial)
        return fresh

    def _note_metrics_problem(self, broken: int, partial: bool) -> None:
        if partial and not broken and self.status.active:
            return  # the runner is writing that line right now
        import warnings

        from ..persist import TornLogWarning

        what = f"{broken} unreadable line(s)" if broken else "a cut-off last line"
        self.metrics_problem = (
            f"{self.folder.metrics_file} has {what} (written by a killed runner, or copied "
            f"mid-write); the {len(self._metrics)} complete records so far are shown."
        )
        warnings.warn(self.metrics_problem, TornLogWarning, stacklevel=3)

    @property
    def adapter_path(self) -> Path | None:
        """The trained adapter folder, once the run has written one (the previous one while a
        crash interrupted swapping in the next: persist.publish_folder)."""
        adapter = whole_folder(self.folder.adapter_dir)
        return adapter if adapter and (adapter / "adapter_config.json").exists() else None

    def probe_history(self) -> list[dict]:
        """The probes' answers by evaluation, newest first, each marked when it changed since
        the evaluation before (train.probes.probe_history; [] for a run without probes)."""
        from .probes import probe_history

        return probe_history(self.folder)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the runner printed, at most LOG_CHARS characters: only the end of
        the log is read, however long it grew (progress bars write very long lines)."""
        try:
            with open(self.folder.log_file, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4 * LOG_CHARS))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return tail("\n".join(text.splitlines()[-lines:]), LOG_CHARS)

    def stop(self, timeout: float | None = 120) -> RunStatus:
        """Ask the runner to save a checkpoint and stop after the current step; wait for it.

        A run waiting in the queue is cancelled instead (status "cancelled": it never starts).
        A run that already ended is left unchanged, with a NothingToStopWarning saying so.
        """
        status = self.folder.readable_status()
        if status.waiting and self.cancel():
            return self.status
        if not status.active:
            message = nothing_to_stop(self.name, status.state)
            warnings.warn(message, NothingToStopWarning, stacklevel=2)
            return self.status
        self.folder.stop_file.touch()  # every process of the run watches it
        alone = not self.config.distributed  # a launcher would cut saving short after SIGTERM
        if alone and status.pid and status.host == socket.gethostname() and _pid_alive(status.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(status.pid, signal.SIGTERM)
        return self.wait(timeout) if timeout else self.status

    def cancel(self) -> bool:
        """Take a run waiting in the queue out of it: status "cancelled", it never starts.

        False (and nothing changed) when it is not waiting: it started or ended meanwhile.
        The folder's lock makes this and a queue starting the run exclude each other.
        """
        with self.folder.status_lock():
            status = self.folder.readable_status()
            if not status.waiting:
                return False
            self.folder.stop_file.touch()  # a copy started elsewhere (a job) stops at once
            status.state, status.ended, status.progress = "cancelled", time.time(), RunProgress()
            status.message = (
                "Cancelled while it waited in the queue; it never started. Start it later "
                "with session.resume(run)."
            )
            self.folder.write_status(status)
        return True

    def export_job(self, path: str | os.PathLike, *, model: str | None = None) -> Path:
        """Write a self-contained job folder that trains this run on another machine.

        It holds the config, data snapshot and template, launch.sh (accelerate) and an example
        slurm.sbatch; `model` names the base model there when this one is a local folder.
        Follow it afterwards with Session.attach_run(path). Returns the job folder.
        """
        from .jobs import export_job

        return export_job(self, Path(path), model=model)

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> RunStatus:
        """Block until the run ends (or `timeout` seconds pass); returns the status."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            status = self.status
            if not status.active or (deadline is not None and time.time() > deadline):
                if self._process is not None and not status.active:
                    # reap our child (a launcher ends once every process has)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._process.wait(timeout=REAP_SECONDS)
                return status
            time.sleep(poll)


def nothing_to_stop(name: str, state: str) -> str:
    """The sentence for a stop asked of a run that already ended."""
    return f"{name} already {state}; there is nothing to stop, and nothing was changed."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
