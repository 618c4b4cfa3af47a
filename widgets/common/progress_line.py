"""ProgressLine: a bar and "k / n rows, ETA …" for long work, fed from any thread.

A view shows the progress of work it starts here: the batch comparator counts answers, the
dataset browser and the training launcher count the rows the core tokenises (`counting`, over
workbench.progress.reporting_to), so no progress bar of the core's lands in JupyterLab's log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import ipywidgets as widgets

from workbench.progress import reporting_to


class ProgressLine(widgets.HBox):
    """A bar and "k / n <unit>, ETA …", hidden until `start`; `show` may be called from any
    thread."""

    def __init__(self, unit: str = "answers"):
        self.unit = unit
        self.bar = widgets.IntProgress(0, min=0, max=1, layout={"width": "240px"})
        self.label = widgets.Label()
        self._first: tuple[float, int] | None = None  # (time, done) at the first report
        super().__init__([self.bar, self.label])
        self.layout.display = "none"

    def start(self) -> None:
        """Show an empty bar for new work."""
        self._first = None
        self.bar.value, self.label.value = 0, ""
        self.layout.display = ""

    def hide(self) -> None:
        """Take the line off the page (the work ended)."""
        self.layout.display = "none"

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Within the block, the core's progress reports (workbench.progress) show on this line,
        from the first report on; the line leaves the page when the block ends."""
        self._first = None
        try:
            with reporting_to(self.show):
                yield
        finally:
            self.hide()

    def show(self, done: int, total: int, what: str = "") -> None:
        """Show `done` of `total` (0: unknown), with the time left at the pace since the first
        report; `what` is the work's name ("Tokenizing rows")."""
        now = time.monotonic()
        if self._first is None:
            self._first = (now, done)
            self.layout.display = ""
        self.bar.max = max(total, done, 1)
        self.bar.value = min(done, self.bar.max)
        since, done_then = self._first
        eta = ""
        if done_then < done < total:
            eta = ", ETA " + duration((now - since) / (done - done_then) * (total - done))
        counted = f"{done:,} / {total:,}" if total else f"{done:,}"
        prefix = f"{what}: " if what else ""
        self.label.value = f"{prefix}{counted} {self.unit}{eta}"


def duration(seconds: float) -> str:
    """ "42 s" under a minute and a half, else "2.5 min"."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
