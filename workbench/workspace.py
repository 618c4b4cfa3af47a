"""The workspace folder: its layout, its schema version, and the lock that keeps one writer.

A workspace holds everything a Session knows. Two kernels writing the same folder would corrupt
it, so the first one to open it holds a lock; a second one is told who holds it and may open
the workspace read-only.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from .persist import NO_ROOM, atomic_write_json, read_json
from .resources import folder_bytes, human_bytes

SCHEMA_VERSION = 1
# Below this much free space a workspace opens with a warning: a checkpoint may not fit.
LOW_DISK_BYTES = 100 * 1024**2


class WorkspaceError(RuntimeError):
    """A workspace cannot be opened as asked; the message names the path and what to do."""


class WorkspaceLockedError(WorkspaceError):
    """Another process has this workspace open for writing."""


class ReadOnlyError(WorkspaceError):
    """A change was asked of a session opened read-only."""


class WorkspaceWarning(UserWarning):
    """The workspace opened, but not as asked (read-only on a full disk); the message says why."""


class Workspace:
    """Paths inside a workspace folder, and its single-writer lock."""

    def __init__(self, root: str | os.PathLike, *, read_only: bool = False):
        self.root = Path(root).expanduser().resolve()
        self.read_only = read_only
        self.read_only_reason = ""  # why a workspace asked for writing opened read-only
        self._lock: FileLock | None = None
        self._check_folder()
        if not read_only:
            self._acquire_lock()

    # -- layout -------------------------------------------------------------------------------
    @property
    def session_file(self) -> Path:
        return self.root / "session.json"

    @property
    def edits_file(self) -> Path:
        return self.root / "edits.jsonl"

    @property
    def preferences_file(self) -> Path:
        return self.root / "preferences.jsonl"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def dataset_cache_dir(self) -> Path:
        """Arrow conversions of loaded sources, keyed by fingerprint (rebuilt when missing)."""
        return self.cache_dir / "datasets"

    @property
    def answer_cache_file(self) -> Path:
        return self.cache_dir / "answers.jsonl"

    @property
    def datasets_dir(self) -> Path:
        """Saved copies of in-memory data (a DataFrame or list has no file to reload from)."""
        return self.root / "datasets"

    @property
    def exports_dir(self) -> Path:
        """Comparison reports and other files written for people outside the notebook."""
        return self.root / "exports"

    @property
    def candidates_file(self) -> Path:
        """Synthetic candidates and the decisions on them (append-only; see workbench.synthesis)."""
        return self.root / "candidates.jsonl"

    @property
    def run_queue_file(self) -> Path:
        """Runs waiting for a device, in start order (replaced atomically; workbench.train.queue)."""
        return self.root / "run_queue.json"

    @property
    def attached_runs_file(self) -> Path:
        """Runs followed from elsewhere: name -> folder."""
        return self.root / "attached_runs.json"

    # -- state --------------------------------------------------------------------------------
    def read_state(self) -> dict | None:
        """session.json without its schema_version (checked here), or None for a new workspace."""
        if not self.session_file.exists():
            return None
        try:
            state = read_json(self.session_file)
        except (OSError, ValueError) as e:
            raise WorkspaceError(
                f"Cannot read {self.session_file}: {e}. Restore it from a backup or move it "
                "away to start this workspace afresh; nothing was changed."
            ) from e
        version = state.get("schema_version") if isinstance(state, dict) else None
        if not isinstance(version, int):
            raise WorkspaceError(
                f"{self.session_file} has no schema_version; it was not written by the tuning "
                "workbench. Open another folder as the workspace."
            )
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.session_file} was written by a newer tuning-workbench (schema "
                f"{version}; this one reads up to {SCHEMA_VERSION}). Upgrade with "
                "`pip install -U tuning-workbench`; the workspace was left untouched."
            )
        return {k: v for k, v in state.items() if k != "schema_version"}

    def write_state(self, state: dict) -> None:
        """Atomically replace session.json."""
        self.require_writable()
        atomic_write_json(self.session_file, {"schema_version": SCHEMA_VERSION, **state})

    def require_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(
                self.read_only_reason
                or f"The workspace {self.root} is open read-only; nothing was changed. Close the "
                "kernel that holds it and reopen with Session.open(path)."
            )

    @property
    def holds_lock(self) -> bool:
        """Whether this process is the workspace's one writer (also while a full disk keeps it
        read-only: it may then free room, see retry_writable)."""
        return self._lock is not None

    def retry_writable(self) -> bool:
        """Leave the read-only state a full disk forced once there is room again; True if writable."""
        if self.read_only and self.holds_lock:
            self._write_owner()
        return not self.read_only

    def usage(self) -> str:
        """What takes the room in this workspace, in one line: runs (and their checkpoints),
        the dataset cache and saved datasets, and the disk's free space."""
        import shutil

        checkpoints = sum(folder_bytes(p) for p in self.runs_dir.glob("*/checkpoints"))
        disk = shutil.disk_usage(self.root)
        return (
            f"runs {human_bytes(folder_bytes(self.runs_dir))} (of which checkpoints "
            f"{human_bytes(checkpoints)}), cache {human_bytes(folder_bytes(self.cache_dir))}, "
            f"saved datasets {human_bytes(folder_bytes(self.datasets_dir))}; "
            f"{human_bytes(disk.free)} free of {human_bytes(disk.total)} on its disk"
        )

    def close(self) -> None:
        """Release the lock so another kernel can open the workspace for writing."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- internals ----------------------------------------------------------------------------
    def _check_folder(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(
                f"The workspace path {self.root} is a file, not a folder. Choose a folder path "
                "(it is created if missing); the file was left untouched."
            )
        if not self.root.exists():
            if self.read_only:
                raise WorkspaceError(f"No workspace at {self.root} to open read-only.")
            try:
                self.root.mkdir(parents=True)
            except OSError as e:
                raise WorkspaceError(f"Cannot create the workspace folder {self.root}: {e}.") from e
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise WorkspaceError(
                f"The workspace folder {self.root} is not readable by this user. Fix its "
                "permissions or choose another folder."
            )
        if not self.read_only and not os.access(self.root, os.W_OK):
            raise WorkspaceError(
                f"The workspace folder {self.root} is not writable by this user. Fix its "
                "permissions, or open it with read_only=True to look without changing it."
            )

    def _acquire_lock(self) -> None:
        lock = FileLock(self.root / ".lock", timeout=0)
        owner_file = self.root / ".lock-owner.json"
        try:
            lock.acquire()
        except Timeout:
            owner = _read_owner(owner_file)
            raise WorkspaceLockedError(
                f"The workspace {self.root} is open in another process ({owner}). Close that "
                "session (session.close() or shut its kernel down), or open this one with "
                "Session.open(path, read_only=True) to look without changing anything."
            ) from None
        except OSError as e:  # no room even for the lock file
            self._read_only_for(e)
            return
        self._lock = lock
        self._write_owner()

    def _write_owner(self) -> None:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        try:
            atomic_write_json(self.root / ".lock-owner.json", owner)
        except OSError as e:
            self._read_only_for(e)
            return
        self.read_only, self.read_only_reason = False, ""

    def low_disk_warning(self) -> str:
        """A sentence when the disk is nearly full (under LOW_DISK_BYTES free), else ''."""
        import shutil

        if self.read_only_reason or shutil.disk_usage(self.root).free >= LOW_DISK_BYTES:
            return ""
        return (
            f"The disk of the workspace {self.root} is nearly full; runs and saves may fail. "
            f"What takes the room: {self.usage()}. session.clean_checkpoints() removes the "
            "checkpoints of finished runs and keeps their adapters."
        )

    def _read_only_for(self, error: OSError) -> None:
        """Open read-only because the disk refuses writes, saying why and what takes the room."""
        if error.errno not in NO_ROOM:
            self.close()
            raise WorkspaceError(f"Cannot write to the workspace {self.root}: {error}.") from error
        self.read_only = True
        self.read_only_reason = (
            f"Cannot write to the workspace {self.root} ({os.strerror(error.errno).lower()}), so "
            f"it is open read-only: everything can be looked at, nothing changed. What takes the "
            f"room: {self.usage()}. Free some space "
            "(session.clean_checkpoints() removes the checkpoints of finished runs and keeps "
            "their adapters, then the workspace is writable again), or open it again later."
        )


def _read_owner(path: Path) -> str:
    try:
        owner = json.loads(path.read_text())
        return f"pid {owner['pid']} on {owner['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"
