"""Notebook views over a workbench Session: ipywidgets and plotly, no training or data logic.

from widgets import Workbench
Workbench(session)
"""

from .app import Workbench
from .compare.comparator import ChatComparator
from .data.dataset_browser import DatasetBrowser
from .data.grow_panel import GrowPanel
from .template.template_editor import TemplateEditor
from .train.export_panel import ExportPanel
from .train.training import TrainingLauncher

__all__ = [
    "ChatComparator",
    "DatasetBrowser",
    "ExportPanel",
    "GrowPanel",
    "TemplateEditor",
    "TrainingLauncher",
    "Workbench",
]
