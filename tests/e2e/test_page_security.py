"""Untrusted text in the page: dataset rows and model answers never run as code."""

from __future__ import annotations

import nbformat
import pytest

from .conftest import open_and_run_all, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOADS = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "<iframe src=\"javascript:window.__pwned = 'iframe'\"></iframe>",
    "[click me](javascript:window.__pwned='link')",
    "**bold** and <b onmouseover=\"window.__pwned='html'\">raw html in markdown</b>",
    "math stays text: $x^2 + y^2$",
]


def security_notebook(root, ws) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import workbench as wb\nfrom widgets import ChatComparator, DatasetBrowser\n"
            f"PAYLOADS = {PAYLOADS!r}\n"
            f"s = wb.Session.open({str(ws)!r})\n"
            "s.load_dataset([{'messages': [{'role': 'user', 'content': p}, "
            "{'role': 'assistant', 'content': p}]} for p in PAYLOADS])\n"
            "DatasetBrowser(s)"
        ),
        nbformat.v4.new_code_cell(
            "c = ChatComparator(s)\n"
            "answer = '\\n\\n'.join(PAYLOADS)\n"
            "c.panes[0].show(answer, markdown=True, history=[{'role': 'user', 'content': PAYLOADS[0]}])\n"
            "c.panes[1].show(answer, markdown=False, history=[])\n"
            "c"
        ),
    ]
    nbformat.write(nb, root / "security.ipynb")
    return "security.ipynb"


def test_no_payload_runs_and_each_shows_as_text(lab, page):
    url, root = lab
    name = security_notebook(root, root / "ws-security")
    open_and_run_all(page, url, name)
    rows, answers = page.locator(".wb-dsb-row"), page.locator(".wb-answer")
    rows.nth(len(PAYLOADS) - 1).wait_for(timeout=120_000)  # widgets render after the kernel idles
    answers.nth(1).wait_for(timeout=120_000)
    assert rows.count() >= len(PAYLOADS) and answers.count() >= 2
    page.mouse.move(10, 10)
    for el in page.locator(".wb-answer b, .wb-dsb-row b").all():
        el.hover()  # a mouse-over handler would fire here
    assert page.evaluate("window.__pwned") is None
    shown = page.locator(".jp-OutputArea").all_inner_texts()
    text = "\n".join(shown)
    for payload in ("<script>window.__pwned", "<img src=x onerror=", "<iframe src=", "$x^2 + y^2$"):
        assert payload in text, f"{payload!r} was not shown literally"
    assert page.locator(".wb-answer img, .wb-dsb-row img, .jp-OutputArea iframe").count() == 0
    assert page.locator(".wb-answer a[href^='javascript'], .wb-dsb-row a").count() == 0
    assert page.locator(".wb-answer mjx-container, .wb-dsb-row mjx-container").count() == 0
    screenshot(page, "security")
