"""TrainingLauncher: the run form, its plan and estimate, Start/Stop/Resume, a live loss plot, runs.

The form is generated from TrainConfig's field metadata (widgets.forms.ConfigForm) and starts at
TrainConfig's own defaults; what is left open is decided by `session.plan`, the same for code and
this view, and shown with its reasons. Every button calls one Session (or Run) method. The
Session's run watcher announces run changes ("runs"); a background thread here only tails the
metrics of the runs shown, for the plot, touching widget traits only (ipykernel >= 7.1 allows it).
"""

from __future__ import annotations

import html
import threading
import time
import traceback

import ipywidgets as widgets

from workbench import Session
from workbench.data.excerpt import clip
from workbench.train import Run, TrainConfig
from workbench.train.estimate import detect_device
from workbench.train.run import nothing_to_stop

from .export_panel import ExportPanel
from .forms import ConfigForm
from .live_plot import LossPlot
from .notice import Notice

POLL_SECONDS = 0.5
NOTE_CHARS = 2_000  # a note in the progress line


class TrainingLauncher(widgets.VBox):
    """Set up a LoRA/QLoRA/DPO/reward-model/GRPO run, start it, watch it live, stop and resume
    it; each method's own fields show only while it is chosen."""

    config_class: type[TrainConfig] = TrainConfig  # the form shows every field of this class

    def __init__(self, session: Session, plot_backend: str | None = None):
        self.session = session
        self.form = ConfigForm(self.config_class)
        self.fields = self.form.fields
        self.why = widgets.HTML()
        self.estimate_box = widgets.HTML()
        self.estimate_message = Notice()
        self.start_button = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop")
        self.resume_button = widgets.Button(description="Resume", icon="repeat")
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, layout={"width": "50%"})
        self.progress_text = widgets.HTML()
        self.message = Notice()
        self.runs_table = widgets.SelectMultiple(rows=6, layout={"width": "100%"})
        self.plot = LossPlot(plot_backend)
        self._shown: dict[str, Run] = {}
        self._lock = threading.RLock()
        self._poller: threading.Thread | None = None
        self._relabelling = False  # the table's labels change; the selection does not
        self._announced: tuple[str, str] | None = None  # the run state the notice tells of

        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.resume_button.on_click(lambda _: self.resume())
        self.runs_table.observe(self._on_selection, names="value")
        for field in self.fields.values():
            field.observe(lambda _: self.update_estimate(), names="value")
        session.observe(self._on_runs, names="runs")

        self.export = ExportPanel(session)
        self.export_box = widgets.Accordion(children=[self.export], titles=("Export a model",))
        self.export_box.selected_index = None
        device, name, memory = detect_device()
        controls = widgets.HBox([self.start_button, self.stop_button, self.resume_button])
        super().__init__(
            [
                widgets.HTML(f"<b>Hardware:</b> {html.escape(_describe(device, name, memory))}"),
                self.form,
                self.why,
                self.estimate_box,
                self.estimate_message,
                controls,
                widgets.HBox([self.progress, self.progress_text]),
                self.message,
                self.plot.widget,
                widgets.HTML("<b>Runs</b> (select several to overlay their curves)"),
                self.runs_table,
                self.export_box,
            ]
        )
        self.add_class("wb-training")
        self.refresh_runs()
        self.update_estimate()

    # -- actions: one Session or Run call each ------------------------------------------------
    def start(self) -> Run | None:
        """Start a run with the form's settings (`session.train`, planned as from code)."""
        config = self._config()
        if config is None:
            return None
        try:
            run = self.session.train(config)
        except (ValueError, RuntimeError) as e:
            self.message.error(e)
            return None
        self._select(run.name)
        return run

    def stop(self) -> None:
        """Ask the selected run to stop after its current step (it saves a checkpoint); a run
        waiting in the queue is cancelled; one that already ended is left as it is."""
        run = self.current_run
        if run is None:
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
        config = self._config()
        if run is None or config is None:
            return None
        try:
            resumed = self.session.resume(run, config)
        except (ValueError, RuntimeError) as e:
            self.message.error(e)
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
        """Rebuild the runs table from the Session and start tailing active runs."""
        with self._lock:
            runs = self.session.runs
            self._shown = {r.name: r for r in runs}
            selected = self.runs_table.value
            self.runs_table.options = [(_run_label(r), r.name) for r in reversed(runs)]
            self.runs_table.value = tuple(n for n in selected if n in self._shown)
        if any(r.status.active for r in runs):
            self._ensure_poller()

    def relabel_runs(self) -> None:
        """Bring the runs table's labels (state, step) up to date, keeping the selection."""
        with self._lock:
            options = [(_run_label(r), r.name) for r in reversed(self._shown.values())]
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
                self._ensure_poller()

    def _on_selection(self, change) -> None:
        if not self._relabelling:
            self.show_selected()

    def show_selected(self) -> None:
        """Draw the selected runs: the first in full, the others as overlays."""
        names = list(self.runs_table.value)
        with self._lock:
            self.plot.show_runs(
                names[0] if names else None, {n: self._shown[n].metrics for n in names}
            )
        self.refresh()

    def refresh(self) -> None:
        """One poll: new metrics, progress, status and errors of the selected runs."""
        with self._lock:
            for name in self.runs_table.value:
                run = self._shown[name]
                self.plot.append(name, run.new_metrics())
            run = self.current_run
            if run is not None:
                self._show_status(run)

    def update_estimate(self) -> None:
        """Show the plan for the form's settings (each decided value and why), and the memory
        and time per step it needs here."""
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
        self.why.value = _plan_html(planned)
        self.estimate_box.value = (
            f"Estimate: about <b>{est.total_gb:.2f} GB</b> (runtime {est.runtime_gb:.2f}, weights "
            f"{est.weights_gb:.2f}, LoRA + optimizer {est.lora_gb + est.optimizer_gb:.2f}, "
            f"activations {est.activations_gb:.2f}, logits {est.logits_gb:.2f}) and "
            f"<b>{est.seconds_per_step:.1f} s per step</b> on {html.escape(est.device)}."
        )
        if est.warning:
            self.estimate_message.warn(est.warning)
        else:
            self.estimate_message.clear()

    def show(self, run: Run) -> None:
        """Select a run (e.g. one started from code) so the plot follows it live."""
        self._select(run.name)

    # -- internals ----------------------------------------------------------------------------
    def _config(self, quiet: bool = False) -> TrainConfig | None:
        """The form's config; a bad value is told (in the estimate's line while typing)."""
        try:
            return self.form.value()
        except ValueError as e:  # ConfigError, or a box that holds no number
            (self.estimate_message.warn if quiet else self.message.error)(str(e))
            return None

    def _select(self, name: str) -> None:
        self.refresh_runs()
        self.runs_table.value = (name,)
        self.message.say(f"{name}: its loss appears below as it trains.")
        self._announced = None

    def _show_status(self, run: Run) -> None:
        status = run.status
        total = status.max_steps or run.config.max_steps
        self.progress.value = status.step / total if total and total > 0 else 0
        eta = status.extra.get("eta_s")
        speed = status.extra.get("tokens_per_s")
        parts = [
            f"{html.escape(run.name)}: {html.escape(status.state)}, step {status.step}/{total}"
        ]
        if status.active and eta is not None:
            parts.append(f"ETA {eta / 60:.1f} min")
        if speed:
            parts.append(f"{speed:.0f} tokens/s")
        peak = status.extra.get("peak_memory_gb")  # the runner's own peak, measured
        if peak:
            parts.append(f"peak {peak:.2f} GB")
        if run.metrics_problem:  # a torn metrics file: what was complete still shows
            parts.append(html.escape(clip(run.metrics_problem, NOTE_CHARS)))
        self.progress_text.value = " · ".join(parts)
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

    def _ensure_poller(self) -> None:
        with self._lock:
            if self._poller is None or not self._poller.is_alive():
                self._poller = threading.Thread(
                    target=self._poll, daemon=True, name="training-plot"
                )
                self._poller.start()

    def _poll(self) -> None:
        """Tail the shown runs' metrics into the plot while one of them is active."""
        while True:
            time.sleep(POLL_SECONDS)
            try:
                self.refresh()
            except Exception as e:  # a view must never kill its own updates silently
                self.message.error(
                    f"The live view stopped updating: {e}", details=traceback.format_exc()
                )
                return
            if not any(r.status.active for r in list(self._shown.values())):
                self.refresh()  # the last records of a run that just ended
                return


def _plan_html(planned: TrainConfig) -> str:
    """The values plan decided for the form's config, each with its reason (escaped)."""
    rows = "".join(
        f"<tr><td><b>{html.escape(name)}</b></td>"
        f"<td>{html.escape(repr(getattr(planned, name, '')))}</td>"
        f"<td>{html.escape(reason)}</td></tr>"
        for name, reason in planned.reasons.items()
    )
    return (
        "<details><summary>Planned for this model and hardware (why each value)</summary>"
        f"<table>{rows}</table></details>"
    )


def _run_label(run: Run) -> str:
    """One line of the runs table; a run waiting in the queue shows its place and what it
    waits for."""
    status = run.status
    state = status.state
    if status.waiting and "position" in status.extra:
        state = f"queued #{status.extra['position']}, waits for {status.extra.get('waits_for')}"
    peak = status.extra.get("peak_memory_gb")
    memory = f" · peak {peak:.2f} GB" if peak else ""
    return (
        f"{run.name} · {state} · step {status.step}/{status.max_steps} · {run.config.method}"
        f"{memory}"
    )


def _describe(device: str, name: str, memory: float | None) -> str:
    size = f", {memory:.0f} GB" if memory else ""
    return f"{name}{size}" if device == "cuda" else f"CPU{size} (no GPU found: training is slow)"
