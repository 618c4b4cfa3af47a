"""A warm runner: a runner process started before Start, its training libraries already imported.

A new Python process takes about 6 s on a 2-core CPU to import torch, transformers and peft:
half of the wait between the launcher's Start and the first loss point. The launcher starts one
runner ahead (`Session.warm_runner`) while a person reads the form; Start hands it the run
folder over its stdin, and it trains exactly as a runner started then would (`runner.main`).
It is used only where it would have been started alike (one process, the same environment),
never twice, and it exits when its session closes its stdin (a kernel that ends does so too).

Its environment includes the GPU it may use (CUDA_VISIBLE_DEVICES): the one the run queue would
give the next run. It cannot be handed another once waiting: importing peft imports bitsandbytes,
which asks torch for each GPU's compute capability and so initialises CUDA with the devices the
process sees. A run given other devices (another run took the GPU meanwhile) starts cold.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

# What the warm process imports before it waits: everything a single-process run of any method
# imports before its first step (see runner/process.py, build_trainer), trl included for DPO, reward models
# and GRPO.
PRELOADED = (
    "torch",
    "accelerate",
    "datasets",
    "transformers",
    "peft",
    "bitsandbytes",
    "trl",
    "workbench.train.runner",
    "workbench.train.runner.sft",
    "workbench.train.runner.loss",
)
READY = "[workbench] warm runner ready"  # its first line in the log: waiting for a run
SETTLE_SECONDS = 5.0  # an unused warm process is given this long to exit before it is killed


class WarmRunner:
    """One runner process waiting for a run folder; `take` hands it one.

    Its output until then goes to a temporary file, which it copies into the run's log when it
    is handed a run, so the log reads as a cold start's would.
    """

    def __init__(self, env: Mapping[str, str]):
        self.env = dict(env)
        fd, name = tempfile.mkstemp(prefix="workbench-warm-runner-", suffix=".log")
        self.early_log = Path(name)
        with os.fdopen(fd, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workbench.train", "--warm", str(self.early_log)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # as a cold runner: a kernel interrupt never reaches it
                env=self.env,
            )
        self._lock = threading.Lock()
        self.used = False

    @property
    def alive(self) -> bool:
        """Whether it still waits for a run (not yet used, not exited)."""
        return not self.used and self.process.poll() is None

    @property
    def ready(self) -> bool:
        """Whether its imports are done (it said so in its early log) and it still waits."""
        with contextlib.suppress(OSError):
            return self.alive and READY.encode() in self.early_log.read_bytes()
        return False

    def accepts(self, env: Mapping[str, str]) -> bool:
        """Whether it can take a run that would start with `env` (it was started with the same)."""
        return self.alive and dict(env) == self.env

    def take(self, run_dir: Path) -> subprocess.Popen | None:
        """Hand it `run_dir` and return its process, now the run's runner; None when it was
        used or has exited (the caller then starts a cold runner)."""
        with self._lock:
            if not self.alive:
                return None
            self.used = True
            try:
                self.process.stdin.write(f"{Path(run_dir).resolve()}\n".encode())
                self.process.stdin.close()
            except OSError:  # it died between the check and the handover
                return None
            return self.process

    def close(self) -> None:
        """End it if it was never used (closing its stdin tells it to exit)."""
        with self._lock:
            if self.used:
                return
            self.used = True
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=SETTLE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.early_log.unlink(missing_ok=True)


# -- the warm process ---------------------------------------------------------------------------
def serve(early_log: str) -> int:
    """The warm process: import PRELOADED, wait for a run folder on stdin, then run it.

    An empty stdin (the session closed it, or its kernel ended) ends the process, exit code 0.
    """
    import importlib
    import time

    started = time.perf_counter()
    for module in PRELOADED:
        with contextlib.suppress(ImportError):  # bitsandbytes or trl missing: the run says so
            importlib.import_module(module)
    print(f"{READY} (imports took {time.perf_counter() - started:.1f} s)", flush=True)
    line = sys.stdin.readline().strip()
    if not line:
        Path(early_log).unlink(missing_ok=True)
        return 0
    from .folder import RunFolder
    from .runner import main

    adopt_log(Path(early_log), RunFolder(line).log_file)
    return main(line)


def adopt_log(early_log: Path, run_log: Path) -> None:
    """Append what this process printed so far to `run_log` and send the rest there too."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(run_log, "ab") as log:
        with contextlib.suppress(OSError):
            log.write(early_log.read_bytes())
            log.flush()
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
    early_log.unlink(missing_ok=True)
