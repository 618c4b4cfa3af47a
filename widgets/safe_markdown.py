"""Model output as HTML that cannot run: escaped first, then a tiny safe subset of Markdown.

The subset is bold, italics, inline code, fenced code blocks, bullet and numbered lists and
paragraphs. Links, images and raw HTML are never produced (their text stays literal), and the
result is marked so that MathJax leaves `$...$` alone.
"""

from __future__ import annotations

import html
import re

NO_MATH = "tex2jax_ignore mathjax_ignore"
_FENCE = re.compile(r"^```[^\n]*\n(.*?)(?:^```[ \t]*$|\Z)", re.S | re.M)
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])[*_](?=\S)(.+?)(?<=\S)[*_](?![\w*])")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")


def plain_html(text: str) -> str:
    """`text` escaped, line breaks and spaces kept (for the plain-text view)."""
    return f"<div class='{NO_MATH}' style='white-space: pre-wrap'>{html.escape(text)}</div>"


def markdown_html(text: str) -> str:
    """`text` escaped, then rendered with the safe Markdown subset."""
    parts, cursor = [], 0
    for fence in _FENCE.finditer(text):
        parts.append(_blocks(text[cursor : fence.start()]))
        parts.append(f"<pre><code>{html.escape(fence.group(1).rstrip(chr(10)))}</code></pre>")
        cursor = fence.end()
    parts.append(_blocks(text[cursor:]))
    return f"<div class='{NO_MATH}'>{''.join(parts)}</div>"


def _blocks(text: str) -> str:
    """Paragraphs and lists of (not yet escaped) text."""
    out, paragraph, items, kind = [], [], [], None

    def flush() -> None:
        nonlocal paragraph, items, kind
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(line) for line in paragraph) + "</p>")
        if items:
            out.append(
                f"<{kind}>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + f"</{kind}>"
            )
        paragraph, items, kind = [], [], None

    for line in text.split("\n"):
        bullet, numbered = _BULLET.match(line), _NUMBERED.match(line)
        item_kind = "ul" if bullet else "ol" if numbered else None
        if not line.strip():
            flush()
        elif item_kind:
            if paragraph or (kind and kind != item_kind):
                flush()
            kind = item_kind
            items.append((bullet or numbered).group(1))
        else:
            if items:
                flush()
            paragraph.append(line)
    flush()
    return "".join(out)


def _inline(text: str) -> str:
    """One line: escaped, then `code`, **bold** and *italics* (never inside code)."""
    pieces = _CODE.split(text)  # odd pieces are code spans
    out = []
    for k, piece in enumerate(pieces):
        escaped = html.escape(piece)
        if k % 2:
            out.append(f"<code>{escaped}</code>")
        else:
            escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
            out.append(_ITALIC.sub(r"<em>\1</em>", escaped))
    return "".join(out)
