"""Model output as HTML that cannot run: Markdown rendered by markdown-it-py, then sanitised by nh3.

markdown-it-py renders CommonMark with tables and strikethrough, with raw HTML off (it comes out
as escaped text) and links, images and autolinks off (`[text](url)` stays literal, so a model
cannot put a clickable address in front of a person). nh3 (the Ammonia sanitiser) then keeps
only the tags below, as a second line of defence. The result is marked so that MathJax leaves
`$...$` alone.
"""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

NO_MATH = "tex2jax_ignore mathjax_ignore"
TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "hr",
    "del",
    "s",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ATTRIBUTES = {"ol": {"start"}, "th": {"style"}, "td": {"style"}}  # list start, column alignment
STYLE_PROPERTIES = {"text-align"}
# breaks: a single newline is a line break, as chat interfaces show model answers
_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False, "breaks": True})
    .enable(["table", "strikethrough"])
    .disable(["link", "image", "autolink"])
)


def plain_html(text: str) -> str:
    """`text` escaped, line breaks and spaces kept (for the plain-text view)."""
    return f"<div class='{NO_MATH}' style='white-space: pre-wrap'>{html.escape(text)}</div>"


def markdown_html(text: str) -> str:
    """`text` as Markdown rendered to HTML with nothing that can run or link away."""
    rendered = _MARKDOWN.render(text)
    safe = nh3.clean(
        rendered,
        tags=TAGS,
        attributes=ATTRIBUTES,
        filter_style_properties=STYLE_PROPERTIES,
        url_schemes=set(),
        link_rel=None,
    )
    return f"<div class='{NO_MATH}'>{safe}</div>"
