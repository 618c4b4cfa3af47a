"""RewardScores: a reward model picked beside the chat scores each pane's last answer.

One Session call per pane (`session.score`): each contestant has its own conversation, so each
answer is scored after its own prompt. Shown as one line, "Reward model run-3: A 1.2 · B -0.4".
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from workbench.answers.chat import Conversation

from ..common.compat import with_tooltip
from ..common.notice import Notice

LETTERS = "ABCD"


class RewardScores(widgets.HBox):
    """The "reward model" picker and the scores of the answers shown."""

    def __init__(self, session, message: Notice) -> None:
        self.session, self.message = session, message
        self.picker = with_tooltip(
            widgets.Dropdown(
                description="reward model",
                options=[("none", "")],
                style={"description_width": "initial"},  # the label on one line
            ),
            "A reward model (a run of method 'reward') scores each answer.",
        )
        self.line = widgets.HTML()
        self.line.add_class("wb-scores")
        super().__init__([self.picker, self.line])

    def refresh(self) -> None:
        """Offer the session's reward models, keeping the one picked while it remains."""
        options = [("none", "")] + [(n, n) for n in self.session.reward_models]
        if list(self.picker.options) != options:
            current = self.picker.value
            self.picker.options = options
            self.picker.value = current if current in dict(options).values() else ""

    def clear(self) -> None:
        """Show no scores (no answers yet, or new ones coming)."""
        self.line.value = ""

    def show(self, conversation: Conversation, shown: list[str], system: str | None) -> None:
        """Score the last answer of each contestant in `shown` (pane order), after its own
        prompt under the system message `system`; a failure is told in the chat's notice."""
        name = self.picker.value
        self.clear()
        if not name:
            return
        with self.message.guard("No scores") as outcome:  # another base model, a missing folder
            scores = [
                self.session.score(
                    conversation.prompt_of(c, system), [conversation.last_answer(c)], name
                )[0]
                for c in shown
            ]
        if outcome.failed:
            return
        parts = [f"{LETTERS[k]} {score:.3g}" for k, score in enumerate(scores)]
        self.line.value = html.escape(f"Reward model {name}: " + " · ".join(parts))
