"""LengthPlot: the token-length histogram of the data browser, or a hint before it is drawn.

A person sees one line saying what the plot will show until they ask for it; then prompt,
response and total tokens share one set of bins, the x-axis runs over the data (not out to the
training length), and the training length is a dashed line when it falls inside the data. The
figure (and plotly with it) is made on the first plot.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..common.html_text import escape_text
from ..common.parts import new_figure_widget
from ..common.theme import plural

HINT = (
    "No lengths plotted yet: “Token lengths” tokenises the rows under the session's template "
    "and draws prompt, response and total tokens."
)
COLOURS = {
    "prompt": "#1f77b4",
    "response": "#c2571a",
    "total": "#808080",
}  # widgets.common.theme: 3:1
CSS = """<style>
.wb-dsb-plot .main-svg text { fill: var(--jp-ui-font-color1) !important; }
.wb-dsb-plot .main-svg .gridlayer path { stroke: var(--jp-border-color2) !important; }
.wb-dsb-plot .main-svg .legend .bg { fill: transparent !important; }
.wb-dsb-plot .shapelayer path { stroke: var(--jp-error-color1) !important; }
</style>"""


class LengthPlot(widgets.Box):
    """The histogram's place in the view: the hint, then the figure once `draw` is called."""

    def __init__(self) -> None:
        self.figure = None
        self.hint = widgets.HTML(CSS + f"<div class='wb-hint'>{escape_text(HINT)}</div>")
        super().__init__([self.hint], layout={"width": "100%"})

    @property
    def drawn(self) -> bool:
        """Whether a histogram has been drawn (a stale one is worth a note; a hint is not)."""
        return self.figure is not None

    def draw(self, stats) -> str:
        """Draw `stats` (workbench.data.lengths.DatasetStats); returns the note under it."""
        edges, counts = stats.histograms()
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        top = edges[-1] if len(edges) > 1 else 1
        beyond = stats.max_length is not None and stats.max_length > top

        def fill(figure) -> None:
            for trace in figure.data:
                trace.x, trace.y = centers, counts[trace.name]
                trace.width = edges[1] - edges[0] if len(edges) > 1 else None
            figure.layout.xaxis.range = [0, top * 1.02]  # the data's, not the limit's
            figure.layout.shapes = [] if beyond else _limit_line(stats.max_length)

        if self.figure is None:  # made with its data (common.parts.new_figure_widget says why)
            self.figure = new_figure_widget(_figure(), fill)
            self.figure.add_class("wb-dsb-plot")
            self.children = [widgets.HTML(CSS), self.figure]
        else:
            with self.figure.batch_update():
                fill(self.figure)
        return _note(stats, beyond)


def _note(stats, beyond: bool) -> str:
    s = stats.summary()
    if beyond:
        where = f"every row is under the training length ({stats.max_length:,})"
    else:
        where = f"{s['over_max_length']:,} over {stats.max_length} (the dashed line)"
    total = s["total_tokens"]
    return escape_text(
        f"{plural(s['rows'], 'row')}; total tokens median {total.get('p50', 0):.0f}, "
        f"p99 {total.get('p99', 0):.0f}; {where}; {s['template_errors']:,} the template "
        "cannot render."
    )


def _figure():
    import plotly.graph_objects as go

    figure = go.Figure(
        layout={
            "barmode": "overlay",
            "height": 280,
            "margin": {"l": 50, "r": 10, "t": 10, "b": 70},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "xaxis": {"title": {"text": "tokens"}, "rangemode": "nonnegative"},
            "yaxis": {"title": {"text": "rows"}},
            "legend": {
                "orientation": "h",
                "x": 0,
                "y": -0.3,
                "yanchor": "top",
            },  # clear of the toolbar
        }
    )
    for name, colour in COLOURS.items():
        figure.add_bar(x=[], y=[], name=name, opacity=0.6, marker={"color": colour})
    return figure


def _limit_line(max_length: int | None) -> list[dict]:
    if max_length is None:
        return []
    return [
        {
            "type": "line",
            "x0": max_length,
            "x1": max_length,
            "y0": 0,
            "y1": 1,
            "yref": "paper",
            "line": {"dash": "dash", "width": 2},
        }
    ]
