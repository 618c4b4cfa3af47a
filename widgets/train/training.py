"""TrainingLauncher: the run form, its plan and estimate, Start/Stop/Resume, a live loss plot, runs.

The form is generated from TrainConfig's field metadata (widgets.common.forms.ConfigForm) and starts at
TrainConfig's own defaults, or, when the workspace already has runs (a kernel restart), at the
settings of the run it follows: the active one, else the latest, selected at once. What is left
open is decided by `session.plan`, the same for code and this view, and shown with its reasons.
Every button calls one Session (or Run) method; Stop and Resume are disabled, with the reason as
their tooltip, while they cannot act. The Session's run watcher announces run changes ("runs");
a background thread here only tails the metrics of the runs shown, for the plot, touching widget
traits only: ipykernel 6.17+ and 7.1+ send a comm message from any thread (7.0 dropped them
and is excluded), as both test tiers' browsers check. The words of the view are in
widgets.train.training_text.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets

from workbench import Session
from workbench.train import ConfigError, Run, TrainConfig
from workbench.train.run import nothing_to_stop

from ..common.compat import titled
from ..common.forms import ConfigForm
from ..common.notice import Notice
from ..common.progress_line import ProgressLine
from ..common.theme import style_view, stylesheet
from ..common.ticker import Ticker
from ..data.split_bar import SplitBar
from . import training_text as text
from .export_panel import ExportPanel
from .live_plot import LossPlot
from .run_insight import ProbeTable, RunAlarms, RunDiff

POLL_SECONDS = 0.5


class TrainingLauncher(widgets.VBox):
    """Set up a LoRA/QLoRA/DPO/reward-model/GRPO run, start it, watch it live, stop and resume
    it; each method's own fields show only while it is chosen.

    `lazy=True` (as the Workbench builds it) draws the view at once and leaves detecting the
    hardware and the estimate (they import torch and read the model) to `warm_up()`.
    """

    config_class: type[TrainConfig] = TrainConfig  # the form shows every field of this class

    def __init__(self, session: Session, plot_backend: str | None = None, lazy: bool = False):
        self.session = session
        self.form = ConfigForm(self.config_class)
        self.fields = self.form.fields
        self.why = widgets.HTML()
        self.estimate_box = widgets.HTML()
        self.estimate_message = Notice()
        self.start_button = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.resume_button = widgets.Button(description="Resume", icon="repeat")
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, layout={"width": "50%"})
        self.progress_text = widgets.HTML()
        self.preparing = ProgressLine(unit="rows")  # tokenising the rows when a run starts
        self.message = Notice()
        self.split_bar = SplitBar(session)
        self.runs_table = widgets.SelectMultiple(rows=6, layout={"width": "100%"})
        self.plot = LossPlot(plot_backend)
        self._shown: dict[str, Run] = {}
        self._lock = threading.RLock()
        # tails the shown runs' metrics into the plot while one of them is active
        self.poller = Ticker(self.refresh, self._any_active, self.message, POLL_SECONDS, "plot")
        self._relabelling = False  # the table's labels change; the selection does not
        self._announced: tuple[str, str] | None = None  # the run state the notice tells of
        self._ready = not lazy  # False until warm_up: no estimate yet
        self._estimated_busy: list[str] = []  # runs training when the estimate was shown

        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.resume_button.on_click(lambda _: self.resume())
        self.runs_table.observe(self._on_selection, names="value")
        for field in self.fields.values():
            field.observe(lambda _: self._on_form(), names="value")
        session.observe(self._on_runs, names="runs")
        session.observe(self._on_selected_run, names="selected_run")

        self.alarms = RunAlarms()
        self.probes = ProbeTable()
        self.diff = RunDiff(session)
        self.insight = titled(
            widgets.Accordion(children=[self.probes, self.diff]),
            ["Probe answers", "Compare selected runs"],
        )
        self.export = ExportPanel(session)
        self.export_box = titled(widgets.Accordion(children=[self.export]), ["Export a model"])
        self.export_box.selected_index = None
        self.hardware = widgets.HTML("<b>Hardware:</b> <i>detecting…</i>")
        controls = widgets.HBox([self.start_button, self.stop_button, self.resume_button])
        super().__init__(
            [
                stylesheet(),
                self.hardware,
                self.split_bar,
                self.form,
                self.why,
                self.estimate_box,
                self.estimate_message,
                controls,
                self.preparing,
                widgets.HBox([self.progress, self.progress_text]),
                self.message,
                self.alarms,
                self.plot.widget,
                widgets.HTML("<b>Runs</b> (select several to overlay their curves)"),
                self.runs_table,
                self.insight,
                self.export_box,
            ]
        )
        style_view(self, "wb-training")
        self.refresh_runs()
        followed = self.current_run
        if followed is not None:  # a kernel restart: the form shows the run it follows
            ready, self._ready = self._ready, False  # one estimate at the end, not one a field
            self.form.set(followed.config)  # its planned values, with their reasons
            self._ready = ready
        if self._ready:
            self.warm_up()
        else:
            self.estimate_box.value = "<i class='wb-hint'>Estimating memory and time…</i>"

    def warm_up(self) -> None:
        """Detect the hardware and show the plan and estimate for the form (the slow part of
        building the view: torch and the model's shape are loaded here)."""
        from workbench.train.estimate import detect_device

        self._ready = True
        device, name, memory = detect_device()
        described = html.escape(text.describe_hardware(device, name, memory))
        self.hardware.value = f"<b>Hardware:</b> {described}"
        self.update_estimate()
        self.session.warm_runner()  # a runner with its imports done waits for Start

    # -- actions: one Session or Run call each ------------------------------------------------
    def start(self) -> Run | None:
        """Start a run with the form's settings (`session.train`, planned as from code)."""
        config = self._config()
        if config is None:
            return None
        try:
            with self.preparing.counting():
                run = self.session.train(config)
        except (ValueError, RuntimeError) as e:
            self._refused(e)
            return None
        self._select(run.name)
        self.message.say(text.started_line(run))
        return run

    def stop(self) -> None:
        """Ask the selected run to stop after its current step (it saves a checkpoint); a run
        waiting in the queue is cancelled; one that already ended is left as it is."""
        run = self.current_run
        if run is None:
            self.message.warn(text.why_not_stop(None, None))
            return
        status = run.status
        if not status.active:
            self.message.warn(nothing_to_stop(run.name, status.state))
        elif run.stop(timeout=0).state == "cancelled":
            self.message.say(f"{run.name} left the queue: cancelled, it will not start.")
        else:
            self.message.say(f"Stopping {run.name} after its current step…")

    def resume(self) -> Run | None:
        """Continue the selected run from its last checkpoint with the form's step budget."""
        run = self.current_run
        if run is None:
            self.message.warn(text.why_not_resume(None, None))
            return None
        config = self._config()
        if config is None:
            return None
        try:
            resumed = self.session.resume(run, config)
        except (ValueError, RuntimeError) as e:
            self._refused(e)
            return None
        self._select(resumed.name)
        return resumed

    # -- reading state ------------------------------------------------------------------------
    @property
    def current_run(self) -> Run | None:
        """The first selected run in the table."""
        names = self.runs_table.value
        return self._shown.get(names[0]) if names else None

    def refresh_runs(self) -> None:
        """Rebuild the runs table from the Session and start tailing active runs. With nothing
        selected, the active run (else the latest) is selected and followed."""
        with self._lock:
            runs = self.session.runs
            self._shown = {r.name: r for r in runs}
            selected = tuple(n for n in self.runs_table.value if n in self._shown)
            if not selected and runs:
                active = [r for r in runs if r.status.active]
                selected = ((active or runs)[-1].name,)
            self.runs_table.options = [(text.run_label(r), r.name) for r in reversed(runs)]
            self.runs_table.value = selected
            self.plot.has_runs = bool(runs)
            if not selected:
                self.plot.redraw()  # the hint: no run yet
        self._update_buttons()
        if any(r.status.active for r in runs):
            self.poller.ensure_running()

    def relabel_runs(self) -> None:
        """Bring the runs table's labels (state, step) up to date, keeping the selection; a
        step is the later of the status's and the last one plotted, as in the status line."""
        with self._lock:
            options = [
                (text.run_label(r, plotted_step=self._plotted_step(r.name)), r.name)
                for r in reversed(self._shown.values())
            ]
            if options == list(self.runs_table.options):
                return
            selected = self.runs_table.value
            self._relabelling = True
            try:
                self.runs_table.options = options
                self.runs_table.value = selected
            finally:
                self._relabelling = False

    def _on_runs(self, change) -> None:
        """The Session announced a run change (new run, or a state or step of one)."""
        run = change.new
        if run is None or self._shown.get(run.name) is not run:
            self.refresh_runs()  # a new run, or a new handle on one (resumed)
        else:
            self.relabel_runs()
            if run.status.active:
                self.poller.ensure_running()
        if self._ready and self._training_here() != self._estimated_busy:
            self.update_estimate()  # a run started or ended: the time per step is (not) shown
        if self._ready and run is not None and not run.status.active:
            self.session.warm_runner()  # a run ended: the next Start finds a runner waiting

    def _on_selection(self, change) -> None:
        if not self._relabelling:
            if self.current_run is not None:  # every view follows the run selected here
                self.session.select_run(self.current_run.name)
            self.show_selected()

    def _on_selected_run(self, change) -> None:
        """A run was selected elsewhere (from code): the table follows."""
        if change.new in self._shown and self.runs_table.value[:1] != (change.new,):
            self.runs_table.value = (change.new,)

    def show_selected(self) -> None:
        """Draw the selected runs: the first in full, the others as overlays."""
        names = list(self.runs_table.value)
        with self._lock:
            self.plot.show_runs(
                names[0] if names else None, {n: self._shown[n].metrics for n in names}
            )
            self.diff.show(names)
            if len(names) > 1:  # runs side by side: open their comparison beside the curves
                self.insight.selected_index = 1
            self._show_insight(self.current_run)
        self.refresh()

    def refresh(self) -> None:
        """One poll: new metrics, progress, status and errors of the selected runs."""
        with self._lock:
            for name in self.runs_table.value:
                run = self._shown[name]
                fresh = run.new_metrics()
                self.plot.append(name, fresh)
                if run is self.current_run and any(_evaluated(m) for m in fresh):
                    self._show_insight(run)
            run = self.current_run
            if run is not None:
                self._show_status(run)
        self.relabel_runs()
        self._update_buttons()

    def _update_buttons(self) -> None:
        """Stop and Resume are enabled only when they can act; the tooltip says why not."""
        run = self.current_run
        status = run.status if run is not None else None
        for button, why, does in (
            (self.stop_button, text.why_not_stop(run, status), text.STOP_DOES),
            (
                self.resume_button,
                text.why_not_resume(run, self._config(quiet=True)),
                text.RESUME_DOES,
            ),
        ):
            button.disabled = bool(why)
            button.tooltip = why or does.format(run=run.name)

    def _on_form(self) -> None:
        """A field changed: the plan and estimate follow, and Resume (its step budget)."""
        self.update_estimate()
        self._update_buttons()

    def update_estimate(self) -> None:
        """Show the plan for the form's settings (each decided value and why), and the memory
        and time per step it needs here; no time while runs train on this machine."""
        if not self._ready:
            return
        config = self._config(quiet=True)
        if config is None:
            return
        try:
            planned = self.session.plan(config)
            est = self.session.estimate(config)
        except Exception as e:  # no model reachable yet: the form still works
            self.estimate_box.value = ""
            self.estimate_message.warn(f"No estimate yet: {e}")
            return
        busy = self._training_here()
        self._estimated_busy = busy
        self.why.value = text.plan_html(planned)
        self.estimate_box.value = text.estimate_html(est, busy)
        if est.warning:
            self.estimate_message.warn(est.warning)
        else:
            self.estimate_message.clear()

    def _training_here(self) -> list[str]:
        """The runs training now (queued ones wait and take no time)."""
        return [r.name for r in self._shown.values() if r.status.active and not r.status.waiting]

    def show(self, run: Run) -> None:
        """Select a run (e.g. one started from code) so the plot follows it live."""
        self._select(run.name)

    # -- internals ----------------------------------------------------------------------------
    def _config(self, quiet: bool = False) -> TrainConfig | None:
        """The form's config; a bad value is told once, beside its field (`quiet`: while
        typing, when the value names no field, it is not told again)."""
        try:
            return self.form.value()
        except ValueError as e:  # ConfigError, or a box that holds no number
            if not self.form.show_problem(e) and not quiet:
                self.message.error(e)
            return None

    def _refused(self, error: Exception) -> None:
        """A refusal of Start or Resume: beside the field it names, else below the buttons."""
        if not (isinstance(error, ConfigError) and self.form.show_problem(error)):
            self.message.error(error)

    def _plotted_step(self, name: str) -> int | None:
        curves = self.plot.curves.get(name)
        return int(curves.steps[-1]) if curves is not None and curves.steps else None

    def _select(self, name: str) -> None:
        self.refresh_runs()
        self.runs_table.value = (name,)
        self.message.say(f"{name}: its loss appears below as it trains.")
        self._announced = None

    def _show_status(self, run: Run) -> None:
        status = run.status
        plotted = self._plotted_step(run.name)
        self.progress.value = text.progress_of(run, status, plotted)
        self.progress_text.value = text.status_line(run, status, plotted)
        if self._announced == (run.name, status.state):
            return  # told already; leave the notice (and its open details) alone
        if status.state in ("failed", "died"):
            self.message.error(status.message, details=status.traceback_tail or run.log_tail())
        elif status.state in ("finished", "stopped"):
            where = run.adapter_path
            self.message.say(
                f"{run.name} {status.state}; adapter in {where}"
                if where
                else f"{run.name} {status.state}."
            )
        else:
            return
        self._announced = (run.name, status.state)

    def _show_insight(self, run: Run | None) -> None:
        """The followed run's probe answers and its overfitting and forgetting alarms."""
        self.probes.show(run)
        self.alarms.show(run)

    def _any_active(self) -> bool:
        return any(r.status.active for r in list(self._shown.values()))


def _evaluated(record: dict) -> bool:
    """A metrics record written at an evaluation (its loss, probe answers or keep drift)."""
    return "eval_loss" in record or "probe_seconds" in record or "keep_drift" in record
