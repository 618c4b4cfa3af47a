"""Notebook views over a workbench Session: ipywidgets and plotly, no training or data logic.

    from widgets import Workbench
    Workbench(session)
"""

from .dataset_browser import DatasetBrowser
from .template_editor import TemplateEditor
from .training import TrainingLauncher

__all__ = ["DatasetBrowser", "TemplateEditor", "TrainingLauncher"]
