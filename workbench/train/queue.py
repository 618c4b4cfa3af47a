"""The run queue: one run per device at a time, started in the order the runs were started.

A run started while another holds its device waits: status "queued" with its place and what it
waits for (status.progress.position, .waits_for), and starts by itself once the device frees.
The queue is a file in the workspace (Workspace.run_queue_file, replaced atomically) listing the
waiting runs in start order; each run folder's status.json stays the truth. A run starts only
after its folder moved from waiting to holding devices under the folder's lock, so it never
starts twice and a cancel (Run.stop while waiting) and a start exclude each other; a queue file
left by a kernel that ended mid-change is repaired from the folders, with a warning naming it.
Only the session holding the workspace lock starts runs. The queue is for this one machine:
cluster jobs (Run.export_job) wait in their own scheduler.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ..persist import atomic_write_json, fields_from_json, read_json
from .config import TrainConfig
from .distributed import machine_devices
from .folder import RunProgress
from .run import Run

log = logging.getLogger(__name__)

QUEUE_FORMAT = 1
EXIT_GRACE_SECONDS = 30.0  # an ended runner still exiting holds its device at most this long
_LOCKS: dict[Path, threading.RLock] = {}  # one per queue file: the watcher and the user's thread
_LOCKS_LOCK = threading.Lock()


class QueueRepairedWarning(UserWarning):
    """The queue file did not match the run folders and was rebuilt from them."""


@dataclass
class QueueEntry:
    """One waiting run in the queue file: its folder name, when it was queued, what it needs."""

    run: str
    queued_at: float
    needs: str  # "the CPU", "a GPU", "cuda:2", "2 GPUs"


@dataclass(frozen=True)
class QueuedRun:
    """A waiting run as people see it: its place (1 = next to start) and what it waits for."""

    name: str
    position: int
    waits_for: str


def needs(config: TrainConfig, devices: list[str]) -> str:
    """What a run asks of this machine, in words."""
    if devices == ["cpu"]:
        return "the CPU"
    if config.gpu is not None:
        return f"cuda:{config.gpu}"
    n = config.num_processes
    return "a GPU" if n == 1 else f"{n} GPUs"


def choose(config: TrainConfig, free: list[str], devices: list[str]) -> list[str] | None:
    """The devices a run takes from `free` now, or None while they are not free."""
    if devices == ["cpu"]:
        return ["cpu"] if "cpu" in free else None
    if config.gpu is not None:
        wanted = f"cuda:{config.gpu}"
        return [wanted] if wanted in free else None
    n = config.num_processes
    return free[:n] if len(free) >= n else None


def held_devices(runs: Iterable[Run], devices: list[str]) -> dict[str, str]:
    """Device -> the run holding it: started runs on this machine until their process exits
    (at most EXIT_GRACE_SECONDS after their last status). A run without a record of its
    devices (started by an older version, or a job launched here by hand) holds them all."""
    held: dict[str, str] = {}
    host = socket.gethostname()
    for run in runs:
        status = run.status
        if (status.host and status.host != host) or status.waiting:
            continue
        if not status.active:
            exiting = status.ended and time.time() - status.ended < EXIT_GRACE_SECONDS
            if not (exiting and run.process_alive):
                continue
        for device in status.devices or devices:
            held.setdefault(device, run.name)
    return held


def runs_on(device: str, runs: Iterable[Run], devices: list[str]) -> list[Run]:
    """The runs training now on `device` ("cpu", "cuda:0"), e.g. beside answers there."""
    found = {r.name: r for r in runs if r.status.state == "running"}
    return [found[name] for d, name in held_devices(found.values(), devices).items() if d == device]


class RunQueue:
    """The workspace's queue file and the rules for who starts next."""

    def __init__(
        self,
        file: Path,
        runs_dir: Path,
        devices: Callable[[], list[str]] | None = None,
    ):
        self.file, self.runs_dir = Path(file), Path(runs_dir)
        self._devices = devices or machine_devices  # this machine's, read when asked
        with _LOCKS_LOCK:
            self._lock = _LOCKS.setdefault(self.file.resolve(), threading.RLock())

    def waiting(self, runs: Mapping[str, Run]) -> list[QueuedRun]:
        """The waiting runs in start order, as their folders say (nothing is written)."""
        entries, _ = self._reconcile(runs)
        return [self._as_queued(runs[e.run], i) for i, e in enumerate(entries, 1)]

    def add(self, run: Run) -> None:
        """Put a run at the end of the queue: its folder says it waits, then the file lists it."""
        now = time.time()
        with self._lock, run.folder.status_lock():
            run.folder.stop_file.unlink(missing_ok=True)  # an earlier stop; a new one holds
            status = run.folder.read_status()
            status.state, status.pid, status.worker_pid, status.devices = "queued", None, None, []
            status.host, status.heartbeat, status.ended = socket.gethostname(), now, None
            status.message, status.traceback_tail = "Queued; waiting for its turn.", ""
            status.progress = RunProgress(queued_at=now)
            run.folder.write_status(status)
            entries = [e for e in self._read()[0] if e.run != run.name]
            self._write([*entries, QueueEntry(run.name, now, needs(run.config, self._devices()))])

    def next_devices(self, runs: Mapping[str, Run]) -> list[str]:
        """The devices a one-process run started now would take (["cpu"] on a machine without
        a GPU), [] while none is free: what a warm runner is started for (train/warm.py)."""
        devices = self._devices()
        held = held_devices(runs.values(), devices)
        return choose(TrainConfig(), [d for d in devices if d not in held], devices) or []

    def dispatch(self, runs: Mapping[str, Run], start: Callable[[Run], Run]) -> list[Run]:
        """Start each waiting run whose devices are free, in queue order (a run never overtakes
        an earlier one), and tell the others their place; returns the runs started.

        `runs`: every run this session knows, by name (held devices are read from them).
        """
        with self._lock:
            entries, problems = self._reconcile(runs)
            if problems:
                self._write(entries)
                note = self._repair_note(problems, entries)
                log.warning(note)
                warnings.warn(note, QueueRepairedWarning, stacklevel=2)
            devices = self._devices()
            held = held_devices(runs.values(), devices)
            claimed, waiting = [], []
            for entry in entries:
                run = runs[entry.run]
                free = [d for d in devices if d not in held]
                chosen = None if waiting else choose(run.config, free, devices)
                if chosen is None:
                    waiting.append(entry)
                elif self._claim(run, chosen):  # else cancelled meanwhile: it leaves the queue
                    held.update(dict.fromkeys(chosen, run.name))
                    claimed.append(run)
            if claimed:
                self._write(waiting)  # claimed in their folders first: a crash never starts twice
            for run in claimed:
                self._start(run, start)
            for position, entry in enumerate(waiting, 1):
                self._note_place(runs[entry.run], position, entry, waiting, held)
            return claimed

    # -- internals ----------------------------------------------------------------------------
    def _read(self) -> tuple[list[QueueEntry], str]:
        """The file's entries, and why it could not be read ("" when it could)."""
        if not self.file.exists():
            return [], ""
        try:
            data = read_json(self.file)
            rows = data["runs"]
            entries = [
                QueueEntry(**fields_from_json(QueueEntry, r, source=str(self.file))) for r in rows
            ]
        except (OSError, ValueError, TypeError, KeyError) as e:
            return [], f"it cannot be read ({e})"
        return entries, ""

    def _write(self, entries: list[QueueEntry]) -> None:
        atomic_write_json(self.file, {"format": QUEUE_FORMAT, "runs": [asdict(e) for e in entries]})

    def _reconcile(self, runs: Mapping[str, Run]) -> tuple[list[QueueEntry], list[str]]:
        """The file's entries checked against the run folders, and what did not match.

        A cancelled run leaves quietly; a run that started, ended or vanished without the file
        saying so, or a waiting run the file lacks, is a problem (a kernel ended mid-change).
        """
        entries, unreadable = self._read()
        problems = [unreadable] if unreadable else []
        kept: list[QueueEntry] = []
        for entry in entries:
            run = runs.get(entry.run)
            state = run.folder.readable_status() if run is not None else None
            if state is not None and state.waiting and entry.run not in {e.run for e in kept}:
                kept.append(entry)
            elif state is None:
                problems.append(f"{entry.run}'s folder is gone")
            elif state.state != "cancelled" and entry.run not in {e.run for e in kept}:
                problems.append(f"{entry.run} is {state.state}, not waiting")
        listed = {e.run for e in kept}
        missing = []
        for name, run in runs.items():
            if name in listed or run.path.parent.resolve() != self.runs_dir.resolve():
                continue
            status = run.folder.readable_status()
            if status.waiting:
                missing.append((status.progress.queued_at or 0.0, name, run))
        for queued_at, name, run in sorted(missing, key=lambda m: (m[0], m[1])):
            problems.append(f"{name} waits but was not listed")
            kept.append(QueueEntry(name, queued_at, needs(run.config, self._devices())))
        return kept, problems

    def _repair_note(self, problems: list[str], entries: list[QueueEntry]) -> str:
        order = ", ".join(e.run for e in entries) or "none"
        return (
            f"The run queue {self.file} did not match the run folders (a kernel ended in the "
            f"middle of a change?): {'; '.join(problems)}. It was repaired from the run folders; "
            f"waiting now, in order: {order}."
        )

    def _claim(self, run: Run, chosen: list[str]) -> bool:
        """Give a waiting run its devices in its folder (under its lock); False when it is
        not waiting any more (cancelled, or started by someone else)."""
        with run.folder.status_lock():
            status = run.folder.readable_status()
            if not status.waiting:
                return False
            status.devices, status.heartbeat = list(chosen), time.time()
            status.host, status.message = socket.gethostname(), f"Starting on {', '.join(chosen)}."
            run.folder.write_status(status)
        return True

    def _start(self, run: Run, start: Callable[[Run], Run]) -> None:
        """Start a claimed run; a start that fails fails the run (its devices free at once)."""
        try:
            start(run)
        except Exception as e:
            log.exception("Could not start %s", run.name)
            status = run.folder.readable_status()
            status.state, status.ended = "failed", time.time()
            status.message = f"The runner of {run.name} could not be started: {e}"
            run.folder.write_status(status)

    def _note_place(
        self,
        run: Run,
        position: int,
        entry: QueueEntry,
        waiting: list[QueueEntry],
        held: dict[str, str],
    ) -> None:
        """Write a waiting run's place and what it waits for into its status (when changed)."""
        if position > 1:
            what = f"{waiting[position - 2].run}, ahead of it in the queue"
        else:
            holders = sorted(set(held.values()))
            busy = f" ({', '.join(holders)} {'is' if len(holders) == 1 else 'are'} training)"
            what = f"{entry.needs}{busy if holders else ''}"
        with run.folder.status_lock():
            status = run.folder.readable_status()
            if not status.waiting:
                return
            progress = dataclasses.replace(status.progress, position=position, waits_for=what)
            if progress == status.progress:
                return
            status.progress = progress
            status.message = (
                f"Queued, #{position} in line: waits for {what}. It starts by itself while "
                "this workspace is open in a kernel."
            )
            run.folder.write_status(status)

    def _as_queued(self, run: Run, position: int) -> QueuedRun:
        progress = run.folder.readable_status().progress
        return QueuedRun(run.name, position, progress.waits_for or "its turn")
