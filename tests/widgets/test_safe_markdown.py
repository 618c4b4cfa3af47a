"""Model output as Markdown: tables, headings and lists render as elsewhere; nothing can run."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from widgets.common.safe_markdown import NO_MATH, TAGS, markdown_html, plain_html


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text a person would read."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data

    def names(self) -> list[str]:
        return [tag for tag, _ in self.tags]


def test_a_table_becomes_an_html_table():
    found = Elements(markdown_html("| model | score |\n|---|--:|\n| base | 0.4 |\n| run-1 | 0.7 |"))
    assert found.names()[:3] == ["div", "table", "thead"]
    assert found.names().count("tr") == 3 and found.names().count("td") == 4
    assert ("td", {"style": "text-align:right"}) in found.tags  # column alignment kept


def test_headings_lists_code_and_emphasis_render():
    text = "# Plan\n\n## Steps\n\n1. *mix*\n2. **bake**\n\n- `<x>`\n\n> quoted\n\n~~old~~"
    found = Elements(markdown_html(text + "\n\n```python\nif a < b:\n    pass\n```"))
    for tag in ("h1", "h2", "ol", "ul", "li", "em", "strong", "code", "pre", "blockquote", "s"):
        assert tag in found.names(), tag
    assert "<x>" in found.text and "if a < b:\n    pass" in found.text  # shown, not parsed


def test_a_single_newline_is_a_line_break():
    assert "first<br" in markdown_html("first\nsecond")


@pytest.mark.parametrize(
    "attack",
    [
        "<script>window.x = 1</script>",
        "<img src=x onerror=alert(1)>",
        '<iframe src="javascript:alert(1)"></iframe>',
        "[click me](javascript:alert(1))",
        "![pic](https://example.com/x.png)",
        "<https://example.com>",
        '**bold** and <b onmouseover="alert(1)">raw html</b>',
        '<a href="https://example.com">raw link</a>',
        "<!-- comment --><style>body {display: none}</style>",
    ],
)
def test_raw_html_links_and_images_come_out_as_text(attack):
    found = Elements(markdown_html(attack))
    assert set(found.names()) <= TAGS | {"div"}
    assert not {"script", "img", "iframe", "a", "style"} & set(found.names())
    assert all(not k.startswith("on") and k != "href" for _, a in found.tags for k in a)
    words = attack.replace("**", "")
    assert words.split(">")[0].lstrip("<!") in found.text  # a person sees what was written


def test_math_stays_text_for_mathjax():
    for render in (markdown_html, plain_html):
        html = render("math: $x^2 + y^2$")
        assert html.startswith(f"<div class='{NO_MATH}'") and "$x^2 + y^2$" in html


def test_the_plain_view_escapes_everything():
    assert plain_html("**a** <b>") == (
        f"<div class='{NO_MATH}' style='white-space: pre-wrap'>**a** &lt;b&gt;</div>"
    )
