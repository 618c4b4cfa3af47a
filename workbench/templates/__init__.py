"""Chat templates: the Template, its presets, the Jinja sandbox, trained spans, checks and preview.

One function (`tokenize_with_labels`) turns a row into token ids and labels for both the editor's
view and training, so what the editor shows is exactly what trains.
"""

from .jinja import TemplateError
from .presets import PRESETS
from .template import (
    IGNORE_INDEX,
    MODEL_PRESET,
    TEMPLATE_FILE,
    Template,
    TokenizedExample,
    messages_of,
    tokenize_dataset,
    tokenize_with_labels,
    validate_template,
)

__all__ = [
    "IGNORE_INDEX",
    "MODEL_PRESET",
    "PRESETS",
    "TEMPLATE_FILE",
    "Template",
    "TemplateError",
    "TokenizedExample",
    "messages_of",
    "tokenize_dataset",
    "tokenize_with_labels",
    "validate_template",
]
