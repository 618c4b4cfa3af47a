"""What differs between ipywidgets 7 (Colab pins 7.7.1) and 8 (JupyterLab 4), in one place.

Two traits the views use moved between the generations: a Tab's or Accordion's titles (8: the
`titles` trait; 7: `set_title` per child) and a tooltip (8: `tooltip` on every widget; 7:
`tooltip` on buttons, `description_tooltip` on the others). Views call these helpers and never
name either trait, so the same code reads the same on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import ipywidgets as widgets

IPYWIDGETS_MAJOR = int(widgets.__version__.split(".")[0])

W = TypeVar("W", bound=widgets.Widget)


def titled(container: W, titles: Sequence[str]) -> W:
    """Give a Tab's or Accordion's children their titles, in order; returns the container."""
    if container.has_trait("titles"):
        container.titles = tuple(titles)
    else:
        for index, title in enumerate(titles):
            container.set_title(index, title)
    return container


def title_of(container: widgets.Widget, index: int) -> str:
    """The title of a Tab's or Accordion's child `index` ("" when it has none)."""
    return container.get_title(index) or ""


def with_tooltip(widget: W, text: str) -> W:
    """Set the text shown when the pointer rests on `widget`; returns the widget."""
    setattr(widget, _tooltip_trait(widget), text)
    return widget


def tooltip_of(widget: widgets.Widget) -> str:
    """The tooltip `with_tooltip` set ("" when none)."""
    return getattr(widget, _tooltip_trait(widget)) or ""


def _tooltip_trait(widget: widgets.Widget) -> str:
    if widget.has_trait("tooltip"):
        return "tooltip"
    if widget.has_trait("description_tooltip"):
        return "description_tooltip"
    raise TypeError(f"{type(widget).__name__} has no tooltip in ipywidgets {widgets.__version__}")
