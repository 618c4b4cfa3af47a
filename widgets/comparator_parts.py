"""Pieces of the comparator: the shared settings form, answer panes, and the message line.

No business logic: the form only turns its fields into GenerationSettings, panes only show
escaped text, and the message line shows one sentence with the details one click away.
"""

from __future__ import annotations

import html
import traceback

import ipywidgets as widgets

from workbench.answers.generate import GenerationSettings

from .safe_markdown import markdown_html, plain_html

STYLE = {"description_width": "130px"}
CSS = """
<style>
.wb-comparator .wb-pane { border: 1px solid var(--jp-border-color2); border-radius: 4px;
  background: var(--jp-layout-color1); color: var(--jp-ui-font-color1); padding: 6px 10px;
  min-width: 0; flex: 1 1 0; }
.wb-comparator .wb-pane-title { font-weight: bold; color: var(--jp-brand-color1); }
.wb-comparator .wb-answer { min-height: 4em; overflow-wrap: anywhere; }
.wb-comparator .wb-answer pre { background: var(--jp-layout-color2); padding: 4px; }
.wb-comparator.wb-present .wb-answer { font-size: var(--jp-content-font-size3); }
.wb-comparator.wb-present .wb-pane-title { font-size: var(--jp-content-font-size4); }
.wb-comparator .wb-turn-user { color: var(--jp-ui-font-color2); white-space: pre-wrap;
  border-left: 3px solid var(--jp-brand-color1); padding-left: 6px; margin: 4px 0; }
.wb-comparator .wb-turn-past { color: var(--jp-ui-font-color2); }
</style>
"""


class SettingsForm(widgets.GridBox):
    """The generation settings every contestant shares."""

    def __init__(self, defaults: GenerationSettings | None = None):
        d = defaults or GenerationSettings(max_new_tokens=128)
        self.fields = {
            "max_new_tokens": widgets.BoundedIntText(
                d.max_new_tokens, min=1, max=4096, description="max new tokens", style=STYLE
            ),
            "temperature": widgets.BoundedFloatText(
                d.temperature, min=0, max=5, step=0.1, description="temperature", style=STYLE
            ),
            "top_p": widgets.BoundedFloatText(
                d.top_p, min=0.01, max=1, step=0.05, description="top p", style=STYLE
            ),
            "repetition_penalty": widgets.BoundedFloatText(
                d.repetition_penalty,
                min=0.5,
                max=3,
                step=0.05,
                description="repetition pen.",
                style=STYLE,
            ),
            "seed": widgets.IntText(d.seed, description="seed", style=STYLE),
            "system_prompt": widgets.Textarea(
                d.system_prompt or "", description="system prompt", rows=2, style=STYLE
            ),
        }
        super().__init__(
            list(self.fields.values()),
            layout={"grid_template_columns": "repeat(3, minmax(220px, 1fr))", "grid_gap": "4px"},
        )

    def settings(self) -> GenerationSettings:
        """The form as GenerationSettings (ValueError for a bad value)."""
        values = {k: w.value for k, w in self.fields.items()}
        values["system_prompt"] = values["system_prompt"].strip() or None
        return GenerationSettings.from_json(values)


class AnswerPane(widgets.VBox):
    """One contestant's chat: its earlier turns, the question, and the answer as it streams.

    Everything shown is escaped; answers may render as the safe Markdown subset.
    """

    def __init__(self):
        self.title = widgets.HTML()
        self.body = widgets.HTML()
        self.title.add_class("wb-pane-title")
        self.body.add_class("wb-answer")
        super().__init__([self.title, self.body])
        self.add_class("wb-pane")
        self.text = ""
        self.history: list[dict] = []  # the turns shown above the answer

    def show_title(self, letter: str, name: str | None) -> None:
        """Title "A" (blind) or "A · run-3"."""
        label = f"{letter} · {name}" if name else letter
        self.title.value = html.escape(label)

    def show(self, text: str, markdown: bool = True, history: list[dict] | None = None) -> None:
        """Show the turns so far (`history`, kept until replaced) and the answer `text`."""
        self.text = text
        if history is not None:
            self.history = [m for m in history if m.get("role") != "system"]
        render = markdown_html if markdown else plain_html
        turns = []
        for m in self.history:
            if m["role"] == "user":
                turns.append(f"<div class='wb-turn-user'>{html.escape(m['content'])}</div>")
            else:
                turns.append(f"<div class='wb-turn-past'>{render(m['content'])}</div>")
        self.body.value = "".join(turns) + render(text)


class MessageLine(widgets.VBox):
    """One sentence of what happened and what to do; the details (traceback) one click away."""

    def __init__(self):
        self.line = widgets.HTML()
        self.details = widgets.HTML()
        self.details_box = widgets.Accordion(children=[self.details], titles=("Details",))
        self.details_box.selected_index = None
        self.details_box.layout.display = "none"
        super().__init__([self.line, self.details_box])

    def say(self, text: str) -> None:
        """A plain status sentence."""
        self.line.value = f"<div style='color: var(--jp-ui-font-color1)'>{html.escape(text)}</div>"
        self.details_box.layout.display = "none"

    def error(self, text: str, error: BaseException | None = None) -> None:
        """A problem: the sentence in the warning colour, the traceback under "Details"."""
        self.line.value = f"<div style='color: var(--jp-warn-color0)'>{html.escape(text)}</div>"
        if error is not None:
            detail = "".join(traceback.format_exception(error))
            self.details.value = f"<pre>{html.escape(detail)}</pre>"
            self.details_box.layout.display = ""
        else:
            self.details_box.layout.display = "none"

    @property
    def text(self) -> str:
        """The sentence shown (for tests and screen readers), unescaped."""
        return html.unescape(_strip_tags(self.line.value))


def first_sentence(error: BaseException) -> str:
    """An exception's message as one sentence for a person (KeyError's quotes removed)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text).strip() or type(error).__name__


def _strip_tags(value: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", value)
