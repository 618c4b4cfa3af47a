"""What the machine has left: a process's own peak memory, the free disk at a path."""

import shutil
import subprocess
import sys

from workbench.resources import free_disk_gb, peak_rss_gb

CHILD = "from workbench.resources import peak_rss_gb; print(peak_rss_gb())"


def test_a_started_process_reports_its_own_peak_not_its_launchers():
    """The runner is started by a notebook or test process that may hold gigabytes; its peak
    memory (what the estimate is checked against) must not be the launcher's (a CI failure:
    ru_maxrss keeps the parent's peak across fork and exec)."""
    ballast = b"\x01" * (1 << 30)  # 1 GiB, every page touched
    assert peak_rss_gb() >= 1.0
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    )
    assert float(child.stdout) < 0.5, child.stdout
    del ballast


def test_free_disk_is_read_where_the_path_will_be(tmp_path):
    """A run folder that does not exist yet is measured on the filesystem that will hold it."""
    expected = shutil.disk_usage(tmp_path).free / 1024**3
    assert abs(free_disk_gb(tmp_path / "runs" / "next" / "checkpoint-1") - expected) < 0.1
