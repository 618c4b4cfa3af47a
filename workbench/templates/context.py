"""What a row gives its chat template beside the messages: tools and documents.

transformers' apply_chat_template passes `tools` (function schemas, for tool use) and
`documents` (for retrieval-augmented answers) to the template beside `messages`; TRL's trainers
pass a row's columns of those names. The workbench does the same wherever it renders a row:
training, the mask view, answers to rows, and the export's parity check.
"""

from __future__ import annotations

import json
from typing import Any

from .jinja import TemplateError

# Row columns a chat template takes beside the messages (transformers' apply_chat_template):
# function schemas for tool use, and documents for retrieval-augmented answers.
CONTEXT_COLUMNS = ("tools", "documents")


def row_context(example: dict | list) -> dict[str, Any]:
    """The template variables a row gives beside its messages: its `tools` and `documents`
    (lists, or JSON text of lists, as loaded), left out when absent or empty. Raises
    TemplateError for a value that is not a list."""
    if not isinstance(example, dict):
        return {}
    out = {}
    for name in CONTEXT_COLUMNS:
        value = example.get(name)
        if isinstance(value, str) and value.strip():
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise TemplateError(f"The row's {name} is not JSON ({e}); give a list.") from None
        if value in (None, "", []):
            continue
        if not isinstance(value, list):
            raise TemplateError(f"The row's {name} is {type(value).__name__}; give a list.")
        out[name] = _without_nulls(value)
    return out


def _without_nulls(value: Any) -> Any:
    """A value as the source gave it: Arrow gives every row of a column all the keys any row
    has, null where a row had none (a tool schema's missing "required", say)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
