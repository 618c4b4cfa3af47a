"""Workbench: the four views over one Session, as tabs (Data | Template | Train | Compare).

The views share nothing but the Session: a row selected in Data is previewed in Template because
both observe the session's selected row, and a run that ends in Train becomes a contestant in
Compare because both observe its runs. Each view also works alone.

The app paints first and loads after: the views are built without the slow part (the tokenizer
the template preview needs, torch and the model's shape for the estimate), which a background
thread then does, each view showing a "loading…" line until its part is in. A person sees the
app in about a second; the model's weights load only when something first needs them.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets

from workbench import Session

from .common.compat import titled
from .common.notice import Notice
from .common.theme import style_view, stylesheet
from .compare.comparator import ChatComparator
from .data.dataset_browser import DatasetBrowser
from .template.template_editor import TemplateEditor
from .train.training import TrainingLauncher

TITLES = ("Data", "Template", "Train", "Compare")


class Workbench(widgets.VBox):
    """The tabbed app; `Workbench(session)`, and `.data`, `.template`, `.train`, `.compare`."""

    def __init__(self, session: Session, plot_backend: str | None = None):
        self.session = session
        self.data = DatasetBrowser(session)
        self.template = TemplateEditor(session, lazy=True)
        self.train = TrainingLauncher(session, plot_backend=plot_backend, lazy=True)
        self.compare = ChatComparator(session)
        self.tabs = titled(
            widgets.Tab(children=[self.data, self.template, self.train, self.compare]), TITLES
        )
        where = html.escape(str(session.path))
        header = widgets.HTML(
            f"<div style='color: var(--jp-ui-font-color2)'>Workspace: <code>{where}</code></div>"
        )
        self.message = Notice()
        if told := session.workspace.read_only_reason or session.workspace.low_disk_warning():
            self.message.warn(told)  # a full (or nearly full) disk: what takes the room
        super().__init__([stylesheet(), header, self.message, self.tabs])
        style_view(self, "wb-app")
        self._warming = threading.Thread(target=self._warm_up, daemon=True, name="workbench-load")
        self._warming.start()

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        """Block until the views' slow part is loaded (for scripts, tests and benchmarks);
        True when it is."""
        self._warming.join(timeout)
        return not self._warming.is_alive()

    def _warm_up(self) -> None:
        """Load what the Template and Train tabs need, after the app is on the page."""
        for view, what in ((self.template, "the template preview"), (self.train, "the estimate")):
            with self.message.guard(f"Loading {what} failed"):  # told, never lost in a thread
                view.warm_up()
