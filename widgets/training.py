"""TrainingLauncher: the run form, its estimate, Start/Stop/Resume, a live loss plot, the runs table.

Every button calls one Session (or Run) method; the view only reads run folders through Run
handles. A background thread tails the metrics of active runs and redraws at most twice a second;
it touches widget traits only (never an Output widget), which ipykernel >= 7.1 allows.
"""

from __future__ import annotations

import html
import threading
import time

import ipywidgets as widgets

from workbench import Session
from workbench.train import ConfigError, Run, TrainConfig
from workbench.train.config import for_hardware
from workbench.train.estimate import detect_device

from .live_plot import LossPlot

POLL_SECONDS = 0.5
AUTO = "auto"


class TrainingLauncher(widgets.VBox):
    """Set up a LoRA/QLoRA run, start it, watch it live, stop and resume it."""

    def __init__(self, session: Session, plot_backend: str | None = None):
        self.session = session
        device, self.device_name, memory = detect_device()
        defaults = for_hardware(self.device_name)
        self.fields = _form_fields(defaults, session.max_length)
        self.why = widgets.HTML()
        self.estimate_box = widgets.HTML()
        self.start_button = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop")
        self.resume_button = widgets.Button(description="Resume", icon="repeat")
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, layout={"width": "50%"})
        self.progress_text = widgets.HTML()
        self.message = widgets.HTML()
        self.details = widgets.HTML()
        self.details_box = widgets.Accordion(children=[self.details], titles=("Log tail",))
        self.details_box.selected_index = None
        self.runs_table = widgets.SelectMultiple(rows=6, layout={"width": "100%"})
        self.plot = LossPlot(plot_backend)
        self._shown: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._relabelling = False  # the table's labels change; the selection does not

        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.resume_button.on_click(lambda _: self.resume())
        self.runs_table.observe(self._on_selection, names="value")
        for field in self.fields.values():
            field.observe(lambda _: self.update_estimate(), names="value")
        session.observe(lambda _: self.refresh_runs(), names="runs")

        form = widgets.GridBox(
            list(self.fields.values()),
            layout={
                "grid_template_columns": "repeat(3, minmax(200px, 1fr))",
                "grid_gap": "4px 12px",
            },
        )
        controls = widgets.HBox([self.start_button, self.stop_button, self.resume_button])
        super().__init__(
            [
                widgets.HTML(
                    f"<b>Hardware:</b> {html.escape(_describe(device, self.device_name, memory))}"
                ),
                form,
                self.why,
                self.estimate_box,
                controls,
                widgets.HBox([self.progress, self.progress_text]),
                self.message,
                self.plot.widget,
                widgets.HTML("<b>Runs</b> (select several to overlay their curves)"),
                self.runs_table,
                self.details_box,
            ]
        )
        self.add_class("wb-training")
        self.refresh_runs()
        self.update_estimate()

    # -- actions: one Session or Run call each ------------------------------------------------
    def start(self) -> Run | None:
        """Start a run with the form's settings."""
        config = self._config()
        if config is None:
            return None
        try:
            run = self.session.train(config)
        except (ValueError, RuntimeError) as e:
            return self._error(str(e))
        self._select(run.name)
        return run

    def stop(self) -> None:
        """Ask the selected run to stop after its current step (it saves a checkpoint)."""
        run = self.current_run
        if run is not None:
            run.stop(timeout=0)
            self._say(f"Stopping {run.name} after its current step…")

    def resume(self) -> Run | None:
        """Continue the selected run from its last checkpoint, to the form's step count."""
        run = self.current_run
        config = self._config()
        if run is None or config is None:
            return None
        try:
            resumed = self.session.train(config, resume=run)
        except (ValueError, RuntimeError) as e:
            return self._error(str(e))
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
        runs = self.session.runs
        self._shown = {r.name: r for r in runs}
        selected = self.runs_table.value
        self.runs_table.options = [(_run_label(r), r.name) for r in reversed(runs)]
        self.runs_table.value = tuple(n for n in selected if n in self._shown)
        if any(r.status.active for r in runs):
            self._ensure_poller()

    def relabel_runs(self) -> None:
        """Bring the runs table's labels (state, step) up to date, keeping the selection."""
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
        """Show memory and time per step for the form's settings, and why each default was chosen."""
        config = self._config(quiet=True)
        if config is None:
            return
        try:
            planned = self.session.plan(config)
            est = self.session.estimate(config)
        except Exception as e:  # no model reachable yet: the form still works
            self.estimate_box.value = _note(f"No estimate yet: {e}")
            return
        self.why.value = (
            "<details><summary>Why these defaults</summary><ul>"
            + "".join(
                f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                for k, v in planned.reasons.items()
            )
            + "</ul></details>"
        )
        text = (
            f"Estimate: about <b>{est.total_gb:.2f} GB</b> (weights {est.weights_gb:.2f}, LoRA + "
            f"optimizer {est.lora_gb + est.optimizer_gb:.2f}, activations {est.activations_gb:.2f}) "
            f"and <b>{est.seconds_per_step:.1f} s per step</b> on {html.escape(est.device)}."
        )
        self.estimate_box.value = text + (_note(est.warning, warn=True) if est.warning else "")

    # -- internals ----------------------------------------------------------------------------
    def _config(self, quiet: bool = False) -> TrainConfig | None:
        values = {k: w.value for k, w in self.fields.items()}
        lr = str(values.pop("learning_rate")).strip()
        checkpointing = values.pop("gradient_checkpointing")
        try:
            return TrainConfig(
                **values,
                learning_rate=None if lr in ("", AUTO) else float(lr),
                gradient_checkpointing={AUTO: None, "on": True, "off": False}[checkpointing],
            )
        except (ConfigError, ValueError) as e:
            if not quiet:
                self._error(str(e))
            return None

    def show(self, run: Run) -> None:
        """Select a run (e.g. one started from code) so the plot follows it live."""
        self._select(run.name)

    def _select(self, name: str) -> None:
        self.refresh_runs()
        self.runs_table.value = (name,)
        self._say(f"{name}: its loss appears below as it trains.")

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
        if run.metrics_problem:  # a torn metrics file: what was complete still shows
            parts.append(html.escape(run.metrics_problem))
        self.progress_text.value = " · ".join(parts)
        if status.state in ("failed", "died"):
            self._error(status.message)
            self.details.value = (
                f"<pre>{html.escape(status.traceback_tail or run.log_tail())}</pre>"
            )
        elif status.state in ("finished", "stopped"):
            where = run.adapter_path
            self._say(
                f"{run.name} {status.state}; adapter in {where}"
                if where
                else f"{run.name} {status.state}."
            )

    def _ensure_poller(self) -> None:
        if self._poller is None or not self._poller.is_alive():
            self._poller = threading.Thread(target=self._poll, daemon=True, name="training-poller")
            self._poller.start()

    def _poll(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            try:
                self.refresh()
                self.relabel_runs()
                self.session.check_runs()  # tells other views (the comparator) of ended runs
            except Exception as e:  # a view must never kill its own updates silently
                self._error(f"The live view stopped updating: {e}")
                return
            if not any(r.status.active for r in self._shown.values()):
                return

    def _say(self, text: str) -> None:
        self.message.value = _note(text)

    def _error(self, text: str) -> None:
        self.message.value = _note(text, warn=True)
        return None


def _form_fields(defaults: TrainConfig, max_length: int) -> dict[str, widgets.Widget]:
    style = {"description_width": "120px"}
    lr = AUTO if defaults.learning_rate is None else str(defaults.learning_rate)
    checkpointing = {None: AUTO, True: "on", False: "off"}[defaults.gradient_checkpointing]
    return {
        "method": widgets.Dropdown(
            options=["qlora", "lora"], value=defaults.method, description="method", style=style
        ),
        "max_steps": widgets.IntText(value=150, description="max steps", style=style),
        "learning_rate": widgets.Text(value=lr, description="learning rate", style=style),
        "lr_schedule": widgets.Dropdown(
            options=["cosine", "linear", "constant"],
            value=defaults.lr_schedule,
            description="schedule",
            style=style,
        ),
        "batch_size": widgets.IntText(
            value=defaults.batch_size, description="batch size", style=style
        ),
        "grad_accumulation": widgets.IntText(
            value=defaults.grad_accumulation, description="grad accum.", style=style
        ),
        "max_length": widgets.IntText(value=max_length, description="max length", style=style),
        "batching": widgets.Dropdown(
            options=["padding_free", "padded", "packed"],
            value=defaults.batching,
            description="batching",
            style=style,
        ),
        "gradient_checkpointing": widgets.Dropdown(
            options=[AUTO, "on", "off"],
            value=checkpointing,
            description="grad. checkpt.",
            style=style,
        ),
        "lora_r": widgets.IntText(value=defaults.lora_r, description="LoRA rank", style=style),
        "lora_alpha": widgets.IntText(
            value=defaults.lora_alpha, description="LoRA alpha", style=style
        ),
        "lora_dropout": widgets.FloatText(
            value=defaults.lora_dropout, description="LoRA dropout", style=style
        ),
        "seed": widgets.IntText(value=defaults.seed, description="seed", style=style),
        "num_processes": widgets.IntText(
            value=defaults.num_processes, description="processes", style=style
        ),
    }


def _run_label(run: Run) -> str:
    status = run.status
    return (
        f"{run.name} · {status.state} · step {status.step}/{status.max_steps} · {run.config.method}"
    )


def _describe(device: str, name: str, memory: float | None) -> str:
    size = f", {memory:.0f} GB" if memory else ""
    return f"{name}{size}" if device == "cuda" else f"CPU{size} (no GPU found: training is slow)"


def _note(text: str, warn: bool = False) -> str:
    colour = "var(--jp-warn-color0)" if warn else "var(--jp-ui-font-color1)"
    return f'<div style="color: {colour}">{html.escape(text)}</div>'
