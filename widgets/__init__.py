"""Notebook views over a workbench Session: ipywidgets and plotly, no training or data logic.

from widgets import Workbench
Workbench(session)
"""

from .app import Workbench
from .comparator import ChatComparator
from .dataset_browser import DatasetBrowser
from .export_panel import ExportPanel
from .grow_panel import GrowPanel
from .template_editor import TemplateEditor
from .training import TrainingLauncher

__all__ = [
    "ChatComparator",
    "DatasetBrowser",
    "ExportPanel",
    "GrowPanel",
    "TemplateEditor",
    "TrainingLauncher",
    "Workbench",
]
