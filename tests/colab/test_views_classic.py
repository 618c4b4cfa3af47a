"""The views on Colab's widget stack (ipykernel 6.17, ipywidgets 7.7.1, plotly 5.24) in classic
Notebook 6.5, the open front end closest to Colab's, in Chromium.

One notebook shows the Workbench over a small demo dataset. Each tab renders what it holds;
Start trains a short run whose loss points reach the live chart (plotly's FigureWidget, fed
from the launcher's background thread) and the SVG chart Colab gets; the comparator streams
an answer from its background thread into the page, token batch by token batch.
"""

from __future__ import annotations

import time

import nbformat
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import screenshot

from .conftest import open_classic, run_all_classic

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = """
import workbench as wb
from widgets import Workbench, TrainingLauncher
s = wb.Session.open({ws!r})
s.load_dataset(wb.demo_data.generate(120, seed=1, tasks=["change_case"], handwritten=False))
s.split(eval_fraction=0.1, seed=0)
s.set_max_length(128)
app = Workbench(s)
app
"""
SVG_CHART = """
svg_launcher = TrainingLauncher(s, plot_backend="svg")  # what Colab gets (live_plot.default_backend)
svg_launcher
"""
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
TABS = {  # what each tab shows once it is drawn
    "Data": "rows",
    "Template": "trained of",
    "Train": "per step",
    "Compare": "Send",
}


def eventually(check, timeout: float = 240.0):
    return wait_for(check, timeout=timeout, poll=0.5, what="the page to show what was expected")


def tab_bar(app, title: str):
    return app.locator(".p-TabBar-tab, .lm-TabBar-tab", has_text=title).first


def plotted_points(page) -> int:
    """Points of the launcher's raw train-loss trace, as plotly holds them in the page."""
    return page.evaluate(
        "() => { const gd = document.querySelector('.wb-plot .js-plotly-plot');"
        " return gd && gd.data && gd.data[0].x ? gd.data[0].x.length : 0; }"
    )


def svg_points(page) -> int:
    """Points of the first curve of the SVG chart (the launcher shown second)."""
    return page.evaluate(
        "() => { const lines = document.querySelectorAll('.wb-training')[1]"
        "?.querySelectorAll('svg polyline') || [];"
        " return lines.length ? lines[0].getAttribute('points').trim().split(/\\s+/).length : 0; }"
    )


@pytest.fixture
def workbench_page(classic, page, request):
    """The notebook run in classic Notebook; yields (page, the app's locator, workspace).
    Each test has its own notebook, workspace and kernel, shut down after it."""
    url, root = classic
    name = request.node.name
    ws = root / f"ws-{name}"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.cells = [nbformat.v4.new_code_cell(SETUP.format(ws=str(ws)))]
    nbformat.write(nb, root / f"{name}.ipynb")
    open_classic(page, url, f"{name}.ipynb")
    run_all_classic(page, timeout_s=300)
    app = page.locator(".wb-app").first
    app.wait_for(timeout=120_000)
    yield page, app, ws
    page.evaluate("() => Jupyter.notebook.session.delete()")  # its kernel ends with the test


def test_the_views_work_on_colabs_widget_stack(workbench_page):
    """One walk, as a person on Colab would take it: each tab, a run, then its adapter."""
    page, app, ws = workbench_page
    each_tab_renders(page, app)
    start_draws_the_runs_points_in_both_charts(page, app, ws)
    the_comparator_streams_an_answer(page, app)


def each_tab_renders(page, app) -> None:
    for title, shows in TABS.items():
        tab_bar(app, title).click()
        eventually(lambda shows=shows: shows in app.inner_text())
        screenshot(page, f"colab_tier_{title.lower()}")


def start_draws_the_runs_points_in_both_charts(page, app, ws) -> None:
    tab_bar(app, "Train").click()
    steps = app.locator(".widget-inline-hbox:has(label:text-is('max steps')) input").first
    steps.fill("4")
    steps.press("Tab")
    # no keep answers at the end: the comparator would answer beside them on two CPU cores
    keep_set = app.locator(".widget-inline-hbox:has(label:text-is('keep set')) textarea").first
    keep_set.fill("off")
    keep_set.press("Tab")
    app.get_by_role("button", name="Start").click()
    eventually(lambda: "run-1" in app.inner_text(), timeout=120)
    eventually(lambda: plotted_points(page) >= 3, timeout=400)  # points arrive while it trains
    eventually(lambda: (ws / "runs" / "run-1" / "adapter").exists(), timeout=400)
    screenshot(page, "colab_tier_live_chart")
    page.evaluate(
        "(code) => { const cell = Jupyter.notebook.insert_cell_at_bottom('code');"
        " cell.set_text(code); cell.execute(); }",
        SVG_CHART,
    )
    eventually(lambda: svg_points(page) >= 3, timeout=180)


def the_comparator_streams_an_answer(page, app) -> None:
    """Base against run-1; the first pane's text is read every 0.1 s until the answer ends."""
    tab_bar(app, "Compare").click()
    comparator = page.locator(".wb-comparator").first
    pickers = comparator.locator(".widget-hbox:has(button:has-text('+ pane')) select")
    eventually(lambda: "run-1" in pickers.nth(1).inner_text())  # the new adapter is offered
    pickers.nth(1).select_option(label="run-1")
    comparator.locator(".wb-prompt-input").fill("Write a short poem about a quiet river.")
    comparator.get_by_role("button", name="Send").click()
    answer = comparator.locator(".wb-answer").first
    seen: list[str] = []
    deadline = time.time() + 240
    while time.time() < deadline:  # every text the pane showed, in order
        text = answer.inner_text().strip()
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        if "Answered in" in comparator.inner_text() and len(seen) > 1:  # Send waits for a prompt
            break
        time.sleep(0.1)
    partial = [t for t in seen if t != "…"]
    assert len(partial) >= 2, f"the answer did not stream; the pane showed {seen}"
    assert all(partial[-1].startswith(t[:20]) for t in partial[:-1]), partial  # it grew
    screenshot(page, "colab_tier_comparator")
