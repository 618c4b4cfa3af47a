"""Workbench: the four views over one Session, as tabs (Data | Template | Train | Compare).

The views share nothing but the Session: a row selected in Data is previewed in Template because
both observe the session's selected row, and a run that ends in Train becomes a contestant in
Compare because both observe its runs. Each view also works alone.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from workbench import Session

from .comparator import ChatComparator
from .dataset_browser import DatasetBrowser
from .template_editor import TemplateEditor
from .training import TrainingLauncher

TITLES = ("Data", "Template", "Train", "Compare")


class Workbench(widgets.VBox):
    """The tabbed app; `Workbench(session)`, and `.data`, `.template`, `.train`, `.compare`."""

    def __init__(self, session: Session, plot_backend: str | None = None):
        self.session = session
        self.data = DatasetBrowser(session)
        self.template = TemplateEditor(session)
        self.train = TrainingLauncher(session, plot_backend=plot_backend)
        self.compare = ChatComparator(session)
        self.tabs = widgets.Tab(
            children=[self.data, self.template, self.train, self.compare], titles=TITLES
        )
        where = html.escape(str(session.path))
        header = widgets.HTML(
            f"<div style='color: var(--jp-ui-font-color2)'>Workspace: <code>{where}</code></div>"
        )
        super().__init__([header, self.tabs])
        self.add_class("wb-app")
