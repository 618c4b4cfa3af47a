"""What a run learns, beside its curve: the probes' answers by evaluation, and selected runs
side by side (only the settings that differ, and each run's results).

Both are HTML views over the core (Run.probe_history, Session.compare_runs); every text is
escaped. The launcher holds one of each and calls `show` when the selection changes.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from workbench.train import Run
from workbench.train.insight import forgetting_warning, overfitting_warning

from ..common.notice import Notice
from ..common.theme import plural

ANSWER_CHARS = 160  # a probe answer longer than this is cut in the table (the file has it all)


class ProbeTable(widgets.VBox):
    """The probes' answers of one run, newest evaluation first; an answer that changed since the
    evaluation before is marked, and one with a reference is marked right or wrong."""

    def __init__(self) -> None:
        self.table = widgets.HTML()
        self.message = Notice()
        super().__init__([self.table, self.message])
        self.show(None)

    def show(self, run: Run | None) -> None:
        """Show `run`'s probe answers (read from its samples.jsonl: also for a re-attached run),
        or why there are none."""
        history = run.probe_history() if run is not None else []
        if not history:
            hint = html.escape(no_probes_hint(run))
            self.table.value = f'<div class="wb-hint">{hint}</div>'
            return
        self.table.value = probe_table_html(history)


def no_probes_hint(run: Run | None) -> str:
    """Why a run shows no probe answers (yet)."""
    if run is None:
        return "Probe answers appear here at each evaluation of the selected run."
    if "eval" not in run.info.data:
        return (
            f"{run.name} has no eval split, so it is never evaluated and answers no probes: make "
            "an eval split (above the form, or in the Data tab) before the next run."
        )
    if not run.config.probes:
        return f"{run.name} asks no probes (probes is 0)."
    return f"{run.name}'s probe answers appear here at each evaluation."


class RunAlarms(widgets.VBox):
    """The alarms of the followed run: eval loss rising while train loss falls (overfitting),
    and keep drift past its limit while the loss falls (forgetting)."""

    def __init__(self) -> None:
        self.overfitting = Notice()
        self.forgetting = Notice()
        super().__init__([self.overfitting, self.forgetting])

    def show(self, run: Run | None) -> None:
        """Raise or clear each alarm from `run`'s metrics so far."""
        metrics = run.metrics if run is not None else []
        warnings = ("", "")
        if run is not None:
            warnings = (
                overfitting_warning(metrics),
                forgetting_warning(metrics, run.config.drift_limit, run.config.replay),
            )
        for notice, warning in zip((self.overfitting, self.forgetting), warnings):
            if warning:
                notice.warn(f"{run.name}: {warning}")
            else:
                notice.clear()


def probe_table_html(history: list[dict]) -> str:
    """The history of Run.probe_history as one table: a row per evaluation and probe."""
    rows = []
    for entry in history:
        score = "" if entry["score"] is None else f" - exact match {entry['score']:.0%}"
        rows.append(f'<tr><th colspan="3">Step {entry["step"]}{html.escape(score)}</th></tr>')
        for answer in entry["answers"]:
            text = answer["answer"]
            text = text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + "…"
            mark = {True: "right", False: "wrong", None: ""}[answer.get("correct")]
            changed = "changed" if answer["changed"] else ""
            rows.append(
                f'<tr><td class="wb-num">#{answer["probe"]}</td>'
                f"<td>{'<b>' if changed else ''}{html.escape(text)}{'</b>' if changed else ''}</td>"
                f"<td>{html.escape(' '.join(w for w in (mark, changed) if w))}</td></tr>"
            )
    return f'<table class="wb-table">{"".join(rows)}</table>'


class RunDiff(widgets.VBox):
    """Selected runs side by side: the settings that differ and each run's results."""

    def __init__(self, session) -> None:
        self.session = session
        self.table = widgets.HTML()
        self.message = Notice()
        super().__init__([self.table, self.message])
        self.show([])

    def show(self, names: list[str]) -> None:
        """Compare the runs called `names` (fewer than two: a hint instead of a table)."""
        if len(names) < 2:
            self.table.value = '<div class="wb-hint">Select two or more runs to compare them.</div>'
            return
        try:
            comparison = self.session.compare_runs(list(names))
        except (KeyError, ValueError) as e:
            self.table.value = ""
            self.message.error(e)
            return
        self.message.clear()
        count = len(comparison.differing)
        title = f"{plural(count, 'setting')} {'differs' if count == 1 else 'differ'}"
        self.table.value = f"<b>{html.escape(title)}</b>{comparison._repr_html_()}"
