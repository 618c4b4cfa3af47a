"""The notebooks in a real JupyterLab in Chromium: what a person sees and clicks."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from .conftest import NOTEBOOKS, open_and_run_all, prepare_notebook, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def eventually(check, timeout=60.0, poll=0.5):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("the page never showed what was expected")
        time.sleep(poll)


def test_explore_data_notebook(lab, page):
    url, root = lab
    shutil.copytree(NOTEBOOKS / "data", root / "data", dirs_exist_ok=True)
    ws = root / "ws-explore"
    prepare_notebook(root, "01_explore_data.ipynb", WORKSPACE=str(ws), MAX_NEW_TOKENS=8)
    open_and_run_all(page, url, "01_explore_data.ipynb")

    browser = page.locator(".widget-vbox:has(.wb-dsb-row)").first
    rows = page.locator(".wb-dsb-row")
    eventually(lambda: rows.count() >= 5)
    browser.scroll_into_view_if_needed()
    screenshot(page, "dataset_browser")
    label = page.locator("text=/Page 1 of .*2,045 rows/")
    assert label.count() >= 1

    # a search narrows the rows
    page.get_by_placeholder("search every turn").fill("capital letters")
    page.get_by_role("button", name="Search / filter").click()
    narrowed = eventually(
        lambda: page.locator("text=/Page 1 of [0-9,]+: [0-9,]+ rows/").first.inner_text()
    )
    shown = int(narrowed.split(":")[1].split("rows")[0].strip().replace(",", ""))
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
