"""Instruction data: sources, conversion to canonical chat messages, and the edited view.

`load_source` reads files and in-memory objects into an `InstructionDataset`; the dataset
pages, searches, filters, checks quality and measures token lengths over Arrow.
"""

from ..errors import DatasetLoadError
from .blocks import LoadReport
from .dataset import InstructionDataset
from .formats import DESCRIPTIONS, fields_of
from .lengths import DatasetStats, TokenLengths
from .options import FORMATS, LoadOptions
from .quality import TITLES, Problem, QualityReport
from .search import Match, SearchResult
from .selection import Page, RowSelection
from .sources import describe_columns, load_source

__all__ = [
    "DESCRIPTIONS",
    "FORMATS",
    "TITLES",
    "DatasetLoadError",
    "DatasetStats",
    "InstructionDataset",
    "LoadOptions",
    "LoadReport",
    "Match",
    "Page",
    "Problem",
    "QualityReport",
    "RowSelection",
    "SearchResult",
    "TokenLengths",
    "describe_columns",
    "fields_of",
    "load_source",
]
