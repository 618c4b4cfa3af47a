"""Instruction data: sources, conversion to canonical chat messages, and the edited view."""

from .dataset import InstructionDataset
from .sources import DatasetLoadError, load_source

__all__ = ["DatasetLoadError", "InstructionDataset", "load_source"]
