"""The views as a person sees them, in a real JupyterLab in Chromium.

One notebook shows the Workbench over the demo data with a finished run (its loss curve drawn)
and a vote. In the light and the dark theme (JupyterLab's `apputils:change-theme` command),
axe-core finds no serious or critical colour-contrast failure inside the workbench's views, tab
by tab; at a 1400 x 1000 window no view scrolls sideways and no button label is cut. The keys
work as a person expects: Enter searches, Ctrl+Enter sends a prompt (and does not run the cell),
a click on a row's text selects it. A screenshot of each tab in each theme is kept for the
README (docs/images/views_<theme>_<tab>.png).
"""

from __future__ import annotations

import re
import time

import nbformat
import pytest

from tests.conftest import wait_for

from .conftest import (
    accept_kernel_dialog,
    log_messages,
    log_text,
    run_in_kernel,
    screenshot,
    screenshot_view,
    wait_until_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = ("Data", "Template", "Train", "Compare")
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}

SETUP = """
import json
import workbench as wb
from widgets import Workbench
from workbench import models
from workbench.answers.adapters import write_random_adapter
from workbench.train import RunStatus
s = wb.Session.open({ws!r})
ds = s.load_dataset(wb.demo_data.demo_path())
config = wb.TrainConfig(method="lora", max_steps=40, batch_size=4, keep_set="off")
earlier, run = s.prepare(config), s.prepare(config)
base = models.load_model(s.model)
for seed, each in enumerate((earlier, run)):  # two finished runs with adapters
    write_random_adapter(base, each.folder.adapter_dir, s.model, s.template, r=2, seed=seed)
    each.folder.write_status(RunStatus("finished", step=40, max_steps=40))
del base
with open(run.folder.metrics_file, "w") as f:
    for step in range(1, 41):
        record = {{"step": step, "loss": 2.5 / step ** 0.3, "learning_rate": 2e-4 * min(1, step / 5)}}
        if step % 10 == 0:
            record["eval_loss"] = 2.6 / step ** 0.3
        f.write(json.dumps(record) + "\\n")
s.record_preference("Name a colour.", chosen="Blue.", rejected="Colour.", chosen_model="base",
                    rejected_model=run.name)
app = Workbench(s)
for box in (app.data.grow_box, app.train.export_box):
    box.selected_index = 0  # opened, so what they hold is checked too
app.compare.send = lambda: app.compare.message.say("sent: " + app.compare.prompt.value)
app
"""


def views_notebook(root, ws, name: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(SETUP.format(ws=str(ws)))]
    nbformat.write(nb, root / f"{name}.ipynb")
    return f"{name}.ipynb"


def eventually(check, timeout: float = 300.0):  # a machine busy with training is slow
    return wait_for(check, timeout=timeout, poll=0.5, what="the page to show what was expected")


@pytest.fixture(scope="module")
def app(lab, browser):
    """The notebook run in a page of its own; yields (page, the app's locator, the workspace).
    The tests of this file share it, each leaving the view as a person would find it (light
    theme); the last one, the newcomer's walk, may change what it holds."""
    url, root = lab
    ws = root / "ws-views"
    name = views_notebook(root, ws, "views")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/lab/tree/{name}?reset")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector('[data-status="idle"]', state="attached", timeout=120_000)
    accept_kernel_dialog(page)
    page.locator(".jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")
    wait_until_idle(page, 300)
    found = page.locator(".wb-app").first
    found.wait_for(timeout=120_000)
    # the slow part loads after the first paint: wait until the template and estimate are in
    eventually(lambda: "trained of" in text_of(page, ".wb-template"), timeout=180)
    eventually(lambda: "per step" in text_of(page, ".wb-training"), timeout=180)
    yield page, found, ws
    set_theme(page, "light")  # the server's settings outlive the page
    context.close()


def text_of(page, selector: str) -> str:
    """All text under the first element matching `selector`, shown or not."""
    return page.evaluate(
        "(s) => { const e = document.querySelector(s); return e ? e.textContent : ''; }", selector
    )


def set_theme(page, theme: str) -> None:
    page.evaluate(
        "(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})",
        THEMES[theme],
    )
    light = "true" if theme == "light" else "false"
    eventually(lambda: page.evaluate("() => document.body.dataset.jpThemeLight") == light)
    time.sleep(1.0)  # the theme's stylesheet applies after the flag flips


def dismiss_notifications(page) -> None:
    """Close JupyterLab's "get notified about news?" toast: it covers the views."""
    for label in ("No", "Dismiss"):
        button = page.locator(".jp-toast-button", has_text=label)
        if button.count():
            button.first.click()


def show_tab(page, app, title: str) -> None:
    app.locator(".lm-TabBar-tab", has_text=title).first.click()
    page.wait_for_timeout(700)  # plots resize to the panel


def contrast_failures(page) -> list[str]:
    """Serious and critical colour-contrast failures axe-core finds in the shown view."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page,
        context={"include": [[".wb-app"]]},
        options={"runOnly": {"type": "rule", "values": ["color-contrast"]}},
    )
    assert results.response["passes"], "axe found no text to check: the view did not render"
    return [
        f"{node['html'][:160]}: {node.get('failureSummary', '')[:240]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
        for node in violation["nodes"]
    ]


OVERFLOW = """(root) => {
  const shown = (e) => e.offsetParent !== null || e === root;
  const boxes = [root, ...root.querySelectorAll('.widget-box, .widget-html-content, .jupyter-widgets')];
  const wide = boxes.filter((e) => shown(e) && e.scrollWidth > e.clientWidth + 1)
    .map((e) => `${e.className.slice(0, 80)}: ${e.scrollWidth} > ${e.clientWidth}`);
  const cut = [...root.querySelectorAll('.widget-button, .widget-toggle-button, .widget-label')]
    .filter((b) => shown(b) && b.scrollWidth > b.clientWidth + 1)
    .map((b) => `label "${b.textContent.trim()}": ${b.scrollWidth} > ${b.clientWidth}`);
  return [...wide, ...cut];
}"""


def test_views_read_in_both_themes(app):
    page, found, _ = app
    failures = {}
    for theme in THEMES:
        set_theme(page, theme)
        dismiss_notifications(page)
        for title in TABS:
            show_tab(page, found, title)
            failures.update({f"{theme}/{title}: {f}": 1 for f in contrast_failures(page)})
            screenshot_view(page, found, f"views_{theme}_{title.lower()}")  # docs/images
        if theme == "dark":  # the README's picture: the training launcher in the dark theme
            show_tab(page, found, "Train")
            found.locator(".wb-plot").first.evaluate("(e) => e.scrollIntoView({block: 'end'})")
            screenshot(page, "workbench_dark")
    set_theme(page, "light")  # as the next test expects it
    assert not failures, "\n".join(failures)


def test_no_view_scrolls_sideways_and_no_button_label_is_cut(app):
    page, found, _ = app
    assert page.viewport_size == {"width": 1400, "height": 1000}
    problems = []
    for title in TABS:
        show_tab(page, found, title)
        problems += [f"{title}: {p}" for p in found.evaluate(OVERFLOW)]
    assert not problems, "\n".join(problems)
    show_tab(page, found, "Train")  # the chart of the followed run, its legend named
    legend = page.evaluate(
        "() => [...document.querySelectorAll('.wb-plot .legendtext')].map((e) => e.textContent)"
    )
    assert legend[:4] == ["train loss", "smoothed", "eval loss", "learning rate"], legend


def test_keys_and_clicks_do_what_a_person_expects(app):
    page, found, _ = app
    show_tab(page, found, "Data")
    label = found.locator("text=/Page 1 of [0-9,]+: [0-9,]+ rows/").first

    def listed() -> int:
        return int(label.inner_text().split(":")[1].split("row")[0].strip().replace(",", ""))

    everything = listed()
    search = page.get_by_placeholder("search every turn")
    search.fill("capital letters")
    search.press("Enter")  # no button clicked
    eventually(lambda: 0 < listed() < everything)

    rows = found.locator(".wb-dsb-row")
    rows.nth(2).locator(".wb-turn").first.click()  # the text, not the #N button
    eventually(lambda: "wb-selected" in (rows.nth(2).get_attribute("class") or ""))

    show_tab(page, found, "Compare")
    prompts_before = page.locator(".jp-InputPrompt").first.inner_text()
    box = found.locator(".wb-prompt-input").first
    box.click()
    box.press_sequentially("hello from the keys")
    eventually(lambda: box.input_value() == "hello from the keys")  # typed into the box itself
    box.press("Control+Enter")
    eventually(lambda: "sent: hello from the keys" in found.inner_text())
    time.sleep(1.0)
    assert page.locator(".jp-InputPrompt").first.inner_text() == prompts_before  # no cell ran


CODE_WORDS = re.compile(r"\b[a-z]+_[a-z_]+\b|\bsession\.|\w=(True|False)\b|Traceback")


def selected_text(locator) -> list[str]:
    """The options a <select> shows as chosen."""
    return locator.evaluate("(s) => [...s.selectedOptions].map((o) => o.textContent.trim())")


def test_a_newcomers_path_meets_no_snag(app):
    """Issue 35's walk: each place a newcomer stumbled, as the page shows it now."""
    page, found, _ = app
    dismiss_notifications(page)
    # Data: the open file and the selected row are on the page; the eval split is made here
    show_tab(page, found, "Data")
    data = found.locator(".wb-data").first
    data.get_by_role("button", name="Show all").click()  # an earlier test searched
    assert data.get_by_placeholder("path, folder or hub name").input_value().endswith("demo.jsonl")
    rows = data.locator(".wb-dsb-row")
    rows.nth(3).locator(".wb-turn").first.click()
    row_box = data.locator(".widget-inline-hbox:has(label:text-is('Row')) input").first
    eventually(lambda: row_box.input_value() == "3")
    data.get_by_role("button", name="Make eval split").click()
    eventually(lambda: "eval rows" in data.locator(".wb-split").first.inner_text())

    # Train: a bad value is told once, beside its field, in the form's words
    show_tab(page, found, "Train")
    train = found.locator(".wb-training").first
    rate = train.locator(".widget-inline-hbox:has(label:text-is('learning rate')) input").first
    rate.fill("2")
    rate.press("Tab")
    errors = train.locator(".wb-notice-error:visible")
    eventually(lambda: errors.count() == 1)
    assert train.locator(".wb-config-form .wb-notice-error:visible").count() == 1  # in the form
    assert errors.first.inner_text().startswith("learning rate must be between 0 and 1")
    assert train.locator(".wb-invalid").count() == 1
    train.get_by_role("button", name="Start").click()
    time.sleep(1.0)
    assert errors.count() == 1  # Start refused it without a second message
    rate.fill("")
    rate.press("Tab")
    eventually(lambda: errors.count() == 0 and train.locator(".wb-invalid").count() == 0)

    # the run selected in the table is the one the other views offer
    table = train.locator(".widget-select-multiple select").first
    table.select_option(index=1)  # newest first: run-1
    export = train.locator(".wb-export select").first
    eventually(lambda: selected_text(export) == ["run-1"])
    show_tab(page, found, "Compare")
    compare = found.locator(".wb-comparator").first
    pickers = compare.locator(".wb-pickers select")
    eventually(lambda: [selected_text(pickers.nth(k))[0] for k in range(2)] == ["base", "run-1"])
    start_from = compare.locator(".wb-preferences select").first
    assert selected_text(start_from) == ["run-1"]
    batch = compare.locator(".widget-select-multiple select").first
    assert selected_text(batch) == ["base", "run-1"]

    # Send waits for a prompt; a blind chat hides who answers until the vote
    send = compare.get_by_role("button", name="Send")
    compare.locator(".wb-prompt textarea").fill("")  # an earlier test typed there
    eventually(lambda: send.is_disabled())
    run_in_kernel(
        page,
        "del app.compare.send\napp.compare.settings_form.fields['max_new_tokens'].value = 4",
    )
    compare.get_by_text("Blind (A/B in random order)").click()
    compare.locator(".wb-prompt textarea").fill("Name a colour.")
    eventually(lambda: not send.is_disabled())
    send.click()
    eventually(lambda: "Answered in" in compare.inner_text(), timeout=180)
    assert not pickers.first.is_visible()
    assert compare.get_by_text("Blind: who answers in A and B shows after your vote.").is_visible()
    compare.get_by_role("button", name="A is better").click()
    eventually(lambda: pickers.first.is_visible())

    # presentation mode: the chat alone, no votes panel, no old errors
    run_in_kernel(page, "app.compare.message.error('An old error from the rehearsal.')")
    eventually(lambda: compare.locator(".wb-notice-error:visible").count() == 1)
    compare.get_by_role("button", name="Presentation").click()
    eventually(lambda: not compare.locator(".wb-preferences").first.is_visible())
    eventually(lambda: compare.locator(".wb-notice-error:visible").count() == 0)
    screenshot(page, "comparator_presentation")

    # nothing said on the page is in code words, and nothing reached JupyterLab's log
    said = found.evaluate(
        "(a) => [...a.querySelectorAll('.wb-notice-line')].map((e) => e.textContent)"
    )
    words = [re.sub(r"\S*/\S*", "", s) for s in said]  # paths keep their own names
    assert words and not [s for s in words if CODE_WORDS.search(s)], said
    assert log_messages(page) == 0, log_text(page)
