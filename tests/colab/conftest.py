"""The Colab tier: classic Notebook 6.5 (the open front end closest to Colab's widget protocol,
ipywidgets 7.7.1 through widgetsnbextension 3.6) on a loopback port, in the system's Chromium.

These tests run only in the environment `make test-colab` builds at Colab's pins
(WORKBENCH_TIER=colab); elsewhere they are not collected, since the classic server and
ipywidgets 7 are not installed there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e import conftest as e2e
from tests.e2e.conftest import _free_port, serve

browser, page = e2e.browser, e2e.page  # the same Chromium fixtures as the JupyterLab tests

COLAB_TIER = os.environ.get("WORKBENCH_TIER") == "colab"
PINS = Path(__file__).with_name("constraints.txt")

collect_ignore_glob = [] if COLAB_TIER else ["test_*.py"]


@pytest.fixture(scope="session")
def classic(tmp_path_factory):
    """A classic Notebook 6.5 server with an empty token, rooted in a temp folder; yields
    (url, root)."""
    root = tmp_path_factory.mktemp("classic")
    port = _free_port()
    arguments = [
        "notebook",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--NotebookApp.token=",
        "--NotebookApp.password=",
        f"--notebook-dir={root}",
        "--NotebookApp.disable_check_xsrf=True",
    ]
    yield from serve(arguments, root, port)


def open_classic(page, url: str, name: str) -> None:
    """Open a notebook in classic Notebook and wait until its kernel is connected and idle."""
    page.goto(f"{url}/notebooks/{name}")
    page.wait_for_function(
        "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
        " && Jupyter.notebook.kernel.is_connected()",
        timeout=120_000,
    )
    page.wait_for_selector(
        "#kernel_indicator_icon.kernel_idle_icon", state="attached", timeout=120_000
    )


def run_all_classic(page, timeout_s: float) -> list[dict]:
    """Run every cell (Cell > Run All), wait until none is running, and return the cells as
    the notebook holds them; fails naming the first cell that raised or did not run."""
    page.evaluate("() => Jupyter.notebook.execute_all_cells()")
    deadline = time.time() + timeout_s
    time.sleep(1.0)
    while _running(page):
        if time.time() > deadline:
            raise AssertionError(f"cells still running after {timeout_s:.0f} s")
        time.sleep(1.0)
    cells = page.evaluate(
        "() => Jupyter.notebook.toJSON().cells.filter((c) => c.cell_type === 'code')"
    )
    for number, cell in enumerate(cells, 1):
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        assert not errors, f"code cell {number} raised: {errors[0]['ename']}: {errors[0]['evalue']}"
        assert cell["execution_count"], f"code cell {number} did not run"
    return cells


def _running(page) -> bool:
    return page.evaluate(
        "() => Jupyter.notebook.get_cells().some((c) => c.cell_type === 'code'"
        " && c.input_prompt_number === '*')"
        " || !document.querySelector('#kernel_indicator_icon.kernel_idle_icon')"
    )
