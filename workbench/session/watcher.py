"""RunWatcher: one background thread per Session that announces run changes to every view.

Runs change in their own processes, so something has to look. While any run is active, the
watcher looks about twice a second (`session.check_runs`), which tells the observers of "runs"
of each run whose state or step changed. It ends itself once no run is active, and is started
again when a run starts, resumes, is attached, or is found active on disk.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class RunWatcher:
    """Polls the session's runs while one is active; views only observe "runs"."""

    def __init__(self, session: Any, poll_seconds: float = POLL_SECONDS):
        self._session = weakref.ref(session)  # a forgotten session may be collected; we end then
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._poked = False

    @property
    def running(self) -> bool:
        """Whether the watcher thread is polling now."""
        with self._lock:
            return self._thread is not None

    def ensure(self) -> None:
        """Start polling unless already polling (cheap; call it whenever a run may be active)."""
        with self._lock:
            self._poked = True  # a run may have started since the last look: look once more
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, daemon=True, name="run-watcher")
            self._thread.start()

    def stop(self) -> None:
        """End polling for good (the session is closing)."""
        self._stop.set()

    def _loop(self) -> None:
        failed = False
        while not self._stop.wait(self.poll_seconds):
            with self._lock:
                self._poked = False
            session = self._session()
            if session is None:
                break
            try:
                active = session._poll_runs()
            except Exception:  # a broken folder must not end the announcements silently
                if not failed:
                    log.exception("The run watcher could not read the runs; it keeps trying")
                failed, active = True, True
            del session
            with self._lock:
                if not active and not self._poked:
                    self._thread = None
                    return
        with self._lock:
            self._thread = None
