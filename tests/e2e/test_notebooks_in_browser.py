"""The notebooks in a real JupyterLab in Chromium: what a person sees and clicks."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import wait_for
from tests.notebooks.test_notebooks import (
    COMPARE_SMALL,
    EXPLORE_SMALL,
    TRAIN_SMALL,
    check_compare_notebook,
    check_explore_notebook,
    check_train_notebook,
)

from .conftest import (
    NOTEBOOKS,
    log_messages,
    notebook_outputs,
    open_and_run_all,
    prepare_notebook,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def eventually(check, timeout: float = 180.0):
    """Wait for the page to show what `check` looks for (the suite's one wait_for)."""
    return wait_for(check, timeout=timeout, poll=0.5, what="the page to show what was expected")


@pytest.mark.notebook("01_explore_data.ipynb")
def test_explore_data_notebook(lab, page):
    url, root = lab
    shutil.copytree(NOTEBOOKS / "data", root / "data", dirs_exist_ok=True)
    ws = root / "ws-explore"
    prepare_notebook(root, "01_explore_data.ipynb", WORKSPACE=str(ws), **EXPLORE_SMALL)
    open_and_run_all(page, url, "01_explore_data.ipynb")
    check_explore_notebook(notebook_outputs(page), ws)

    browser = page.locator(".widget-vbox:has(.wb-dsb-row)").first
    rows = page.locator(".wb-dsb-row")
    eventually(lambda: rows.count() >= 5)
    browser.scroll_into_view_if_needed()
    screenshot(page, "dataset_browser")
    staged = (ws / "candidates.jsonl").read_text().splitlines()
    accepted = sum(json.loads(line)["event"] == "accept" for line in staged)  # grown rows
    label = page.locator(f"text=/Page 1 of .*{2045 + accepted:,} rows/")
    eventually(lambda: label.count() >= 1)

    # a search narrows the rows
    page.get_by_placeholder("search every turn").fill("capital letters")
    page.get_by_role("button", name="Search / filter").click()

    def rows_listed() -> int:
        label = page.locator("text=/Page [0-9,]+ of [0-9,]+: [0-9,]+ rows/").first.inner_text()
        return int(label.split(":")[1].split("rows")[0].strip().replace(",", ""))

    shown = eventually(lambda: (n := rows_listed()) < 2045 and n)  # the label follows the search
    assert 0 < shown < 2045

    # a flag sticks: the row shows it and the workspace's edit log holds it
    page.get_by_placeholder("why this row is wrong").fill("flagged from the browser")
    page.get_by_role("button", name="Flag", exact=True).click()
    eventually(
        lambda: page.locator(".wb-dsb-badge", has_text="flagged from the browser").count() > 0
    )
    edits = [json.loads(line) for line in (ws / "edits.jsonl").read_text().splitlines()]
    assert any(e.get("reason") == "flagged from the browser" for e in edits)

    # the template editor's tokens change when the template changes
    editor = page.locator(".widget-vbox:has(.tw-jinja)").first
    editor.scroll_into_view_if_needed()
    before = page.locator(".tw-text").first.inner_text()
    chips_before = page.locator(".tw-tok").count()
    screenshot(page, "template_editor")
    editor.locator("select").first.select_option("chatml")
    eventually(lambda: page.locator(".tw-text").first.inner_text() != before)
    assert "You are a helpful AI assistant named SmolLM" in before
    assert (
        "You are a helpful AI assistant named SmolLM"
        not in page.locator(".tw-text").first.inner_text()
    )
    assert page.locator(".tw-tok").count() != chips_before
    assert json.loads((ws / "session.json").read_text())["template"]["name"] == "chatml"


def field(page, label: str):
    """The input of an ipywidgets text/number field by its description."""
    return page.locator(f".widget-inline-hbox:has(label:text-is('{label}')) input").first


def plotted_points(page) -> int:
    """Points of the launcher's raw train-loss trace, as plotly holds them in the page."""
    return page.evaluate(
        "() => { const gd = document.querySelector('.wb-plot .js-plotly-plot');"
        " return gd && gd.data && gd.data[0].x ? gd.data[0].x.length : 0; }"
    )


@pytest.mark.notebook("02_train_qlora.ipynb")
def test_train_notebook_plots_live_and_stops(lab, page):
    url, root = lab
    ws = root / "ws-train"
    prepare_notebook(
        root,
        "02_train_qlora.ipynb",
        WORKSPACE=str(ws),
        **TRAIN_SMALL,
    )
    open_and_run_all(page, url, "02_train_qlora.ipynb", timeout_s=900)
    check_train_notebook(notebook_outputs(page), ws)
    launcher = page.locator(".wb-training").first
    launcher.wait_for(timeout=180_000)  # a busy machine renders the widget late
    launcher.scroll_into_view_if_needed()
    # the run of the notebook, drawn (4 steps; the page has shown 3: the step after a resume can
    # miss the page, a known fault, see the closing note)
    eventually(lambda: plotted_points(page) >= 3)
    field(page, "max steps").fill("5000")
    field(page, "max steps").press("Tab")
    launcher.locator("button[title='Start']").click()
    eventually(lambda: "run-2" in launcher.inner_text(), timeout=120)
    eventually(lambda: plotted_points(page) >= 3, timeout=300)  # the plot gains points live
    grown = plotted_points(page)
    eventually(lambda: plotted_points(page) > grown, timeout=120)
    screenshot(page, "training_launcher")
    # by its label: its tooltip (its title) now says what it stops, "Stop run-2 after ..."
    launcher.locator("button.mod-danger", has_text="Stop").first.click()
    eventually(lambda: "run-2: stopped" in launcher.inner_text(), timeout=180)
    status = json.loads((ws / "runs" / "run-2" / "status.json").read_text())
    assert status["state"] == "stopped" and status["step"] < 5000
    assert log_messages(page) == 0  # Start's tokenising showed in the view, not in the log


@pytest.mark.notebook("03_compare_and_demo.ipynb")
def test_compare_notebook_shows_answers_and_records_a_vote(lab, page):
    url, root = lab
    ws = root / "ws-compare"
    prepare_notebook(
        root,
        "03_compare_and_demo.ipynb",
        WORKSPACE=str(ws),
        **COMPARE_SMALL,
    )
    open_and_run_all(page, url, "03_compare_and_demo.ipynb", timeout_s=900)
    check_compare_notebook(notebook_outputs(page), ws, root, prompts=COMPARE_SMALL["PROMPTS"])
    votes_before = COMPARE_SMALL["PROMPTS"]
    comparator = page.locator(".wb-comparator").first
    comparator.scroll_into_view_if_needed()
    comparator.locator(".wb-prompt textarea").fill("Write this in capital letters: quiet river")
    comparator.get_by_role("button", name="Send").click()
    answers = comparator.locator(".wb-answer")
    eventually(
        lambda: (
            answers.count() >= 2
            and all(answers.nth(i).inner_text().strip() not in ("", "…") for i in range(2))
        ),
        timeout=180,
    )
    eventually(lambda: "Answered in" in comparator.inner_text(), timeout=120)
    assert comparator.get_by_role("button", name="Send").is_disabled()  # the box is empty again
    screenshot(page, "chat_comparator")
    comparator.get_by_role("button", name="A is better").click()
    eventually(lambda: len((ws / "preferences.jsonl").read_text().splitlines()) == votes_before + 1)
    last = json.loads((ws / "preferences.jsonl").read_text().splitlines()[-1])
    assert last["prompt"][-1]["content"] == "Write this in capital letters: quiet river"
