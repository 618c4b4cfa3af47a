"""A run folder's files by name, config.json (RunInfo) and status.json (RunStatus).

The runner process writes the folder; Run handles, the launcher and job exports read it. This
module is the only one that knows the folder's file names.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import ModelSpec
from ..persist import atomic_write_json, fields_from_json, read_json
from .config import TrainConfig

ACTIVE = ("queued", "running")
HEARTBEAT_SECONDS = 5.0


@dataclass
class RunProgress:
    """What a run reports besides its state, each None until known: its place in the queue
    while it waits, its speed, ETA and peak memory (GB, 1024**3 bytes) while it trains, and the
    step its adapter's weights come from when it ends."""

    queued_at: float | None = None  # when it joined the run queue (time.time())
    position: int | None = None  # its place in the queue, 1 next
    waits_for: str | None = None  # what it waits for, in words ("run-2", "cuda:1")
    eta_s: float | None = None
    tokens_per_s: float | None = None
    epoch: float | None = None
    peak_rss_gb: float | None = None  # the resident set of the training process
    peak_gpu_allocated_gb: float | None = None
    peak_gpu_reserved_gb: float | None = None
    peak_memory_gb: float | None = None  # what decides whether a run fits (reserved on a GPU)
    adapter_step: int | None = None
    best_step: int | None = None

    def update(self, values: dict[str, Any]) -> None:
        """Set the fields named in `values` (a metrics record's, peak_memory()'s); TypeError
        for a name this class does not have."""
        for name, value in values.items():
            if name not in self.__dataclass_fields__:
                raise TypeError(f"RunProgress has no field {name!r}")
            setattr(self, name, value)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "status.json") -> RunProgress:
        """Read the `progress` of status.json; an unknown key is refused naming the file."""
        return cls(**fields_from_json(cls, data, source=f"{source} (progress)"))


@dataclass
class RunStatus:
    """Where a run stands: prepared (written, never started), queued, running, finished,
    stopped, failed, died, or cancelled (stopped while it waited in the queue, never started).
    Only queued and running are active. A queued run with no devices and no process yet waits
    in the workspace's run queue (workbench.train.queue); `progress` says its place and why."""

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
    devices: list[str] = field(default_factory=list)  # held once started: "cpu", "cuda:1"
    oom_kills: int | None = None  # the system's out-of-memory kills at the start (resources)
    progress: RunProgress = field(default_factory=RunProgress)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def waiting(self) -> bool:
        """Queued and not yet given a device: it waits for its turn in the run queue."""
        return self.state == "queued" and not self.devices and self.pid is None

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "status.json") -> RunStatus:
        """Read status.json; an unknown key is refused naming the file (persist.fields_from_json).
        A file written before progress was typed holds it as `extra`."""
        data = dict(data)
        if "extra" in data and "progress" not in data:
            data["progress"] = data.pop("extra")
        fields = fields_from_json(cls, data, source=source)
        fields["progress"] = RunProgress.from_json(fields.get("progress") or {}, source=source)
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        """status.json's content."""
        return dataclasses.asdict(self)


@dataclass
class RunInfo:
    """config.json: what a run is. Written once by the launcher (the step budget may change on
    resume), read by the runner, Run handles, job exports and the session's estimate.

    `data` counts each split's snapshot: {"train": {"rows", "tokens", "trained_tokens", ...}}.
    """

    name: str
    train: TrainConfig
    model: ModelSpec
    created: float = 0.0
    data: dict[str, dict[str, int]] = field(default_factory=dict)
    exported_from: str | None = None  # the run a job folder was exported from

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created": self.created,
            "train": self.train.to_json(),
            "model": self.model.to_json(),
            "data": self.data,
            "exported_from": self.exported_from,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "config.json") -> RunInfo:
        """Read config.json; unknown keys and bad TrainConfig values raise, naming `source`."""
        values = fields_from_json(cls, data, source=source)
        missing = [key for key in ("name", "train", "model") if key not in values]
        if missing:
            raise ValueError(
                f"{source}: missing {', '.join(missing)}; it is not a run's config.json (or was "
                "cut short). Copy the run folder again, or remove it."
            )
        values["train"] = TrainConfig.from_json(values["train"], source=f"{source}: train")
        values["model"] = ModelSpec.from_json(values["model"])
        return cls(**values)


class RunFolder:
    """The files of a run folder, by name."""

    def __init__(self, folder: str | os.PathLike):
        self.root = Path(folder)

    config_file = property(lambda self: self.root / "config.json")
    status_file = property(lambda self: self.root / "status.json")
    metrics_file = property(lambda self: self.root / "metrics.jsonl")
    log_file = property(lambda self: self.root / "runner.log")
    stop_file = property(lambda self: self.root / "stop")
    lock_file = property(lambda self: self.root / ".status.lock")  # queue moves: start, cancel
    template_file = property(lambda self: self.root / "template.json")
    data_dir = property(lambda self: self.root / "data")
    checkpoints_dir = property(lambda self: self.root / "checkpoints")
    adapter_dir = property(lambda self: self.root / "adapter")
    probes_file = property(lambda self: self.root / "probes.json")  # train.probes
    samples_file = property(lambda self: self.root / "samples.jsonl")  # probe answers by step
    keep_file = property(lambda self: self.root / "keep.json")  # keep.record: drift measurement

    def read_info(self) -> RunInfo:
        """config.json as a RunInfo (ValueError naming the file when it does not fit)."""
        return RunInfo.from_json(read_json(self.config_file), source=str(self.config_file))

    def write_info(self, info: RunInfo) -> None:
        atomic_write_json(self.config_file, info.to_json())

    def write_status(self, status: RunStatus) -> None:
        atomic_write_json(self.status_file, status.to_json())

    def status_lock(self):
        """A file lock held while a queued run is started or cancelled, so exactly one wins."""
        from filelock import FileLock

        return FileLock(self.lock_file)

    def read_status(self) -> RunStatus:
        if not self.status_file.exists():
            return RunStatus("queued")
        return RunStatus.from_json(read_json(self.status_file), source=str(self.status_file))

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

    def checkpoints(self) -> list[Path]:
        """Every checkpoint folder, complete or not, oldest step first."""
        found = [p for p in self.checkpoints_dir.glob("checkpoint-*") if p.name[11:].isdigit()]
        return sorted(found, key=lambda p: int(p.name[11:]))

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        return next((p for p in reversed(self.checkpoints()) if checkpoint_complete(p)), None)

    def remove_checkpoints(self) -> int:
        """Delete every checkpoint (a finished run's adapter/ stays); returns the bytes freed."""
        from ..resources import folder_bytes

        freed = 0
        for path in self.checkpoints():
            freed += folder_bytes(path)
            shutil.rmtree(path, ignore_errors=True)
        return freed

    def remove_incomplete_checkpoints(self) -> list[Path]:
        """Delete checkpoints whose writing never completed (a full disk, a kill); returns them."""
        broken = [p for p in self.checkpoints() if not checkpoint_complete(p)]
        for path in broken:
            shutil.rmtree(path, ignore_errors=True)
        return broken


def checkpoint_complete(path: Path) -> bool:
    """Whether the Trainer finished writing the checkpoint at `path`: its trainer_state.json,
    written last, is there and whole (a write cut short by a full disk leaves it torn)."""
    try:
        read_json(path / "trainer_state.json")
    except (OSError, ValueError):
        return False
    return True
