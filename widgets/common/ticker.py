"""Ticker: a view's one background thread that redraws it while something it shows is live.

A view must never stop its own updates silently: the first error a tick raises is told in the
view's Notice and ends the thread; the next `ensure_running` starts a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .notice import Notice


class Ticker:
    """Calls `tick()` every `seconds` while `live()` holds, and once more after it stops holding
    (the last records of what just ended)."""

    def __init__(
        self,
        tick: Callable[[], None],
        live: Callable[[], bool],
        notice: Notice,
        seconds: float,
        name: str,
    ) -> None:
        self.tick, self.live, self.notice = tick, live, notice
        self.seconds, self.name = seconds, name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start the thread unless it runs already."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.seconds)
            with self.notice.guard("The live view stopped updating") as outcome:
                self.tick()
            if outcome.failed:
                return
            if not self.live():
                self.tick()
                return
