"""PreferencesPanel: the votes so far, win rates per contestant pair, and "Train DPO from votes".

The comparator shows it under the answers, so the feedback loop closes where people vote: the
button starts one Session.train(method="dpo") run, and its adapter comes back as a contestant.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from workbench import Session, TrainConfig

from .notice import Notice

DEFAULT_DPO_STEPS = 50


class PreferencesPanel(widgets.VBox):
    """Counts of votes, win rates per pair, and a DPO launch with sensible defaults."""

    def __init__(self, session: Session):
        self.session = session
        self.summary = widgets.HTML()
        self.start_from = widgets.Dropdown(description="start from")
        self.steps = widgets.IntText(DEFAULT_DPO_STEPS, description="steps")
        self.include_ties = widgets.Checkbox(False, description="include ties", indent=False)
        self.train_button = widgets.Button(description="Train DPO from votes", icon="play")
        self.message = Notice()
        self.train_button.on_click(lambda _: self.train())
        session.observe(lambda _: self.refresh(), names=["preferences", "runs"])
        controls = widgets.HBox([self.start_from, self.steps, self.include_ties, self.train_button])
        super().__init__([widgets.HTML("<b>Preferences</b>"), self.summary, controls, self.message])
        self.add_class("wb-preferences")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the votes and the adapters a DPO run could start from."""
        votes = self.session.preferences
        pairs = votes.pairs(include_ties=self.include_ties.value)
        rows = []
        for (a, b), tally in sorted(votes.tally().items()):
            rows.append(
                f"<tr><td>{html.escape(a)} vs {html.escape(b)}</td><td>{tally.total}</td>"
                f"<td>{tally.win_rate(a):.0%} / {tally.win_rate(b):.0%}</td>"
                f"<td>{tally.ties}</td><td>{tally.both_bad}</td></tr>"
            )
        table = (
            "<table><tr><th>pair</th><th>votes</th><th>wins (first / second)</th><th>ties</th>"
            f"<th>both bad</th></tr>{''.join(rows)}</table>"
            if rows
            else ""
        )
        self.summary.value = (
            f"<div>{len(votes)} votes, {len(pairs)} usable as DPO pairs.</div>{table}"
        )
        current = self.start_from.value
        options = [("the base model", "")] + [(name, name) for name in self.session.adapters]
        self.start_from.options = options
        self.start_from.value = current if current in dict(options).values() else options[-1][1]

    def train(self):
        """Start a DPO run on the votes (one Session call); errors show as a sentence."""
        config = TrainConfig(
            method="dpo",
            max_steps=self.steps.value,
            base_adapter=self.start_from.value or None,
            include_ties=self.include_ties.value,
        )
        try:
            run = self.session.train(config)
        except Exception as e:  # a refusal (too few votes, a run already going) is shown
            self.message.error(e)
            return None
        self.message.say(
            f"{run.name} started: its curves are in the Train tab, and its adapter joins the "
            "contestants when it ends."
        )
        return run
