"""The views as a person sees them, in a real JupyterLab in Chromium.

One notebook shows the Workbench over the demo data with a finished run (its loss curve drawn)
and a vote. In the light and the dark theme (JupyterLab's `apputils:change-theme` command),
axe-core finds no serious or critical colour-contrast failure inside the workbench's views, tab
by tab; at a 1400 x 1000 window no view scrolls sideways and no button label is cut. The keys
work as a person expects: Enter searches, Ctrl+Enter sends a prompt (and does not run the cell),
a click on a row's text selects it. A dark-theme screenshot is kept for the README.
"""

from __future__ import annotations

import time

import nbformat
import pytest

from tests.conftest import wait_for

from .conftest import accept_kernel_dialog, screenshot, wait_until_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = ("Data", "Template", "Train", "Compare")
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}

SETUP = """
import json
import workbench as wb
from widgets import Workbench
from workbench.train import RunStatus
s = wb.Session.open({ws!r})
ds = s.load_dataset(wb.demo_data.demo_path())
run = s.prepare(wb.TrainConfig(method="lora", max_steps=40, batch_size=4, keep_set="off"))
with open(run.folder.metrics_file, "w") as f:
    for step in range(1, 41):
        record = {{"step": step, "loss": 2.5 / step ** 0.3, "learning_rate": 2e-4 * min(1, step / 5)}}
        if step % 10 == 0:
            record["eval_loss"] = 2.6 / step ** 0.3
        f.write(json.dumps(record) + "\\n")
run.folder.write_status(RunStatus("finished", step=40, max_steps=40))
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


@pytest.fixture
def app(lab, page, request):
    """The notebook run in the page; yields (page, the app's locator, the workspace). Each
    test has its own notebook and workspace (a kernel of an earlier test may still hold one)."""
    url, root = lab
    ws = root / f"ws-{request.node.name}"
    name = views_notebook(root, ws, request.node.name)
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
            screenshot(page, f"views_{theme}_{title.lower()}")
        if theme == "dark":  # the README's picture: the training launcher in the dark theme
            show_tab(page, found, "Train")
            found.locator(".wb-plot").first.evaluate("(e) => e.scrollIntoView({block: 'end'})")
            screenshot(page, "workbench_dark")
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
