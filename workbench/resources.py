"""What the machine has left for a run: this process's peak memory and the free disk at a path.

One place that measures both, so the runner, the launcher's estimate and the benchmarks agree.
"""

from __future__ import annotations

import resource
import shutil
import sys
from pathlib import Path

GB = 1024**3


def peak_rss_gb() -> float:
    """This process's own peak resident memory, in GB (1024**3 bytes).

    On Linux, /proc's VmHWM: the high-water mark of this process's memory since it started.
    ru_maxrss is not used there: across fork and exec it keeps the parent's peak, so a runner
    started by a large notebook or test process would report its parent's memory as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / GB  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (GB if sys.platform == "darwin" else 1024**2)  # bytes on macOS, kB elsewhere


def release_freed_memory() -> None:
    """Collect garbage and hand the C heap's freed pages back to the OS (glibc's malloc_trim).

    Freed tensors leave pages in malloc's arenas that count as resident; before a second model
    copy is read (an export's check) they would add to the peak. A no-op off glibc.
    """
    import contextlib
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # musl and others: nothing to trim
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def free_disk_gb(path: str | Path) -> float:
    """Free space, in GB, on the filesystem that holds `path` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / GB


def folder_bytes(path: str | Path) -> int:
    """Bytes of the files under `path` (0 when it does not exist); links are not followed."""
    total = 0
    for item in Path(path).rglob("*"):
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            continue  # removed while we looked
    return total


def human_bytes(size: float) -> str:
    """`size` bytes as people read it: 512 B, 20.3 MB, 1.4 GB (1024-based)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def oom_kill_count() -> int | None:
    """How many processes the kernel's out-of-memory killer has killed in this process's cgroup
    (cgroup v2 memory.events, or v1 memory.oom_control), or None where the system does not say.

    Compared before and after a run, it tells an out-of-memory kill from a plain kill.
    """
    for events in _memory_event_files():
        try:
            for line in events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def _memory_event_files() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    files = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, where = line.split(":", 2)
            if controllers == "":  # cgroup v2: one hierarchy
                files.append(root / where.lstrip("/") / "memory.events")
    except (OSError, ValueError):
        pass
    return [*files, root / "memory.events", root / "memory" / "memory.oom_control"]
