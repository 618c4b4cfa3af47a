"""Notice: the one way a view tells a person something: one sentence, the details one click away.

Every view owns one Notice, as its `message` attribute, and calls `say` (information), `warn` or
`error`, and runs what may fail under `guard`; code reads the sentence back as `message.text`. An exception becomes one sentence (what
happened and what to do, as the core writes its messages) with its traceback folded under
"Details". Text is always escaped; colours come from JupyterLab's theme.

A view speaks its own words (`in_view_words`): the core's messages are written for code, so the
code in them is dropped where it is an aside in parentheses ("make an eval split
(session.split(eval_fraction=0.1))"), `field=True` reads "field on", and a config field's name
reads as the form labels it ("learning_rate" -> "learning rate").
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import ipywidgets as widgets

from workbench.data.excerpt import LOG_CHARS, tail

from .compat import titled

COLOURS = {  # the bar beside the sentence
    "info": "var(--jp-brand-color1)",
    "warning": "var(--jp-warn-color1)",
    "error": "var(--jp-error-color1)",
}
ROLES = {"info": "status", "warning": "status", "error": "alert"}
# An aside for code users: a call or a keyword argument in parentheses.
CODE_ASIDE = re.compile(r"\s*\((?:[\w.]+\([^()]*\)|\w+=[^()\s]+)\)")
SWITCH = re.compile(r"\b([a-z]\w*)=(True|False)\b")
# A snake_case name standing alone (not part of a path, a file name or a dotted name).
SNAKE_NAME = re.compile(r"(?<![\w/\\.-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/\\-]|\.\w)")
LINE = (
    "color: var(--jp-ui-font-color1); border-left: 3px solid {}; padding: 2px 8px; margin: 2px 0;"
)


@dataclass
class Outcome:
    """What a guarded block came to: the exception it raised (shown already), or None."""

    error: Exception | None = None

    @property
    def failed(self) -> bool:
        """Whether the block raised."""
        return self.error is not None


class Notice(widgets.VBox):
    """One sentence of what happened, coloured by level, with optional details folded below."""

    def __init__(self) -> None:
        self.message = widgets.HTML()
        self.details = widgets.HTML()
        self.details_box = titled(widgets.Accordion(children=[self.details]), ["Details"])
        self.details_box.selected_index = None
        self.details_box.layout.display = "none"
        self.level, self._text = "", ""
        super().__init__([self.message, self.details_box])
        self.add_class("wb-notice")

    @property
    def text(self) -> str:
        """The sentence shown now, as plain text ("" when nothing is shown)."""
        return self._text if self.level else ""

    def say(self, text: str, details: str = "") -> None:
        """Information: something finished, started or was saved."""
        self._show("info", text, details)

    def warn(self, text: str, details: str = "") -> None:
        """Something the person should look at; nothing failed."""
        self._show("warning", text, details)

    def error(self, error: BaseException | str, details: BaseException | str = "") -> None:
        """Something failed. `error` is the exception (its message becomes the sentence, its
        traceback the details) or a sentence of our own, with the exception as `details`."""
        text = sentence(error) if isinstance(error, BaseException) else error
        if isinstance(error, BaseException) and not details:
            details = error
        if isinstance(details, BaseException):
            details = "".join(traceback.format_exception(details))
        self._show("error", text, details)

    @contextlib.contextmanager
    def guard(self, failed: str = "", then: str = "") -> Iterator[Outcome]:
        """Run the block; an exception it raises is shown as this notice's error instead of
        reaching Jupyter or a thread's log: "<failed>: <its sentence> <then>", its traceback
        folded. The yielded Outcome says whether it failed. The one way views catch errors."""
        outcome = Outcome()
        try:
            yield outcome
        except Exception as e:
            outcome.error = e
            text = f"{failed}: {sentence(e)}" if failed else sentence(e)
            self.error(f"{text} {then}" if then else text, e)

    def clear(self) -> None:
        """Show nothing."""
        self.level, self._text = "", ""
        self.message.value = ""
        self.details.value = ""
        self.details_box.layout.display = "none"

    def _show(self, level: str, text: str, details: str) -> None:
        text = in_view_words(text)
        self.level, self._text = level, text
        self.message.value = (
            f'<div class="wb-notice-line wb-notice-{level}" role="{ROLES[level]}" '
            f'style="{LINE.format(COLOURS[level])}">{html.escape(text)}</div>'
        )
        details = tail(details, LOG_CHARS)  # a huge traceback or log never reaches the page whole
        self.details.value = f"<pre>{html.escape(details)}</pre>" if details else ""
        self.details_box.selected_index = None
        self.details_box.layout.display = "" if details else "none"


def sentence(error: BaseException) -> str:
    """An exception's message as one sentence for a person: a KeyError's quotes removed, a full
    stop added where it has none, the exception's type name when it has no message."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    text = str(text).strip() or type(error).__name__
    return text if text[-1] in ".!?…" else text + "."


def in_view_words(text: str) -> str:
    """The core's message as a view says it: code asides in parentheses dropped, `name=True`
    read as "name on", and each config field's snake_case name as its form's label."""
    text = CODE_ASIDE.sub("", text)
    text = SWITCH.sub(lambda m: f"{m[1]} {'on' if m[2] == 'True' else 'off'}", text)
    known = _config_labels()
    return SNAKE_NAME.sub(lambda m: known.get(m[0], m[0]), text)


@functools.cache
def _config_labels() -> dict[str, str]:
    """The label of every field of the configs the views show as forms (ConfigForm's rule)."""
    from workbench.answers.generate import GenerationSettings
    from workbench.export.config import ExportConfig
    from workbench.synthesis.run import SynthesisSettings
    from workbench.train.config import TrainConfig

    configs = (TrainConfig, ExportConfig, GenerationSettings, SynthesisSettings)
    return {f.name: label(f.name) for c in configs for f in dataclasses.fields(c)}


def label(name: str) -> str:
    """The label a form gives field `name`: its words, spaced."""
    return name.replace("_", " ")
