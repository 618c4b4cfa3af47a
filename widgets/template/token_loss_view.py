"""The template editor's "Loss per token" tab: the selected row's trained tokens coloured by one
model's loss, or by the change between two models (Session.token_losses), with its legend."""

from __future__ import annotations

import ipywidgets as widgets

from ..common.notice import Notice

NONE = ""  # "compare with": nobody, colour by the model's own loss


class TokenLossView(widgets.VBox):
    """Choose a model (and one to compare with), press Score: one Session call, its HTML shown."""

    def __init__(self, session) -> None:
        self.session = session
        self.model = widgets.Dropdown(description="Model")
        self.baseline = widgets.Dropdown(description="Compare with")
        self.score_button = widgets.Button(
            description="Score this row",
            icon="calculator",
            tooltip="One forward pass a model (loads it once)",
        )
        self.result = widgets.HTML(
            '<div class="wb-hint">Colour the trained tokens by a model\'s loss, or by how a run '
            "changed it against the base.</div>"
        )
        self.message = Notice()
        self.score_button.on_click(lambda _: self.score())
        super().__init__(
            [
                widgets.HBox([self.model, self.baseline, self.score_button]),
                self.message,
                self.result,
            ]
        )
        self.refresh_models()
        session.observe(lambda _: self.refresh_models(), names="runs")

    def refresh_models(self) -> None:
        """The models to choose from: base, then every trained adapter of the session (a new
        adapter is offered and chosen; a choice still on offer is kept otherwise)."""
        names = ["base", *self.session.adapters]
        if list(self.model.options) == names:
            return
        self.model.options = names
        self.model.value = names[-1]  # the newest run: what a person wants to look at
        self.baseline.options = [("nobody", NONE), *[(n, n) for n in names]]
        self.baseline.value = "base" if len(names) > 1 else NONE

    def score(self) -> None:
        """Score the selected row under the chosen models and colour its tokens."""
        models = [m for m in (self.baseline.value, self.model.value) if m]
        models = list(dict.fromkeys(models))  # "base" against itself is just "base"
        try:
            losses = self.session.token_losses(self._row(), models)
        except (KeyError, ValueError, TypeError) as e:
            self.message.error(e)
            return
        self.message.clear()
        self.result.value = losses._repr_html_()

    def _row(self):
        dataset = self.session.dataset
        if dataset is None or len(dataset) == 0:
            raise ValueError("Load a dataset first: the selected row is what gets scored.")
        return min(self.session.selected_row, len(dataset) - 1)
