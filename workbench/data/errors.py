"""The data errors, under the name this package has always given them (workbench.errors)."""

from __future__ import annotations

from ..errors import DatasetLoadError, RowError, TrainingDataError

__all__ = ["DatasetLoadError", "RowError", "TrainingDataError"]
