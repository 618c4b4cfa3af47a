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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..persist import atomic_write_json, read_json
from .config import TrainConfig

ACTIVE = ("queued", "running")
HEARTBEAT_SECONDS = 5.0
DEAD_AFTER_SECONDS = 60.0


@dataclass
class RunStatus:
    """Where a run stands: queued, running, finished, stopped, failed or died."""

    state: str
    step: int = 0
    max_steps: int = 0
    message: str = ""
    traceback_tail: str = ""
    pid: int | None = None
    host: str = ""
    heartbeat: float = 0.0
    started: float = 0.0
    ended: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStatus:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class RunFolder:
    """The files of a run folder, by name."""

    def __init__(self, folder: str | os.PathLike):
        self.root = Path(folder)

    config_file = property(lambda self: self.root / "config.json")
    status_file = property(lambda self: self.root / "status.json")
    metrics_file = property(lambda self: self.root / "metrics.jsonl")
    log_file = property(lambda self: self.root / "runner.log")
    stop_file = property(lambda self: self.root / "stop")
    data_dir = property(lambda self: self.root / "data")
    checkpoints_dir = property(lambda self: self.root / "checkpoints")
    adapter_dir = property(lambda self: self.root / "adapter")

    def write_status(self, status: RunStatus) -> None:
        atomic_write_json(self.status_file, status.__dict__)

    def read_status(self) -> RunStatus:
        if not self.status_file.exists():
            return RunStatus("queued")
        return RunStatus.from_json(read_json(self.status_file))

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        found = [
            p
            for p in self.checkpoints_dir.glob("checkpoint-*")
            if (p / "trainer_state.json").exists()
        ]
        return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


class Run:
    """A training run: its status, metrics, adapter, and stop/wait controls."""

    def __init__(self, folder: str | os.PathLike, process: subprocess.Popen | None = None):
        self.folder = RunFolder(folder)
        if not self.folder.config_file.exists():
            raise FileNotFoundError(f"{self.folder.root} is not a run folder (no config.json).")
        self._process = process
        self._metrics: list[dict] = []
        self._metrics_offset = 0

    @property
    def name(self) -> str:
        return self.folder.root.name

    @property
    def path(self) -> Path:
        return self.folder.root

    @property
    def info(self) -> dict[str, Any]:
        """config.json: the resolved TrainConfig, the model, the data summary."""
        return read_json(self.folder.config_file)

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_json(self.info["train"])

    def __repr__(self) -> str:
        s = self.status
        return f"Run({self.name!r}, {s.state}, step {s.step}/{s.max_steps})"

    @property
    def status(self) -> RunStatus:
        """The runner's last word, or "died" when it stopped without one."""
        status = self.folder.read_status()
        if status.active and not self._runner_alive(status):
            status.state = "died"
            status.message = (
                "The training process ended without a word (killed, or out of system memory). "
                "Its log tail is below; resume from the last checkpoint with "
                "session.train(config, resume=run)."
            )
            status.traceback_tail = self.log_tail()
        return status

    def _runner_alive(self, status: RunStatus) -> bool:
        if self._process is not None and self._process.pid == status.pid:
            return self._process.poll() is None  # our own child: poll() also reaps it
        if status.pid and status.host == socket.gethostname():
            return _pid_alive(status.pid)
        if status.state == "queued":
            return True
        return time.time() - status.heartbeat < DEAD_AFTER_SECONDS

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
        fresh = []
        for line in complete.splitlines():
            try:
                fresh.append(json.loads(line))
            except ValueError:
                continue  # a torn line from a killed runner carries nothing we can use
        self._metrics.extend(fresh)
        return fresh

    @property
    def adapter_path(self) -> Path | None:
        """The trained adapter folder, once the run has written one."""
        adapter = self.folder.adapter_dir
        return adapter if (adapter / "adapter_config.json").exists() else None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the runner printed."""
        try:
            text = self.folder.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float | None = 120) -> RunStatus:
        """Ask the runner to save a checkpoint and stop after the current step; wait for it."""
        status = self.folder.read_status()
        if not status.active:
            return self.status
        self.folder.stop_file.touch()
        if status.pid and status.host == socket.gethostname() and _pid_alive(status.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(status.pid, signal.SIGTERM)
        return self.wait(timeout) if timeout else self.status

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> RunStatus:
        """Block until the run ends (or `timeout` seconds pass); returns the status."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            status = self.status
            if not status.active or (deadline is not None and time.time() > deadline):
                if self._process is not None and not status.active:
                    self._process.wait()  # reap our child, if this handle started it
                return status
            time.sleep(poll)


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
