"""Titles and tooltips read back the same on ipywidgets 7 (Colab) and 8 (JupyterLab 4)."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from widgets.common.compat import title_of, titled, tooltip_of, with_tooltip


@pytest.mark.parametrize("container", [widgets.Tab, widgets.Accordion])
def test_titled_gives_each_child_its_title(container):
    made = titled(container([widgets.HTML(), widgets.HTML()]), ["First", "Second"])
    assert [title_of(made, i) for i in range(2)] == ["First", "Second"]


@pytest.mark.parametrize(
    "widget", [widgets.Button(), widgets.Dropdown(options=["a"]), widgets.IntText(), widgets.HTML()]
)
def test_a_tooltip_set_on_any_widget_reads_back(widget):
    assert tooltip_of(with_tooltip(widget, "What this does")) == "What this does"
    state = widget.get_state()  # the front end gets it under the trait this generation has
    assert "What this does" in (state.get("tooltip"), state.get("description_tooltip"))
