"""Why a run ended badly, in plain words: a full disk, out of memory, a kill, or an error.

The runner calls `explain_failure` for an exception it caught; a Run whose process ended without
a word calls `death_message` with what the system left behind (its log, its exit, the kernel's
count of out-of-memory kills). Each message names what happened and the settings to change.
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

from ..resources import free_disk_gb, human_bytes

# Errors of a write that cannot complete: a full disk, a full quota, a file-size limit.
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit)",
}
# The same errors as libraries word them when they do not raise an OSError (torch, safetensors).
WRITE_TEXTS = {
    "no space left on device": "no space left",
    "os error 28": "no space left",
    "disk quota exceeded": "disk quota exceeded",
    "file too large": "file too large (a file-size limit)",
    "os error 27": "file too large (a file-size limit)",
    "file write failed": "a write failed (the disk may be full)",
}
LOWER_MEMORY = (
    "Lower batch_size (raise grad_accumulation to keep the effective batch), lower max_length, "
    "or set gradient_checkpointing=True; on a GPU, qlora holds the base model in 4 bits."
)


def write_failure(error: BaseException) -> tuple[str, str] | None:
    """(what went wrong, the file) when `error` or one of its causes is a failed write, else None."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in WRITE_ERRNOS:
            return WRITE_ERRNOS[seen.errno], str(seen.filename or "")
        seen = seen.__cause__ or seen.__context__
    text = f"{error}".lower()
    for words, cause in WRITE_TEXTS.items():
        if words in text:
            return cause, ""
    return None


def disk_message(cause: str, file: str, run_dir: Path) -> str:
    """The sentence for a failed write: the cause, the file, the free space, what to do."""
    where = file or str(run_dir)
    free = human_bytes(free_disk_gb(run_dir) * 1024**3)
    return (
        f"The run could not write {where}: {cause}. {free} is free on the disk of {run_dir}. "
        "Free space (session.clean_checkpoints() removes the checkpoints of finished runs and "
        "keeps their adapters), save less often (save_steps), or put the workspace on a larger "
        "disk; then resume the run from its last complete checkpoint."
    )


def explain_failure(error: Exception, run_dir: Path) -> str:
    """One sentence of what happened and what to do, for the widget and the status file."""
    failed_write = write_failure(error)
    if failed_write:
        return disk_message(*failed_write, run_dir)
    text = f"{type(error).__name__}: {error}"
    if "out of memory" in text.lower():
        return f"The GPU ran out of memory. {LOWER_MEMORY}"
    return f"Training failed: {text[:500]}. The log tail has the details."


def death_message(
    log_tail: str, exit_code: int | None, oom_kills: tuple[int | None, int | None], run_dir: Path
) -> str:
    """Why a runner ended without writing its status: the disk (from its log), the kernel's
    out-of-memory killer (its kill count rose: `oom_kills` is (at the start, now)), an error
    exit or a kill signal (`exit_code` of our own child: 1, -9), or unknown."""
    failed_write = write_failure(RuntimeError(log_tail))
    if failed_write:
        return disk_message(*failed_write, run_dir)
    resume = " Resume from the last checkpoint with session.resume(run)."
    before, now = oom_kills
    if before is not None and now is not None and now > before:
        return (
            "The system ran out of memory and its out-of-memory killer ended the training "
            f"process. {LOWER_MEMORY}{resume}"
        )
    if exit_code is not None and exit_code > 0:
        free = human_bytes(free_disk_gb(run_dir) * 1024**3)
        return (
            f"The training process failed (exit code {exit_code}) before it could write its "
            f"status; {free} is free on the disk of {run_dir} (a full disk silences both the "
            f"status and the log). The log tail is below.{resume}"
        )
    if exit_code == -signal.SIGKILL:
        return (
            "The training process was killed (SIGKILL): by a person, or by the system when "
            f"memory ran out (this system does not say which). {LOWER_MEMORY}{resume}"
        )
    return (
        "The training process ended without a word (killed, or out of system memory). Its log "
        f"tail is below.{resume}"
    )
