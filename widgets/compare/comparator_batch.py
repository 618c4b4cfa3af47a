"""The comparator's batch tab: many prompts (or the eval split) through every chosen contestant.

Run calls Session.compare in a background thread, with a progress bar fed by its progress
callback and a Stop button that sets its stop event; the table of answers (and scores, when the
eval split gives references) is the Comparison's own escaped HTML, of its first TABLE_ROWS
prompts with each cell cut to CELL_CHARS (workbench.data.excerpt), so the page stays small
whatever the answers hold; Export writes every answer whole, as JSONL, CSV or a self-contained
HTML report, into the workspace's exports folder, named by the Comparison.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import ipywidgets as widgets

from workbench import Session
from workbench.answers.compare import Comparison, ComparisonStopped
from workbench.answers.report import answers_table
from workbench.data.excerpt import CELL_CHARS, TABLE_ROWS

from ..common.notice import Notice, sentence
from ..common.progress_line import ProgressLine
from ..common.theme import plural
from .comparator_parts import SettingsForm

EXPORT_FORMATS = ("html", "jsonl", "csv")


class BatchPanel(widgets.VBox):
    """Prompts in, a side-by-side table of answers and scores out, exportable."""

    def __init__(self, session: Session, settings_form: SettingsForm):
        self.session = session
        self.settings_form = settings_form
        self.comparison: Comparison | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.prompts = widgets.Textarea(placeholder="One prompt per line", rows=6)
        self.prompts.layout.width = "100%"
        self.use_eval = widgets.Checkbox(False, description="Use the eval split (scored)")
        self.models = widgets.SelectMultiple(description="contestants", rows=4)
        self._offered: tuple[str, ...] = ()  # the contestants chosen for the person
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.progress = ProgressLine()
        self.export_format = widgets.Dropdown(options=EXPORT_FORMATS, layout={"width": "90px"})
        self.export_button = widgets.Button(description="Export", icon="download", disabled=True)
        self.keep_run = widgets.Dropdown(description="keep answers of", options=[])
        self.keep_button = widgets.Button(description="Show keep answers", icon="balance-scale")
        self.scores = widgets.HTML()
        self.table = widgets.HTML()
        self.message = Notice()
        self.keep_button.on_click(lambda _: self.show_keep_answers())
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.export_button.on_click(lambda _: self.export())
        self.use_eval.observe(lambda c: self._eval_mode(c["new"]), names="value")
        super().__init__(
            [
                self.prompts,
                widgets.HBox([self.use_eval, self.models]),
                widgets.HBox(
                    [self.run_button, self.stop_button, self.export_format, self.export_button]
                ),
                widgets.HBox([self.keep_run, self.keep_button]),
                self.progress,
                self.message,
                self.scores,
                self.table,
            ]
        )

    def refresh_contestants(self, names: list[str], first: list[str]) -> None:
        """Offer the session's contestants, keeping those a person chose that remain; while
        the choice is the one offered, it follows `first` (the base and the selected run)."""
        chosen = tuple(n for n in self.models.value if n in names)
        if self.models.value == self._offered:
            chosen = ()
        self.models.options = names
        self.models.value = chosen or tuple(first)
        self._offered = tuple(first) if not chosen else self._offered

    def refresh_runs(self, names: list[str]) -> None:
        """Offer the runs whose keep answers can be shown, keeping the one chosen."""
        chosen = self.keep_run.value
        self.keep_run.options = names
        self.keep_run.value = chosen if chosen in names else (names[-1] if names else None)

    def show_keep_answers(self) -> None:
        """A run's keep answers beside the base's, the most changed first (Session.keep_report)."""
        try:
            comparison = self.session.keep_report(self.keep_run.value or "")
        except (KeyError, ValueError) as e:
            return self.message.error(e)
        self.comparison = comparison
        self.scores.value = ""
        self.table.value = table_html(comparison)
        self.export_button.disabled = False
        changed = sum(b != t for b, t in zip(*comparison.answers.values()))
        self.message.say(
            f"{changed} of {plural(len(comparison), 'keep answer')} of {self.keep_run.value} "
            "differ from the base's; the most changed first."
        )

    def run(self) -> None:
        """Answer every prompt with every chosen contestant, in the background."""
        if self._thread is not None and self._thread.is_alive():
            return self.message.warn("Still running; wait for the table, or press Stop.")
        prompts = None if self.use_eval.value else self._prompt_lines()
        with self.message.guard() as outcome:
            settings = self.settings_form.settings()
            if prompts is not None and not prompts:
                raise ValueError("Type one prompt per line, or use the eval split.")
            if prompts is None and not self.session.split_rows[1]:
                raise ValueError(
                    "There is no eval split yet: make one in the Data tab (Make eval split), "
                    "or type prompts."
                )
            if len(self.models.value) < 1:
                raise ValueError("Choose at least one contestant.")
        if outcome.failed:
            return None
        count = "the eval split" if prompts is None else plural(len(prompts), "prompt")
        self.message.say(f"Answering {count} with {plural(len(self.models.value), 'contestant')}…")
        self._stop.clear()
        self.progress.start()
        self._set_running(True)
        args = (prompts, list(self.models.value), settings)
        self._thread = threading.Thread(target=self._run, args=args, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the run in progress: the batch in flight stops early, finished answers are kept."""
        self._stop.set()  # run() clears it; the worker's message says how far it got

    def export(self) -> Path | None:
        """Write the last table into the workspace's exports folder, in the chosen format."""
        if self.comparison is None:
            return None
        folder = self.session.workspace.exports_dir
        try:
            written = self.comparison.export_to(folder, self.export_format.value)
        except (OSError, ValueError) as e:
            self.message.error(f"The export was not written: {sentence(e)}", e)
            return None
        self.message.say(f"Exported to {written}.")
        return written

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run in progress is done (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, prompts, models, settings) -> None:
        started, comparison = time.monotonic(), None
        try:
            with self.message.guard("The batch did not run"):
                try:
                    comparison = self.session.compare(
                        prompts,
                        models,
                        progress=self.progress.show,
                        stop=self._stop,
                        **settings.to_json(),
                    )
                except ComparisonStopped as e:  # a stop asked for: said, not a failure
                    self.message.say(str(e))
            if comparison is not None:
                self._show(comparison, time.monotonic() - started)
        finally:
            self._set_running(False)

    def _show(self, comparison, took: float) -> None:
        self.comparison = comparison
        self.scores.value = _scores_html(comparison)
        self.table.value = table_html(comparison)
        self.export_button.disabled = False
        self.message.say(f"{plural(len(comparison), 'prompt')} answered in {took:.1f} s.")

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running

    def _prompt_lines(self) -> list[str]:
        return [line.strip() for line in self.prompts.value.splitlines() if line.strip()]

    def _eval_mode(self, on: bool) -> None:
        self.prompts.disabled = on


def table_html(comparison: Comparison) -> str:
    """The answers table as the page shows it: the first TABLE_ROWS prompts, every prompt,
    reference and answer cut to CELL_CHARS characters (Comparison.head); an export holds them
    all."""
    note = ""
    if len(comparison) > TABLE_ROWS:
        note = (
            f"<div class='wb-hint'>The first {TABLE_ROWS:,} of {len(comparison):,} prompts; "
            "Export writes them all.</div>"
        )
    return answers_table(comparison.head(TABLE_ROWS, CELL_CHARS)) + note


def _scores_html(comparison: Comparison) -> str:
    if not comparison.summary:
        return ""
    items = "".join(
        f"<li><b>{html.escape(name)}</b>: {score:.1%}</li>"
        for name, score in comparison.summary.items()
    )
    scorer = html.escape(comparison.scorer or "")
    return f"<div style='color: var(--jp-ui-font-color1)'>Scores ({scorer}):<ul>{items}</ul></div>"
