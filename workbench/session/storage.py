"""Session actions on the workspace's disk: what takes the room, and freeing it."""

from __future__ import annotations

from collections.abc import Iterable


class StorageActions:
    """The disk half of Session (a mixin over the Session's state)."""

    def disk_usage(self) -> str:
        """One line of what takes the room here: runs and their checkpoints, caches, free space."""
        return self.workspace.usage()

    def clean_checkpoints(self, runs: Iterable[str] | None = None) -> int:
        """Delete the checkpoints of finished runs of this workspace, keeping their adapters;
        returns the bytes freed. `runs`: names to clean (default: every finished run).

        A checkpoint is what a stopped or failed run resumes from, so only finished runs with an
        adapter lose theirs. It also works on a workspace that a full disk opened read-only in
        this kernel, and makes it writable again once there is room.
        """
        if not self.workspace.holds_lock:
            self.workspace.require_writable()
        wanted = set(runs) if runs is not None else None
        freed = 0
        for run in self.runs:
            if wanted is not None and run.name not in wanted:
                continue
            if run.path.parent != self.workspace.runs_dir:
                continue  # attached from elsewhere: not this workspace's to delete
            if run.status.state == "finished" and run.folder.adapter_dir.exists():
                freed += run.folder.remove_checkpoints()
        self.workspace.retry_writable()
        return freed
