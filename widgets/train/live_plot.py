"""LossPlot: one long-lived live chart of training curves, fed incrementally from metrics records.

Beside the losses it draws each method's signals when a run logs them: DPO's rewards, a reward
model's accuracy and margin, GRPO's reward (each reward's mean with its spread), KL term, answer
length and share of answers cut at the length limit.

Plotly's FigureWidget resends a whole series on every `trace.y = ...`, so updates are batched,
throttled by the caller, and long series are downsampled. Where FigureWidget is unreliable
(Colab, some VS Code setups) the same curves draw as a plain SVG chart in an HTML widget.
Before a run has a point, a one-line hint stands where the chart will be (never empty axes), and
the figure (and plotly with it) is made only then. Line colours read in both themes
(widgets.common.theme.PLOT_COLOURS); the learning rate has its own axis in scientific notation.
"""

from __future__ import annotations

import html
import math
import re
import sys
from dataclasses import dataclass, field

import ipywidgets as widgets

from ..common.parts import new_figure_widget
from ..common.theme import PLOT_COLOURS, SERIES_COLOURS

MAX_POINTS = 1500
# Training signals drawn on their own right axis when a run logs them: key -> legend label
DPO_SERIES = ("rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")
SIGNALS = {
    **{key: f"DPO {key.split('/')[1]}" for key in DPO_SERIES},
    "accuracy": "RM accuracy",  # reward models: chosen scored above rejected
    "margin": "RM margin",
    "eval_accuracy": "RM held-out accuracy",
    "eval_margin": "RM held-out margin",
    "reward": "GRPO reward",  # the weighted sum of the rewards
    "kl": "GRPO KL",
    "completions/clipped_ratio": "GRPO share cut at max length",
    "probe_score": "probe exact match",  # the probes' answers at each evaluation
}
LENGTH_KEY = "completions/mean_length"  # GRPO's answer length, on its own axis (tokens)
KEEP_KEY = "keep_drift"  # the keep set's drift from the base (workbench.keep), its own axis
EACH_REWARD = re.compile(r"rewards/(.+)/mean")  # GRPO: each reward's mean; /std its spread
REWARD_SLOTS = 4
SMOOTHING = 0.9
THEME_CSS = """<style>
.wb-plot .main-svg text { fill: var(--jp-ui-font-color1) !important; }
.wb-plot .main-svg .gridlayer path { stroke: var(--jp-border-color2) !important; }
.wb-plot .main-svg .legend .bg { fill: transparent !important; }
</style>"""
NO_RUN = "No run yet: start one above, and its loss is drawn here as it trains."
NOT_SELECTED = "No run selected: pick one in the runs table below to see its curves."


@dataclass
class Curves:
    """The series of one run, appended record by record."""

    steps: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    eval_steps: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    extra: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    rewards: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)

    def add(self, record: dict) -> None:
        step = record.get("step", 0)
        if "loss" in record and math.isfinite(record["loss"]):
            previous = self.smoothed[-1] if self.smoothed else record["loss"]
            self.steps.append(step)
            self.loss.append(record["loss"])
            self.smoothed.append(SMOOTHING * previous + (1 - SMOOTHING) * record["loss"])
            self.lr.append(record.get("learning_rate", float("nan")))
        if "eval_loss" in record:
            self.eval_steps.append(step)
            self.eval_loss.append(record["eval_loss"])
        for key in (*SIGNALS, LENGTH_KEY, KEEP_KEY):
            if key in record:
                self.extra.setdefault(key, []).append((step, record[key]))
        for key, value in record.items():
            found = EACH_REWARD.fullmatch(key)
            if found:  # (step, mean, std) of one GRPO reward
                spread = record.get(f"rewards/{found.group(1)}/std", 0.0)
                self.rewards.setdefault(found.group(1), []).append((step, value, spread))


def downsample(xs: list, ys: list, limit: int = MAX_POINTS) -> tuple[list, list]:
    """Every k-th point so at most `limit` remain, always keeping the last one."""
    if len(xs) <= limit:
        return xs, ys
    stride = math.ceil(len(xs) / limit)
    keep = list(range(0, len(xs), stride))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def default_backend() -> str:
    """'svg' in Colab (FigureWidget is unreliable there), else 'plotly'."""
    return "svg" if "google.colab" in sys.modules else "plotly"


class LossPlot:
    """Train loss (raw and smoothed), eval loss and learning rate; other runs overlay as lines."""

    def __init__(self, backend: str | None = None):
        self.backend = backend or default_backend()
        self.curves: dict[str, Curves] = {}
        self.current: str | None = None
        self.has_runs = False  # the hint says "no run yet" or "none selected"
        self.figure = None  # made on the first point (plotly is imported then)
        self.box: widgets.Box | None = None  # holds the chart once there is one
        self.hint = widgets.HTML()
        self.hint.add_class("wb-hint")
        self.chart = widgets.HTML() if self.backend != "plotly" else None
        self.widget = widgets.VBox([widgets.HTML(THEME_CSS), self.hint])
        self.widget.add_class("wb-plot")
        self.redraw()

    def show_runs(self, current: str | None, records_by_run: dict[str, list[dict]]) -> None:
        """Start over with these runs; `current` gets the full set of curves, others a line."""
        self.current = current
        self.curves = {}
        for name, records in records_by_run.items():
            self.curves[name] = Curves()
            for r in records:
                self.curves[name].add(r)
        self.redraw()

    def append(self, run: str, records: list[dict]) -> None:
        """Add new records of one run and redraw once."""
        if not records:
            return
        curves = self.curves.setdefault(run, Curves())
        for r in records:
            curves.add(r)
        self.redraw()

    def redraw(self) -> None:
        """Draw the curves held now, or the hint that says why there are none."""
        current = self.curves.get(self.current) or Curves()
        empty = not any(c.steps or c.eval_steps or c.extra for c in self.curves.values())
        self.hint.value = html.escape(self._hint()) if empty else ""
        self.hint.layout.display = "" if empty else "none"
        if self.box is not None:
            self.box.layout.display = "none" if empty else ""  # hidden, not torn down
        if empty:
            if self.figure is not None:  # hidden, it must not hold the last run's curves
                with self.figure.batch_update():
                    self._fill(self.figure, current)
            return
        if self.backend != "plotly":
            self._show(self.chart)
            self.chart.value = svg_chart(self.curves, self.current)
            return
        if (
            self.figure is None
        ):  # the data goes into the widget's first state (see new_figure_widget)
            self.figure = new_figure_widget(_make_figure(), lambda fig: self._fill(fig, current))
            self._show(self.figure)
            return
        with self.figure.batch_update():
            self._fill(self.figure, current)

    def _fill(self, fig, current: Curves) -> None:
        """Put the curves into `fig`'s traces: the current run in full, others as overlays."""
        overlays = [(n, c) for n, c in self.curves.items() if n != self.current]
        fig.data[0].x, fig.data[0].y = downsample(current.steps, current.loss)
        fig.data[1].x, fig.data[1].y = downsample(current.steps, current.smoothed)
        fig.data[2].x, fig.data[2].y = current.eval_steps, current.eval_loss
        fig.data[3].x, fig.data[3].y = downsample(current.steps, current.lr)
        fig.layout.yaxis2.range = _rate_range(current.lr)
        keys = (*SIGNALS, LENGTH_KEY, KEEP_KEY)
        for trace, key in zip(fig.data[4 : 4 + len(keys)], keys):
            points = current.extra.get(key, [])
            trace.x, trace.y = [s for s, _ in points], [v for _, v in points]
            trace.visible = bool(points)  # only what the run's method logs
        fig.layout.yaxis3.visible = bool(current.extra.get(LENGTH_KEY))
        drift = bool(current.extra.get(KEEP_KEY))
        fig.layout.yaxis5.visible = drift
        first = 4 + len(keys)
        self._draw_rewards(fig.data[first : first + REWARD_SLOTS], current)
        scored = any(current.extra.get(k) for k in SIGNALS) or bool(current.rewards)
        fig.layout.yaxis4.visible = scored  # the signals' axis, right of the learning rate's
        fig.layout.xaxis.domain = [0.08 if drift else 0, 0.88 if scored else 1]
        for k, trace in enumerate(fig.data[first + REWARD_SLOTS :]):
            name, curves = overlays[k] if k < len(overlays) else ("", Curves())
            trace.name = f"{name} (smoothed)"
            trace.x, trace.y = downsample(curves.steps, curves.smoothed)
            trace.visible = k < len(overlays)
        fig.layout.title.text = f"{self.current or 'no run selected'}"

    def _hint(self) -> str:
        if self.current is not None:
            return (
                f"{self.current}: no loss yet; its first point appears after its first logged step."
            )
        return NOT_SELECTED if self.has_runs else NO_RUN

    def _show(self, chart) -> None:
        """Put the chart on the page (once, below the hint)."""
        if self.box is None:
            self.box = widgets.Box([chart], layout={"width": "100%"})
            self.widget.children = (*self.widget.children, self.box)

    @staticmethod
    def _draw_rewards(traces, current: Curves) -> None:
        """Each GRPO reward's mean, with its spread (std) as error bars."""
        named = list(current.rewards.items())
        for k, trace in enumerate(traces):
            name, points = named[k] if k < len(named) else ("", [])
            trace.name = f"reward {name}"
            trace.x, trace.y = [p[0] for p in points], [p[1] for p in points]
            trace.error_y = {"type": "data", "array": [p[2] for p in points], "visible": True}
            trace.visible = bool(points)

    def point_count(self) -> int:
        """Points of the current run's raw loss: what a test or a person sees grow."""
        return len(self.curves.get(self.current, Curves()).loss)


OVERLAY_SLOTS = 6


def _rate_range(rates: list[float]) -> list[float] | None:
    """The learning-rate axis from 0 to a little above the highest rate logged (None: auto)."""
    finite = [r for r in rates if isinstance(r, (int, float)) and math.isfinite(r)]
    top = max(finite, default=0.0)
    return [0.0, top * 1.1] if top > 0 else None


def _make_figure():
    """The chart's traces and axes, empty (a plain Figure; new_figure_widget makes the widget)."""
    import plotly.graph_objects as go

    grey = "rgba(128,128,128,0.35)"
    colours = iter(SERIES_COLOURS * 3)
    fig = go.Figure()
    fig.add_scatter(
        name="train loss", mode="lines", line={"width": 1.2, "color": PLOT_COLOURS["raw"]}
    )
    fig.add_scatter(
        name="smoothed", mode="lines", line={"width": 2.5, "color": PLOT_COLOURS["smoothed"]}
    )
    fig.add_scatter(
        name="eval loss", mode="lines+markers", line={"dash": "dot", "color": PLOT_COLOURS["eval"]}
    )
    fig.add_scatter(
        name="learning rate",
        mode="lines",
        yaxis="y2",
        line={"width": 1.2, "color": PLOT_COLOURS["learning_rate"]},
    )
    for label in SIGNALS.values():
        fig.add_scatter(
            name=label,
            mode="lines+markers",
            yaxis="y4",
            visible=False,
            line={"color": next(colours)},
        )
    fig.add_scatter(
        name="GRPO answer length",
        mode="lines",
        yaxis="y3",
        visible=False,
        line={"color": next(colours)},
    )
    fig.add_scatter(
        name="keep drift",
        mode="lines+markers",
        yaxis="y5",
        visible=False,
        line={"color": PLOT_COLOURS["keep_drift"], "width": 2},
    )
    for _ in range(REWARD_SLOTS):
        fig.add_scatter(
            mode="lines+markers", yaxis="y4", visible=False, line={"color": next(colours)}
        )
    for _ in range(OVERLAY_SLOTS):
        fig.add_scatter(
            mode="lines", visible=False, line={"width": 1.5, "dash": "dash", "color": next(colours)}
        )
    fig.update_layout(
        height=340,
        margin={"l": 50, "r": 60, "t": 36, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": "rgb(128,128,128)"},
        xaxis={"title": "step", "gridcolor": grey},
        yaxis={"title": "loss", "gridcolor": grey},
        yaxis2={
            "title": "learning rate",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "exponentformat": "e",
            "tickformat": ".1e",
            "rangemode": "nonnegative",
            "tickmode": "auto",  # its own round ticks, not ones lined up with the loss axis
            "nticks": 5,
        },
        yaxis4={
            "title": "score",
            "overlaying": "y",
            "side": "right",
            "anchor": "free",
            "position": 1.0,
            "showgrid": False,
            "visible": False,
        },
        yaxis3={
            "title": "tokens",
            "overlaying": "y",
            "side": "left",
            "showgrid": False,
            "anchor": "free",
            "position": 0.0,
            "visible": False,
        },
        yaxis5={
            "title": "keep drift (nats/token)",
            "overlaying": "y",
            "side": "left",
            "showgrid": False,
            "anchor": "free",
            "position": 0.0,
            "rangemode": "tozero",
            "visible": False,
        },
        legend={
            "orientation": "h",
            "x": 0,
            "y": -0.22,
            "yanchor": "top",
        },  # below: clear of the toolbar
        title={"text": "no run selected", "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
    )
    return fig


def svg_chart(
    curves: dict[str, Curves], current: str | None, width: int = 640, height: int = 260
) -> str:
    """A dependency-free SVG of the smoothed losses (no script: renders anywhere HTML does)."""
    series = [(n, c.steps, c.smoothed) for n, c in curves.items() if c.steps]
    evals = curves[current] if current in curves else Curves()
    if not series:
        return f'<div class="wb-hint">{html.escape(current or "no run")}: no points yet</div>'
    xs = [x for _, s, _ in series for x in s] or [0]
    ys = [y for _, _, v in series for y in v] + evals.eval_loss
    x0, x1, y0, y1 = min(xs), max(max(xs), min(xs) + 1), min(ys), max(max(ys), min(ys) + 1e-6)

    def point(x: float, y: float) -> str:
        return f"{40 + (x - x0) / (x1 - x0) * (width - 60):.1f},{height - 30 - (y - y0) / (y1 - y0) * (height - 50):.1f}"

    lines = []
    for name, steps, values in series:
        xs_, ys_ = downsample(steps, values, 400)
        colour = "var(--jp-brand-color1)" if name == current else "var(--jp-ui-font-color2)"
        pts = " ".join(point(x, y) for x, y in zip(xs_, ys_))
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"><title>{html.escape(name)}</title></polyline>'
        )
    for x, y in zip(evals.eval_steps, evals.eval_loss):
        lines.append(
            f'<circle cx="{point(x, y).split(",")[0]}" cy="{point(x, y).split(",")[1]}" r="3" fill="var(--jp-warn-color1)"/>'
        )
    drift = svg_drift(evals.extra.get(KEEP_KEY, []), point, y0, y1)
    lines.append(drift[0])
    label = f'<text x="40" y="14" fill="var(--jp-ui-font-color1)" font-size="12">{html.escape(current or "")} loss {y0:.3g}–{y1:.3g}, steps {x0:g}–{x1:g}{drift[1]}</text>'
    return f'<svg width="{width}" height="{height}" role="img">{label}{"".join(lines)}</svg>'


def svg_drift(points: list[tuple[float, float]], point, y0: float, y1: float) -> tuple[str, str]:
    """The keep drift as a dashed line on its own scale (0 to its highest value drawn over the
    loss's height), and the label's words for that scale; ('', '') without drift."""
    if not points:
        return "", ""
    top = max(max(v for _, v in points), 1e-6)
    scaled = [(x, y0 + max(v, 0.0) / top * (y1 - y0)) for x, v in points]
    pts = " ".join(point(x, y) for x, y in scaled)
    colour = PLOT_COLOURS["keep_drift"]
    line = (
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="5 3" '
        f'points="{pts}"><title>keep drift</title></polyline>'
    )
    return line, f"; keep drift (dashed) 0–{top:.3g} nats/token"
