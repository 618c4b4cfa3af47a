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


def free_disk_gb(path: str | Path) -> float:
    """Free space, in GB, on the filesystem that holds `path` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / GB
