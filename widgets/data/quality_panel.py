"""QualityPanel: the dataset's quality problems and its token lengths, under the browser's rows.

"Check quality" lists each problem found (workbench.data.quality) with its count; picking one
shows its rows in the browser and lists them, each with its note, to select. "Token lengths"
draws the length histogram (widgets.data.length_plot) against the training length.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from workbench.data import RowSelection
from workbench.data.excerpt import clip

from ..common.html_text import escape_text
from ..common.parts import make_button
from ..common.progress_line import ProgressLine
from .length_plot import LengthPlot

LISTED_ROWS = 500
LENGTHS_BY_DEFAULT_UP_TO = 50_000
NOTE_CHARS = 200  # a quality note on the page


class QualityPanel(widgets.VBox):
    """Quality problems and token lengths of the session's dataset.

    `guard(action, progress)` runs a user action and shows its error as the browser does;
    `show_rows(selection)` shows a problem's rows in the browser; `go_to_row(row)` selects one.
    """

    def __init__(
        self,
        session,
        guard: Callable[..., bool],
        progress: ProgressLine,
        show_rows: Callable[[RowSelection], None],
        go_to_row: Callable[[int], None],
    ) -> None:
        self.session, self._guard, self._progress, self._show_rows = (
            session,
            guard,
            progress,
            show_rows,
        )
        self.report = None
        self.with_lengths = widgets.Checkbox(description="token lengths", indent=False)
        self.check_button = make_button("Check quality", self.check)
        self.problems = widgets.Select(options=[], rows=6, description="Problems")
        self.problem_rows = widgets.Select(options=[], rows=6, description="Rows")
        self.problems.observe(lambda c: self._show_problem(c["new"]), "value")
        self.problem_rows.observe(lambda c: c["new"] is not None and go_to_row(c["new"]), "value")
        self.lengths_button = make_button("Token lengths", self.plot_lengths)
        self.note = widgets.HTML()
        self.lengths = LengthPlot()  # a hint until the lengths are first plotted
        super().__init__(
            [
                widgets.HBox([self.check_button, self.with_lengths, self.lengths_button]),
                widgets.HBox([self.problems, self.problem_rows]),
                progress,
                self.note,
                self.lengths,
            ]
        )

    def check(self) -> None:
        """List the problems of the dataset as it is now (token lengths too when ticked)."""
        ds = self.session.dataset
        if ds is None:
            return

        def check() -> None:
            eval_rows = self.session.split_rows[1]
            self.report = ds.quality(lengths=self.with_lengths.value, eval_rows=eval_rows)
            found = [(f"{p.title}: {len(p):,}", p.name) for p in self.report.found()]
            self.problems.options = found or [("No problems found", "")]
            self.problems.value = None

        self._guard(check, self._progress)

    def plot_lengths(self) -> None:
        """Draw the token length histogram, with a line at the training length."""

        def plot() -> None:
            self.note.value = self.lengths.draw(self.session.dataset.stats())

        self._guard(plot, self._progress)

    def reset(self) -> None:
        """A new dataset: nothing checked yet; lengths are checked by default for small sets."""
        ds = self.session.dataset
        self.report = None
        self.problems.options, self.problem_rows.options = [], []
        self.with_lengths.value = ds is not None and len(ds) <= LENGTHS_BY_DEFAULT_UP_TO

    def rows_changed(self) -> None:
        """An edit or a flag: a check made before it may no longer hold."""
        if self.report is not None:
            self.note.value = "<i>Rows changed since the check: check quality again.</i>"

    def measure_changed(self) -> None:
        """The template, model or training length changed: a drawn histogram is out of date."""
        if self.lengths.drawn:
            self.note.value = "<i>The template or length changed: plot the lengths again.</i>"

    def _show_problem(self, name: str | None) -> None:
        if not name or self.report is None:
            return
        problem = self.report[name]
        notes = {r: f": {clip(note, NOTE_CHARS)}" for r, note in problem.notes.items()}
        self.problem_rows.options = [
            (f"row {r}{notes.get(r, '')}", r) for r in problem.rows[:LISTED_ROWS].tolist()
        ]
        self.note.value = escape_text(clip(problem.summary, NOTE_CHARS))
        self._show_rows(RowSelection(self.session.dataset, problem.rows, problem.title))
