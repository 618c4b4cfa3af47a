"""Two small widgets for what ipywidgets cannot hear: a click on HTML, and Ctrl/Cmd+Enter.

ipywidgets' HTML widget sends no events and its Textarea no keys (in JupyterLab 4 a Textarea
only syncs its value), so a row's text could not be clicked and no key could send a prompt.
These are anywidget widgets (already a dependency: plotly's FigureWidget is built on it), each
a few lines of JavaScript that send one message back; the Python side calls its handlers, so
tests and scripts drive them with `click()` and `submit()` as a person would with the mouse
and the keys. Keys pressed in the prompt box are kept from JupyterLab's own shortcuts
(`data-lm-suppress-shortcuts`), so Ctrl+Enter sends the prompt instead of running the cell.
"""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import ipywidgets as widgets
import traitlets

CLICK_ESM = """
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "wb-clickable";
  box.style.cursor = "pointer";
  const draw = () => { box.innerHTML = model.get("value"); };
  draw();
  model.on("change:value", draw);
  box.addEventListener("click", (event) => {
    // unfolding a long turn or selecting text to copy is not choosing the row
    if (event.target.closest("summary, a, button, input, textarea, select")) return;
    if (String(window.getSelection() || "").length) return;
    model.send({ event: "click" });
  });
  el.appendChild(box);
}
export default { render };
"""

PROMPT_ESM = """
function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "wb-prompt-input";
  area.setAttribute("data-lm-suppress-shortcuts", "true");
  area.setAttribute("aria-label", model.get("placeholder") || "Prompt");
  const sync = () => {
    area.placeholder = model.get("placeholder");
    area.rows = model.get("rows");
    area.disabled = model.get("disabled");
    if (area.value !== model.get("value")) area.value = model.get("value");
  };
  sync();
  model.on("change", sync);
  area.addEventListener("input", () => { model.set("value", area.value); model.save_changes(); });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.stopPropagation();
      model.set("value", area.value);
      model.save_changes();
      model.send({ event: "submit" });
    }
  });
  el.appendChild(area);
}
export default { render };
"""

PROMPT_CSS = """
.wb-prompt-input { width: 100%; box-sizing: border-box; resize: vertical;
  font-family: var(--jp-ui-font-family); font-size: var(--jp-widgets-font-size);
  color: var(--jp-widgets-input-color); background: var(--jp-widgets-input-background-color);
  border: var(--jp-widgets-input-border-width) solid var(--jp-widgets-input-border-color);
  padding: var(--jp-widgets-input-padding) calc(var(--jp-widgets-input-padding) * 2); }
.wb-prompt-input:focus { border-color: var(--jp-widgets-input-focus-border-color); outline: none; }
.wb-prompt-input::placeholder { color: var(--jp-ui-font-color2); }
"""


class ClickableHTML(anywidget.AnyWidget):
    """HTML (escaped by the caller, as for widgets.HTML) that calls its handlers when clicked."""

    _esm = CLICK_ESM
    value = traitlets.Unicode("").tag(sync=True)

    def __init__(self, value: str = "", **kwargs) -> None:
        super().__init__(value=value, **kwargs)
        self._handlers = widgets.CallbackDispatcher()
        self.on_msg(self._on_message)

    def on_click(self, callback: Callable[[ClickableHTML], None]) -> None:
        """Call `callback(self)` when a person clicks the text."""
        self._handlers.register_callback(callback)

    def click(self) -> None:
        """What a click does: call the handlers."""
        self._handlers(self)

    def _on_message(self, _widget, content: dict, _buffers) -> None:
        if content.get("event") == "click":
            self.click()


class PromptBox(anywidget.AnyWidget):
    """A text area whose Ctrl+Enter (Cmd+Enter on a Mac) calls the submit handlers; `value`
    follows every keystroke, as a Textarea's does."""

    _esm = PROMPT_ESM
    _css = PROMPT_CSS
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    rows = traitlets.Int(3).tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._handlers = widgets.CallbackDispatcher()
        self.on_msg(self._on_message)

    def on_submit(self, callback: Callable[[PromptBox], None]) -> None:
        """Call `callback(self)` on Ctrl/Cmd+Enter."""
        self._handlers.register_callback(callback)

    def submit(self) -> None:
        """What Ctrl/Cmd+Enter does: call the handlers."""
        self._handlers(self)

    def _on_message(self, _widget, content: dict, _buffers) -> None:
        if content.get("event") == "submit":
            self.submit()
