"""The small parts every view builds with: a button wired to a function, a plotly figure widget."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets


def make_button(label: str, on_click: Callable[[], None], **style) -> widgets.Button:
    """A Button that calls `on_click()` (no argument), the way every view wires its buttons."""
    made = widgets.Button(description=label, **style)
    made.on_click(lambda _: on_click())
    return made


def new_figure_widget(figure, fill):
    """A FigureWidget made from `figure` after `fill(figure)` put the data in. Its first state
    then holds every trace whole: plotly's widget, restyled before the page shows it, loses
    the traces' names (the legend read "trace 0"), so nothing is restyled until it is shown."""
    import plotly.graph_objects as go

    fill(figure)
    return go.FigureWidget(figure)
