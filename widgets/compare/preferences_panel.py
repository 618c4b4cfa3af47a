"""PreferencesPanel: the votes so far, win rates per contestant pair, "Train DPO from votes",
"Train a reward model", and how often a reward model agrees with the votes it never trained on.

The comparator shows it under the answers, so the feedback loop closes where people vote: each
button is one Session call (train with method "dpo" or "reward", reward_agreement); a DPO
adapter comes back as a contestant, a reward model in the comparator's "reward model" picker.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from workbench import Session, TrainConfig

from ..common.notice import Notice
from ..common.theme import plural

DEFAULT_DPO_STEPS = 50
DEFAULT_REWARD_STEPS = 100


class PreferencesPanel(widgets.VBox):
    """Counts of votes, win rates per pair, and a DPO launch with sensible defaults."""

    def __init__(self, session: Session):
        self.session = session
        self.summary = widgets.HTML()
        self.start_from = widgets.Dropdown(description="start from")
        self.steps = widgets.IntText(DEFAULT_DPO_STEPS, description="steps")
        self.include_ties = widgets.Checkbox(False, description="include ties", indent=False)
        self._offered: str | None = None  # the adapter offered as DPO's start, not chosen
        self.train_button = widgets.Button(description="Train DPO from votes", icon="play")
        self.reward_button = widgets.Button(
            description="Train a reward model",
            icon="play",
            tooltip="A reward model learns to score answers as the votes do (method 'reward').",
        )
        self.reward_model = widgets.Dropdown(
            description="reward model", style={"description_width": "initial"}
        )
        self.agreement_button = widgets.Button(
            description="Agreement with votes",
            tooltip="Score the votes the reward model never trained on",
        )
        self.agreement = widgets.HTML()
        self.message = Notice()
        self.train_button.on_click(lambda _: self.train())
        self.reward_button.on_click(lambda _: self.train_reward_model())
        self.agreement_button.on_click(lambda _: self.check_agreement())
        session.observe(lambda _: self.refresh(), names=["preferences", "runs"])
        session.observe(lambda _: self.follow_selected_run(), names="selected_run")
        controls = widgets.HBox([self.start_from, self.steps, self.include_ties, self.train_button])
        rewards = widgets.HBox(
            [self.reward_button, self.reward_model, self.agreement_button, self.agreement]
        )
        super().__init__(
            [widgets.HTML("<b>Preferences</b>"), self.summary, controls, rewards, self.message]
        )
        self.add_class("wb-preferences")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the votes and the adapters a DPO run could start from."""
        votes = self.session.preferences
        pairs = votes.pairs(include_ties=self.include_ties.value)
        self.summary.value = _summary_html(votes, pairs)
        current = self.start_from.value
        options = [("the base model", "")] + [(name, name) for name in self.session.adapters]
        if list(self.start_from.options) != options:
            self.start_from.options = options
            chosen = current in dict(options).values() and current != self._offered
            self.start_from.value = current if chosen else self._followed(options)
        chosen = self.reward_model.value
        names = list(self.session.reward_models)
        self.reward_model.options = names
        self.reward_model.value = chosen if chosen in names else (names[-1] if names else None)
        self.agreement_button.disabled = not names

    def follow_selected_run(self) -> None:
        """The run selected in the Train tab becomes DPO's starting adapter (when it has one)."""
        self.start_from.value = self._followed(list(self.start_from.options))

    def _followed(self, options: list[tuple[str, str]]) -> str:
        """The selected run when it is an adapter DPO can start from, else the newest one (kept
        as the one offered: while it is still chosen, the offer follows new runs)."""
        selected = self.session.selected_run
        values = [value for _, value in options]
        known = selected is not None and selected.name in values
        self._offered = selected.name if known else values[-1]
        return self._offered

    def train(self):
        """Start a DPO run on the votes (one Session call); errors show as a sentence."""
        config = TrainConfig(
            method="dpo",
            max_steps=self.steps.value,
            base_adapter=self.start_from.value or None,
            include_ties=self.include_ties.value,
        )
        return self._start(
            config,
            "its curves are in the Train tab, and its adapter joins the contestants when it ends.",
        )

    def train_reward_model(self):
        """Start a reward-model run on the votes (one Session call); errors show as a sentence."""
        config = TrainConfig(
            method="reward", max_steps=DEFAULT_REWARD_STEPS, include_ties=self.include_ties.value
        )
        return self._start(
            config,
            "its accuracy on held-out votes is in the Train tab; when it ends, pick it as the "
            "comparator's reward model.",
        )

    def _start(self, config: TrainConfig, then: str):
        """Start the run; a refusal (too few votes, identical answers, a run already going) is
        told, and None returned."""
        with self.message.guard() as outcome:
            run = self.session.train(config)
        if outcome.failed:
            return None
        self.message.say(f"{run.name} started: {then}")
        return run

    def check_agreement(self):
        """Say how often the chosen reward model agrees with the votes it never trained on."""
        name = self.reward_model.value
        if not name:
            return self.message.warn("Train a reward model first.")
        with self.message.guard() as outcome:
            result = self.session.reward_agreement(name)
        if outcome.failed:
            return None
        held = result.held_out_accuracy
        measured = (
            f"; {held:.0%} on its held-out pairs when it was trained" if held is not None else ""
        )
        if result.total:
            text = (
                f"{name} agrees with {result.agree} of {result.total} votes it never trained on "
                f"({result.rate:.0%}){measured}."
            )
        else:
            text = f"{name} trained on every vote so far; vote more to measure it{measured}."
        self.agreement.value = html.escape(text)
        return result


def _summary_html(votes, pairs) -> str:
    """ "3 votes, 2 usable as DPO pairs", and a table of each contestant pair: votes, win rates,
    ties and both-bad, in aligned columns (numbers on the right)."""
    num = "class='wb-num'"
    rows = [
        f"<tr><td>{html.escape(a)} vs {html.escape(b)}</td><td {num}>{tally.total}</td>"
        f"<td {num}>{tally.win_rate(a):.0%}</td><td {num}>{tally.win_rate(b):.0%}</td>"
        f"<td {num}>{tally.ties}</td><td {num}>{tally.both_bad}</td></tr>"
        for (a, b), tally in sorted(votes.tally().items())
    ]
    head = (
        f"<tr><th>pair</th><th {num}>votes</th><th {num}>first wins</th>"
        f"<th {num}>second wins</th><th {num}>ties</th><th {num}>both bad</th></tr>"
    )
    table = f"<table class='wb-table'>{head}{''.join(rows)}</table>" if rows else ""
    usable = f"{len(pairs):,} usable as DPO {'pair' if len(pairs) == 1 else 'pairs'}"
    return f"<div>{plural(len(votes), 'vote')}, {usable}.</div>{table}"
