"""Headless core of the tuning workbench: Session, data, templates, models, generation.

import workbench as wb
s = wb.Session.open("workspace")
"""

from . import demo, models
from .answers import Comparison, ComparisonStopped, Evaluation, GenerationSettings
from .data import DatasetLoadError, InstructionDataset
from .demo import tasks as demo_data  # the name the first notebooks used
from .export import Export, ExportConfig, ExportError, ParityError
from .persist import DiskFullError
from .preferences import PreferenceRecord
from .session import Change, Session
from .templates import Template, TemplateError
from .train import Run, RunStatus, TrainConfig
from .train.jobs import JobFormatError
from .workspace import ReadOnlyError, WorkspaceError, WorkspaceLockedError, WorkspaceWarning

__version__ = "0.1.0"

__all__ = [
    "Change",
    "Comparison",
    "ComparisonStopped",
    "DatasetLoadError",
    "DiskFullError",
    "Evaluation",
    "Export",
    "ExportConfig",
    "ExportError",
    "GenerationSettings",
    "InstructionDataset",
    "JobFormatError",
    "ParityError",
    "PreferenceRecord",
    "ReadOnlyError",
    "Run",
    "RunStatus",
    "Session",
    "Template",
    "TemplateError",
    "TrainConfig",
    "WorkspaceError",
    "WorkspaceLockedError",
    "WorkspaceWarning",
    "demo",
    "demo_data",
    "models",
    "synthesis",
]


def __getattr__(name: str):
    """`wb.synthesis` loads on first use (its HTTP client costs a tenth of a second)."""
    if name == "synthesis":
        import importlib

        return importlib.import_module(".synthesis", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
