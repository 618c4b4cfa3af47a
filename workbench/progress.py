"""Progress of long work in the core (tokenising a large dataset), told to whoever listens.

Scripts and notebook cells get a tqdm bar. A view that starts the work installs its own reporter
with `reporting_to` and shows the counts in its own widgets: a tqdm bar in a notebook is a widget
drawn inside an ipywidgets Output, and an Output inside a box cannot be built by classic
Notebook 6.5's widget manager (widgetsnbextension 3.6, Colab's pinned version). The reporter is
kept in a context variable, so it reaches only the work started in its own thread or context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[int, int, str], None]  # (done, total, what) -> None; total 0 = unknown

_reporter: ContextVar[Reporter | None] = ContextVar("workbench_progress", default=None)


@contextmanager
def reporting_to(report: Reporter) -> Iterator[None]:
    """Within the block, long work calls `report(done, total, what)` instead of drawing a bar."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


@contextmanager
def progress(
    total: int | None, what: str, unit: str = "rows", disable: bool = False, leave: bool = True
) -> Iterator[Callable[[int], None]]:
    """Count work done: yields `advance(n)`. Goes to the reporter `reporting_to` installed, else
    to a tqdm bar, kept when done if `leave` (`disable`: neither, for work too small to follow)."""
    report = _reporter.get()
    if disable:
        yield lambda _n: None
    elif report is None:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=what, unit=unit, leave=leave) as bar:
            yield bar.update
    else:
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            report(done, total or 0, what)

        report(0, total or 0, what)
        yield advance


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """Within the block, the datasets library draws no bars of its own ("Saving the dataset"):
    the work is counted through `progress`, and a bar drawn from a button's handler has no cell
    to go to, so JupyterLab shows it in its log as a warning."""
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()
