"""A real JupyterLab on a loopback port, driven by Playwright in the system's Chromium.

Each test copies a notebook into a fresh server root, shrinks its parameters, opens it as a
person would, runs all cells through JupyterLab's own command, and looks at the page.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab server with an empty token, rooted in a temp folder; yields (url, root)."""
    root = tmp_path_factory.mktemp("lab")
    port = _free_port()
    arguments = [
        "jupyterlab",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: commands (the theme)
    ]
    yield from serve(arguments, root, port)


def serve(arguments: list[str], root: Path, port: int):
    """Start `python -m <arguments>` (a Jupyter server) for the browser tests, wait until it
    answers on `port`, yield (url, root), and stop it; skipped when Chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; `make browser` installs Debian's package")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(root / ".jupyter")}
    command = [sys.executable, "-m", *arguments, "--no-browser", "--allow-root"]
    with open(root / "server.log", "wb") as log:  # the server keeps its own copy of the handle
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError((root / "server.log").read_text()[-3000:]) from None
            time.sleep(0.5)
    yield url, root
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


def prepare_notebook(root: Path, name: str, **parameters) -> Path:
    """Copy a notebook into the server root with its parameters cell overridden."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    cell["source"] = source + "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    target = root / name
    target.write_text(json.dumps(nb))
    return target


def open_and_run_all(page, url: str, name: str, timeout_s: float = 600) -> None:
    """Open a notebook as a person would, wait for the kernel, and run every cell from the menu."""
    page.goto(f"{url}/lab/tree/{name}?reset")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector('[data-status="idle"]', state="attached", timeout=120_000)
    accept_kernel_dialog(page)
    page.locator(".jp-Cell").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    if accept_kernel_dialog(page):  # it can open late, when the kernel's session is first asked
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    wait_until_idle(page, timeout_s)


def notebook_outputs(page) -> str:
    """The open notebook's outputs as text (as nbclient's tests read them), after checking that
    every code cell ran and none raised. Read from JupyterLab's notebook model, not the page,
    so cells scrolled out of view count too."""
    cells = page.evaluate(
        """() => {
          const model = window.jupyterapp.shell.currentWidget.content.model;
          const cells = [];
          for (let i = 0; i < model.cells.length; i++) {
            const cell = model.cells.get(i);
            if (cell.type === "code")
              cells.push({count: cell.executionCount, outputs: cell.outputs.toJSON()});
          }
          return cells;
        }"""
    )
    for number, cell in enumerate(cells, 1):
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        assert not errors, f"code cell {number} raised: {errors[0]['ename']}: {errors[0]['evalue']}"
        assert cell["count"], f"code cell {number} did not run"
    joined = ["".join(t) if isinstance(t, list) else t for t in _output_texts(cells)]
    return "\n".join(joined)


def _output_texts(cells: list[dict]):
    for cell in cells:
        for output in cell["outputs"]:
            yield output.get("text") or output.get("data", {}).get("text/plain", "")


def accept_kernel_dialog(page, wait_ms: int = 3000) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (the notebook's own kernel) if it opens; a
    busy server sometimes asks even for a notebook that names its kernel. True if it did."""
    dialog = page.locator(".jp-Dialog:has-text('Select Kernel')")
    try:
        dialog.wait_for(timeout=wait_ms)
    except Exception:  # no dialog: nothing to do
        return False
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=30_000)
    return True


def wait_until_idle(page, timeout_s: float) -> None:
    """Wait until no cell shows the running mark ([*]) and the kernel is idle."""
    deadline = time.time() + timeout_s
    time.sleep(1.0)
    while time.time() < deadline:
        busy = page.locator('.jp-InputPrompt:has-text("[*]")').count()
        if busy == 0:
            return
        time.sleep(1.0)
    raise AssertionError("cells still running after the timeout")


def screenshot(page, name: str, locator=None) -> Path:
    """Keep a picture of what the page showed, as a test artefact."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (locator or page).screenshot(path=str(path))
    return path


def screenshot_view(page, view, name: str) -> Path:
    """Keep a picture of `view` (a locator) from its top, as far down as the window shows it:
    the view itself, without the cell's code above it."""
    view.evaluate("(e) => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    box = view.bounding_box()
    top = max(box["y"], 0)
    bottom = min(box["y"] + box["height"], page.viewport_size["height"] - 24)  # the status bar
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    clip = {"x": box["x"], "y": top, "width": box["width"], "height": bottom - top}
    page.screenshot(path=str(path), clip=clip)
    return path


def log_messages(page) -> int:
    """Messages in JupyterLab's log console for the open notebook: what a kernel printed
    outside any cell (a widget's handler, a thread). The status bar item shows their count and
    is hidden while there are none."""
    return page.evaluate(
        """() => {
          const item = document.querySelector('.jp-LogConsoleStatusItem');
          if (!item || item.classList.contains('lm-mod-hidden')) return 0;
          return parseInt(item.textContent.trim() || '0', 10);
        }"""
    )


def log_text(page) -> str:
    """What JupyterLab's log console holds for the open notebook (it is opened to read it)."""
    page.evaluate("() => window.jupyterapp.commands.execute('logconsole:open')")
    page.wait_for_timeout(1000)
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-LogConsolePanel .jp-OutputArea-output')]"
        ".map((e) => e.textContent).join('\\n')"
    )


RUN_IN_KERNEL = """(code) => new Promise((resolve, reject) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: true, store_history: false});
  let failed = null;
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'error') failed = msg.content.ename + ': ' + msg.content.evalue;
  };
  future.done.then(() => (failed ? reject(new Error(failed)) : resolve(true)), reject);
})"""


def run_in_kernel(page, code: str) -> None:
    """Run `code` in the open notebook's kernel, as a person would in a scratch cell (the
    notebook is left as it is); raises with the kernel's error."""
    page.evaluate(RUN_IN_KERNEL, code)
