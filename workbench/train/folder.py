"""A run folder's files by name, and status.json: where a run stands.

The runner process writes the folder; Run handles, the launcher and job exports read it. This
module is the only one that knows the folder's file names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..persist import atomic_write_json, read_json

ACTIVE = ("queued", "running")
HEARTBEAT_SECONDS = 5.0


@dataclass
class RunStatus:
    """Where a run stands: queued, running, finished, stopped, failed or died."""

    state: str
    step: int = 0
    max_steps: int = 0
    message: str = ""
    traceback_tail: str = ""
    pid: int | None = None  # the process started for the run: the runner, or its launcher
    worker_pid: int | None = None  # the main training process (the same as pid when alone)
    world_size: int = 1  # processes training together
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

    def readable_status(self) -> RunStatus:
        """The status, or a failed one saying why status.json cannot be read (never raises)."""
        try:
            return self.read_status()
        except (OSError, ValueError, TypeError) as e:
            return RunStatus(
                "failed",
                message=f"{self.status_file} cannot be read ({e}); the metrics recorded so far "
                "still show. Copy the run folder again if it came from another machine.",
            )

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        found = [
            p
            for p in self.checkpoints_dir.glob("checkpoint-*")
            if (p / "trainer_state.json").exists()
        ]
        return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)
