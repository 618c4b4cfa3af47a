"""SplitBar: the eval split, made where it is needed: in the Data tab and above the run form.

A run evaluates (eval loss, probe answers, keep best, early stopping) only when the session has
an eval split; the bar says what the split holds now and makes one with one Session call
(`split`), so no view has to tell a person to call code.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..common.compat import with_tooltip
from ..common.notice import Notice
from ..common.parts import make_button
from ..common.theme import plural

DEFAULT_SHARE = 0.1


class SplitBar(widgets.VBox):
    """The eval share, a "Make eval split" button, and the rows each side holds now."""

    def __init__(self, session) -> None:
        self.session = session
        self.share = with_tooltip(
            widgets.BoundedFloatText(
                DEFAULT_SHARE, min=0.0, max=0.5, step=0.05, description="eval share"
            ),
            "The share of rows held out to evaluate runs on (0 to 0.5).",
        )
        self.split_button = make_button("Make eval split", self.split)
        self.state = widgets.HTML()
        self.message = Notice()
        super().__init__([widgets.HBox([self.state, self.share, self.split_button]), self.message])
        self.add_class("wb-split")
        self._unsubscribe = session.observe(lambda _: self.refresh(), ["split", "dataset"])
        self.refresh()

    def split(self) -> None:
        """Hold out the eval share of the rows (session.split, the same rows every time)."""
        with self.message.guard("No split was made"):
            self.session.split(eval_fraction=self.share.value)
            self.message.clear()

    def refresh(self) -> None:
        """Say what the split holds now, or why there is none."""
        self.split_button.disabled = self.session.dataset is None
        if self.session.dataset is None:
            self.state.value = "<span class='wb-hint'>Load a dataset to split it.</span>"
            return
        train, held = self.session.split_rows
        if held:
            self.state.value = (
                f"<span class='wb-nowrap'>Split: {plural(len(train), 'training row')}, "
                f"{plural(len(held), 'eval row')}.</span>"
            )
            self.split_button.description = "Split again"
        else:
            self.state.value = (
                "<span class='wb-hint'>No eval split: runs get no eval loss, probe answers or "
                "keep best until you make one.</span>"
            )
            self.split_button.description = "Make eval split"

    def close(self) -> None:
        """Stop observing the session and close the widget."""
        self._unsubscribe()
        super().close()
