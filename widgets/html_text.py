"""Untrusted text as HTML: escaped, with highlighted spans and long text folded.

ipywidgets' HTML widget does not sanitise, so every piece of text from data, files or models
goes through these functions, which escape every character that comes from the text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

FOLD_CHARS = 600
MARK_STYLE = "background: var(--jp-warn-color3); color: var(--jp-ui-font-color1);"


def escape_text(text: object) -> str:
    """`text` safe to put in HTML (quotes included); None becomes an empty string."""
    return "" if text is None else html.escape(str(text), quote=True)


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Escaped `text` with the character spans [start, end) wrapped in <mark>."""
    out, cursor = [], 0
    for start, end in sorted(spans):
        start, end = max(start, cursor), min(end, len(text))
        if end <= start:
            continue
        out.append(html.escape(text[cursor:start]))
        out.append(f"<mark style='{MARK_STYLE}'>{html.escape(text[start:end])}</mark>")
        cursor = end
    out.append(html.escape(text[cursor:]))
    return "".join(out)


def fold(text: str, spans: Iterable[tuple[int, int]] = (), limit: int = FOLD_CHARS) -> str:
    """Escaped (and highlighted) text; past `limit` characters, the rest folds into a
    <details> that opens on a click."""
    spans = list(spans)
    if len(text) <= limit:
        return highlight(text, spans)
    head = highlight(text[:limit], [(s, min(e, limit)) for s, e in spans if s < limit])
    rest = highlight(
        text[limit:], [(max(s, limit) - limit, e - limit) for s, e in spans if e > limit]
    )
    more = len(text) - limit
    return f"<details><summary>{head}… <i>({more:,} more characters)</i></summary>{rest}</details>"


def transcript(messages: list[dict], spans: dict[int, list] | None = None) -> str:
    """A conversation as HTML: one `wb-turn` block per message, its role in a `wb-role` label,
    its content escaped, folded and highlighted (`spans` maps a turn to its character spans)."""
    spans = spans or {}
    return "".join(
        f"<div class='wb-turn'><span class='wb-role'>{escape_text(m.get('role'))}</span>"
        f"{fold(str(m.get('content') or ''), spans.get(k, []))}</div>"
        for k, m in enumerate(messages)
    )
