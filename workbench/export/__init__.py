"""Taking a tuned model out of the workbench: merged weights, GGUF, Ollama, the adapter alone.

Every export is parity-checked (the exported artefact answers probe prompts as the adapter does
in the workbench), written to a staging folder and renamed when whole. `Session.export_model`
is the entry point; `push_to_hub` uploads an export folder.
"""

from .config import FORMATS, QUANTIZATIONS, ExportConfig, ExportError
from .result import Export, Parity, ParityError

__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "Export",
    "ExportConfig",
    "ExportError",
    "Parity",
    "ParityError",
]
