"""LossPlot: one long-lived live chart of training curves, fed incrementally from metrics records.

Beside the losses it draws each method's signals when a run logs them: DPO's rewards, a reward
model's accuracy and margin, GRPO's reward (each reward's mean with its spread), KL term, answer
length and share of answers cut at the length limit.

Plotly's FigureWidget resends a whole series on every `trace.y = ...`, so updates are batched,
throttled by the caller, and long series are downsampled. Where FigureWidget is unreliable
(Colab, some VS Code setups) the same curves draw as a plain SVG chart in an HTML widget.
"""

from __future__ import annotations

import html
import math
import re
import sys
from dataclasses import dataclass, field

import ipywidgets as widgets

MAX_POINTS = 1500
# Training signals drawn on the right axis when a run logs them: metrics key -> legend label
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
}
LENGTH_KEY = "completions/mean_length"  # GRPO's answer length, on its own axis (tokens)
EACH_REWARD = re.compile(r"rewards/(.+)/mean")  # GRPO: each reward's mean; /std its spread
REWARD_SLOTS = 4
SMOOTHING = 0.9
THEME_CSS = """<style>
.wb-plot .main-svg text { fill: var(--jp-ui-font-color1) !important; }
.wb-plot .main-svg .gridlayer path { stroke: var(--jp-border-color2) !important; }
</style>"""


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
        for key in (*SIGNALS, LENGTH_KEY):
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
        if self.backend == "plotly":
            self.figure = _make_figure()
            self.widget = widgets.VBox([widgets.HTML(THEME_CSS), self.figure])
        else:
            self.figure = None
            self.widget = widgets.HTML()
        self.widget.add_class("wb-plot")

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
        if self.figure is None:
            self.widget.value = svg_chart(self.curves, self.current)
            return
        current = self.curves.get(self.current) or Curves()
        overlays = [(n, c) for n, c in self.curves.items() if n != self.current]
        with self.figure.batch_update():
            fig = self.figure
            fig.data[0].x, fig.data[0].y = downsample(current.steps, current.loss)
            fig.data[1].x, fig.data[1].y = downsample(current.steps, current.smoothed)
            fig.data[2].x, fig.data[2].y = current.eval_steps, current.eval_loss
            fig.data[3].x, fig.data[3].y = downsample(current.steps, current.lr)
            signals = fig.data[4 : 4 + len(SIGNALS) + 1]
            for trace, key in zip(signals, (*SIGNALS, LENGTH_KEY)):
                points = current.extra.get(key, [])
                trace.x, trace.y = [s for s, _ in points], [v for _, v in points]
                trace.visible = bool(points)  # only what the run's method logs
            fig.layout.yaxis3.visible = bool(current.extra.get(LENGTH_KEY))
            first = 4 + len(SIGNALS) + 1
            self._draw_rewards(fig.data[first : first + REWARD_SLOTS], current)
            for k, trace in enumerate(fig.data[first + REWARD_SLOTS :]):
                name, curves = overlays[k] if k < len(overlays) else ("", Curves())
                trace.name = f"{name} (smoothed)"
                trace.x, trace.y = downsample(curves.steps, curves.smoothed)
                trace.visible = k < len(overlays)
            fig.layout.title.text = f"{self.current or 'no run selected'}"

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


def _make_figure():
    import plotly.graph_objects as go

    grey = "rgba(128,128,128,0.35)"
    fig = go.FigureWidget()
    fig.add_scatter(name="train loss", mode="lines", line={"width": 1}, opacity=0.35)
    fig.add_scatter(name="smoothed", mode="lines", line={"width": 2.5})
    fig.add_scatter(name="eval loss", mode="lines+markers", line={"dash": "dot"})
    fig.add_scatter(name="learning rate", mode="lines", yaxis="y2", line={"width": 1})
    for label in SIGNALS.values():
        fig.add_scatter(name=label, mode="lines", yaxis="y2", visible=False)
    fig.add_scatter(name="GRPO answer length", mode="lines", yaxis="y3", visible=False)
    for _ in range(REWARD_SLOTS):
        fig.add_scatter(mode="lines+markers", yaxis="y2", visible=False)
    for _ in range(OVERLAY_SLOTS):
        fig.add_scatter(mode="lines", line={"width": 1.5, "dash": "dash"}, visible=False)
    fig.update_layout(
        height=340,
        margin={"l": 50, "r": 60, "t": 36, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": "rgb(128,128,128)"},
        xaxis={"title": "step", "gridcolor": grey},
        yaxis={"title": "loss", "gridcolor": grey},
        yaxis2={"title": "learning rate", "overlaying": "y", "side": "right", "showgrid": False},
        yaxis3={
            "title": "tokens",
            "overlaying": "y",
            "side": "left",
            "showgrid": False,
            "anchor": "free",
            "position": 0.0,
            "visible": False,
        },  # fmt: skip
        legend={"orientation": "h", "y": -0.25},
        title={"text": "no run selected", "font": {"size": 13}},
    )
    return fig


def svg_chart(
    curves: dict[str, Curves], current: str | None, width: int = 640, height: int = 260
) -> str:
    """A dependency-free SVG of the smoothed losses (no script: renders anywhere HTML does)."""
    series = [(n, c.steps, c.smoothed) for n, c in curves.items() if c.steps]
    evals = curves[current] if current in curves else Curves()
    if not series:
        return f'<div style="color: var(--jp-ui-font-color2)">{html.escape(current or "no run")}: no points yet</div>'
    xs = [x for _, s, _ in series for x in s] or [0]
    ys = [y for _, _, v in series for y in v] + evals.eval_loss
    x0, x1, y0, y1 = min(xs), max(max(xs), min(xs) + 1), min(ys), max(max(ys), min(ys) + 1e-6)

    def point(x: float, y: float) -> str:
        return f"{40 + (x - x0) / (x1 - x0) * (width - 60):.1f},{height - 30 - (y - y0) / (y1 - y0) * (height - 50):.1f}"

    lines = []
    for name, steps, values in series:
        xs_, ys_ = downsample(steps, values, 400)
        colour = "var(--jp-brand-color1)" if name == current else "var(--jp-ui-font-color3)"
        pts = " ".join(point(x, y) for x, y in zip(xs_, ys_))
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"><title>{html.escape(name)}</title></polyline>'
        )
    for x, y in zip(evals.eval_steps, evals.eval_loss):
        lines.append(
            f'<circle cx="{point(x, y).split(",")[0]}" cy="{point(x, y).split(",")[1]}" r="3" fill="var(--jp-warn-color1)"/>'
        )
    label = f'<text x="40" y="14" fill="var(--jp-ui-font-color1)" font-size="12">{html.escape(current or "")} loss {y0:.3g}–{y1:.3g}, steps {x0:g}–{x1:g}</text>'
    return f'<svg width="{width}" height="{height}" role="img">{label}{"".join(lines)}</svg>'
