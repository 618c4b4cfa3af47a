"""Pieces of the comparator: the shared settings form, answer panes and their style.

No business logic: the form only turns its fields into GenerationSettings, and panes only show
escaped text or sanitised Markdown (widgets.common.safe_markdown), cut to sizes that keep the page small
whatever a model or a pasted prompt holds (workbench.data.excerpt).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from workbench.answers.generate import GenerationSettings
from workbench.data.excerpt import ANSWER_CHARS, LISTED_TURNS, TURN_CHARS, clip

from ..common.forms import ConfigForm
from ..common.safe_markdown import markdown_html, plain_html

STYLE = {"description_width": "130px"}
CSS = """
<style>
.wb-comparator .wb-pane { border: 1px solid var(--jp-border-color2); border-radius: 4px;
  background: var(--jp-layout-color1); color: var(--jp-ui-font-color1); padding: 6px 10px;
  min-width: 0; flex: 1 1 0; }
.wb-comparator .wb-pane-title { font-weight: bold; color: var(--jp-brand-color1); }
.wb-comparator .wb-answer { min-height: 4em; overflow-wrap: anywhere; }
.wb-comparator .wb-answer pre { background: var(--jp-layout-color2); padding: 4px; }
.wb-comparator .wb-answer table { border-collapse: collapse; margin: 4px 0; }
.wb-comparator .wb-answer th, .wb-comparator .wb-answer td {
  border: 1px solid var(--jp-border-color2); padding: 2px 6px; }
.wb-comparator .wb-answer th { background: var(--jp-layout-color2); }
.wb-comparator .wb-answer blockquote { border-left: 3px solid var(--jp-border-color2);
  margin: 4px 0; padding-left: 8px; color: var(--jp-ui-font-color2); }
.wb-comparator.wb-present .wb-answer { font-size: var(--jp-content-font-size3); }
.wb-comparator.wb-present .wb-pane-title { font-size: var(--jp-content-font-size4); }
.wb-comparator .wb-turn-user { color: var(--jp-ui-font-color2); white-space: pre-wrap;
  border-left: 3px solid var(--jp-brand-color1); padding-left: 6px; margin: 4px 0; }
.wb-comparator .wb-turn-past { color: var(--jp-ui-font-color2); }
.wb-comparator .wb-turn-hidden { color: var(--jp-ui-font-color2); font-style: italic; }
</style>
"""


class SettingsForm(ConfigForm):
    """The generation settings every contestant shares, generated from GenerationSettings."""

    def __init__(self, defaults: GenerationSettings | None = None):
        super().__init__(GenerationSettings, defaults)

    def settings(self) -> GenerationSettings:
        """The form as GenerationSettings (ValueError for a bad value)."""
        return self.value()


class AnswerPane(widgets.VBox):
    """One contestant's chat: its earlier turns, the question, and the answer as it streams.

    Everything shown is escaped; answers may render as sanitised Markdown. The page gets at
    most ANSWER_CHARS characters of the answer, TURN_CHARS of each earlier turn and the last
    LISTED_TURNS turns; `text` and `history` keep everything.
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
        """Show the turns so far (`history`, kept until replaced) and the answer `text`, cut
        as the class says."""
        self.text = text
        if history is not None:
            self.history = [m for m in history if m.get("role") != "system"]
        render = markdown_html if markdown else plain_html
        earlier = len(self.history) - LISTED_TURNS
        turns = [f"<div class='wb-turn-hidden'>[{earlier:,} earlier turns not shown]</div>"]
        turns = turns if earlier > 0 else []
        for m in self.history[-LISTED_TURNS:]:
            shown = clip(m["content"], TURN_CHARS)
            if m["role"] == "user":
                turns.append(f"<div class='wb-turn-user'>{html.escape(shown)}</div>")
            else:
                turns.append(f"<div class='wb-turn-past'>{render(shown)}</div>")
        self.body.value = "".join(turns) + render(clip(text, ANSWER_CHARS))
