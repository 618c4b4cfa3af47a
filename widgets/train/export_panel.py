"""ExportPanel: take a tuned model out of the notebook, from beside the runs table.

The model, the settings (a form generated from ExportConfig), the folder, then one Session call
(`export_model`) in a background thread with a progress bar; the result lists the files with
their sizes, the parity line and, for Ollama, the commands to create and run the model. The
model offered first is the run the views follow (`session.selected_run`), else the newest.
"""

from __future__ import annotations

import threading

import ipywidgets as widgets

from workbench.export.config import ExportConfig
from workbench.export.pipeline import STAGE_WORDS

from ..common.forms import ConfigForm
from ..common.html_text import escape_text
from ..common.notice import Notice


class ExportPanel(widgets.VBox):
    """Export a run's adapter: merged weights, GGUF, Ollama or the adapter, parity-checked."""

    def __init__(self, session) -> None:
        self.session = session
        self.model = widgets.Dropdown(description="model")
        self.form = ConfigForm(ExportConfig)
        self.path = widgets.Text(
            description="folder", placeholder="exports/<model>-<format>", layout={"width": "60%"}
        )
        self.export_button = widgets.Button(description="Export", icon="download")
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, layout={"width": "40%"})
        self.progress_text = widgets.HTML()
        self.result = widgets.HTML()
        self.message = Notice()
        self._thread: threading.Thread | None = None
        self._offered: str | None = None  # the run offered, not picked by a person
        self.export_button.on_click(lambda _: self.export())
        self.model.observe(lambda _: self._suggest_path(), names="value")
        self.form.fields["format"].observe(lambda _: self._suggest_path(), names="value")
        self._unsubscribe = [
            session.observe(lambda _: self.refresh(), names="runs"),
            session.observe(lambda _: self.refresh(follow=True), names="selected_run"),
        ]
        super().__init__(
            [
                widgets.HBox([self.model, self.path]),
                self.form,
                widgets.HBox([self.export_button, self.progress, self.progress_text]),
                self.message,
                self.result,
            ]
        )
        self.add_class("wb-export")
        self.refresh()

    def refresh(self, follow: bool = False) -> None:
        """Offer every run that has an adapter (newest first): the selected run, unless a
        person picked another here (`follow`: a run was just selected, so it is offered)."""
        names = list(reversed(list(self.session.adapters)))
        selected = self.session.selected_run
        offer = selected.name if selected is not None and selected.name in names else None
        offer = offer or (names[0] if names else None)
        chosen = self.model.value
        picked = chosen in names and chosen != self._offered and not follow
        if list(self.model.options) != names:
            self.model.options = names
        if self.busy or picked:  # the export in flight, or a person's pick, stays
            self.model.value = chosen
        else:
            self.model.value, self._offered = offer, offer
        self.export_button.disabled = not names or self.busy
        self.export_button.tooltip = "" if names else "Train a run first: it has no adapter yet."

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def export(self) -> None:
        """Start the export in the background (the notebook stays usable)."""
        if self.busy or self.model.value is None:
            return self.message.warn("Choose a run with an adapter; one export at a time.")
        try:
            settings = self.form.value()
        except (ValueError, TypeError) as e:
            return self.message.error(e)
        path = self.path.value.strip() or self.session.default_export_path(
            self.model.value, settings.format
        )
        self.result.value, self.progress.value = "", 0
        self.message.say(f"Exporting {self.model.value} as {settings.format} to {path}…")
        self.export_button.disabled = True
        self._thread = threading.Thread(target=self._export, args=(path, settings), daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the export in flight ends (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _export(self, path, settings: ExportConfig) -> None:
        try:
            with self.message.guard() as outcome:
                done = self.session.export_model(
                    self.model.value, path, progress=self._on_progress, **settings.to_json()
                )
            if not outcome.failed:
                self.progress.value = 1
                self.progress_text.value = f"done: {len(STAGE_WORDS)} of {len(STAGE_WORDS)} steps"
                self.message.say(f"Exported to {done.path}.")
                self.result.value = f"<pre>{escape_text(str(done))}</pre>"
            else:  # the error below says where it stopped; no bar stays half full
                self.progress.value, self.progress_text.value = 0, ""
        finally:
            self.export_button.disabled = False

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.value = done / total if total else 0
        what = STAGE_WORDS.get(stage, stage)
        self.progress_text.value = escape_text(f"{what} (step {done + 1} of {total})")

    def _suggest_path(self) -> None:
        if self.model.value is not None:
            fmt = self.form.fields["format"].value
            self.path.placeholder = str(self.session.default_export_path(self.model.value, fmt))

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        super().close()
