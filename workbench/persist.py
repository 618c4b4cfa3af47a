"""Crash-safe files: atomic state writes, whole folders and append-only JSONL logs.

Every piece of workspace state goes through these functions. A state file is replaced whole
(temp file, fsync, rename), so a crash leaves either the old or the new version; so is a folder
(an adapter, a saved dataset): written under a staging name, then swapped in. A log only
ever grows by whole lines; a torn last line, left by a power cut, is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from .resources import free_disk_gb, human_bytes

T = TypeVar("T")
# A write that cannot complete for want of room: a full disk, a full quota, a file-size limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; set it straight back, once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class TornLogWarning(UserWarning):
    """A JSONL log ended in a partial line (the writer was interrupted); the line was skipped."""


class DiskFullError(OSError):
    """State could not be saved for want of room on its disk; what was saved before is intact."""


def _no_room(error: BaseException, path: Path) -> DiskFullError | None:
    """The DiskFullError to raise for `error` when it is a write without room, else None."""
    if not isinstance(error, OSError) or error.errno not in NO_ROOM:
        return None
    free = human_bytes(free_disk_gb(path.parent) * 1024**3)
    return DiskFullError(
        error.errno,
        f"Could not save {path}: {os.strerror(error.errno).lower()} ({free} free on its disk). "
        "What was saved before is unchanged. Free some space (session.clean_checkpoints() "
        "removes the checkpoints of finished runs and keeps their adapters), then do it again.",
        str(path),
    )


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix."""
    path = Path(path)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if full := _no_room(e, path):
            raise full from e
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace a text file (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically replace a JSON file with `obj`, pretty-printed for people who open it."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty folder beside `path` to write its next version in; when the block ends
    without an error it replaces `path` (publish_folder), else it is removed and `path` is as
    it was. Raises what the block or the swap raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".staging", dir=path.parent))
    try:
        yield staging
        publish_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_folder(staging: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make the finished folder `staging` be `path`, replacing any folder there, so that a crash
    at any moment leaves a whole folder to read: the old or the new one. Linux swaps the two
    names at once (renameat2 RENAME_EXCHANGE); elsewhere the old folder waits at its aside name
    between two renames, where `whole_folder` finds it. `staging` is gone afterwards."""
    staging, path = Path(staging), Path(path)
    aside = _aside(path)
    if not path.exists():
        os.replace(staging, path)
    elif _exchange(staging, path):
        shutil.rmtree(staging)  # the old folder, now under the staging name
    else:
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
        try:
            os.replace(staging, path)
        except OSError:
            os.replace(aside, path)  # the old folder back: `path` is as it was
            raise
    shutil.rmtree(aside, ignore_errors=True)  # also one a crash left between the renames
    _fsync_dir(path.parent)


def whole_folder(path: str | os.PathLike) -> Path | None:
    """`path` when it exists; else the old folder a crash left at its aside name in the middle
    of publish_folder; else None. Reading only: the next publish_folder tidies up."""
    path = Path(path)
    if path.exists():
        return path
    aside = _aside(path)
    return aside if aside.exists() else None


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names of two existing paths at once; False where the system or its file
    system cannot (then nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # glibc before 2.28
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a broken one raises ValueError naming the file and the position."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})."
        ) from e


def fields_from_json(cls: type[T], data: Any, *, source: str) -> dict[str, Any]:
    """The keyword arguments of dataclass `cls` in `data`, a JSON object read from `source`.

    The one policy for keys a dataclass does not know: refuse, naming each key, the file or
    object it came from and the known keys. A typo in a hand-edited config must never pass
    silently, and files from a newer version are told apart earlier by their schema_version.
    Raises ValueError (TypeError when `data` is not an object).
    """
    if not isinstance(data, dict):
        raise TypeError(f"{source}: expected a JSON object for {cls.__name__}; got {data!r:.80}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"{source}: unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(names)}. "
            "Fix or remove them."
        )
    return dict(data)


def from_json(cls: type[T], data: Any, *, source: str) -> T:
    """Rebuild dataclass `cls` from a JSON object under the one unknown-key policy above."""
    return cls(**fields_from_json(cls, data, source=source))


def append_jsonl(path: str | os.PathLike, record: Any) -> None:
    """Append one record as one line and fsync it, so an acknowledged record survives a crash."""
    data = memoryview((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    with open(path, "ab", buffering=0) as f:  # unbuffered: nothing is left to flush on close
        _drop_torn_tail(f, Path(path))
        start = f.tell()
        try:
            while data:
                data = data[f.write(data) :]
            os.fsync(f.fileno())
        except OSError as e:
            with contextlib.suppress(OSError):
                f.truncate(start)  # no half record stays behind
            if full := _no_room(e, Path(path)):
                raise full from e
            raise


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """All complete records of a JSONL log; a torn last line is skipped with a TornLogWarning."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | os.PathLike) -> Iterator[Any]:
    """Yield the records of a JSONL log; a missing file has none.

    Only the last line may be torn (an interrupted append). A broken line elsewhere means the
    file was edited by hand; that is an error naming the line, since skipping it silently would
    lose a record.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if number - 1 == last:  # no newline after it: an interrupted append
                warnings.warn(
                    f"{path}: skipped a torn last line ({len(raw)} bytes), left by an "
                    "interrupted write; every complete record was read.",
                    TornLogWarning,
                    stacklevel=2,
                )
                return
            raise ValueError(
                f"{path}, line {number}: not a JSON record ({e}). Fix or delete that line."
            ) from e


def _drop_torn_tail(f, path: Path) -> None:
    """Cut a partial last line (never acknowledged to anyone) so the next record starts clean."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    with open(path, "rb") as r:
        pos = size
        while pos > 0:
            step = min(65536, pos)
            r.seek(pos - step)
            chunk = r.read(step)
            if pos == size and chunk.endswith(b"\n"):
                return
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                pos = pos - step + cut + 1
                break
            pos -= step
    warnings.warn(
        f"{path}: dropped a torn last line ({size - pos} bytes) left by an interrupted write.",
        TornLogWarning,
        stacklevel=3,
    )
    f.truncate(pos)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
