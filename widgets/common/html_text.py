"""Untrusted text as HTML: escaped, with highlighted spans, long text folded and capped.

ipywidgets' HTML widget does not sanitise, so every piece of text from data, files or models
goes through these functions, which escape every character that comes from the text. None of
them sends a long text whole: a turn sends one window of it (workbench.data.excerpt sets the
sizes and the windows), so a 10 MB row costs the page a few KB.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable

from workbench.data.excerpt import (
    ANSWER_CHARS,
    LISTED_TURNS,
    LOG_CHARS,
    TURN_CHARS,
    Excerpt,
    clip,
    tail,
    text_window,
)

from .theme import MATCH_BACKGROUND

FOLD_CHARS = 600
MARK_STYLE = f"background: {MATCH_BACKGROUND}; color: var(--jp-ui-font-color1);"
NOTE_STYLE = "color: var(--jp-ui-font-color2);"


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


def fold(
    text: str, spans: Iterable[tuple[int, int]] = (), limit: int = FOLD_CHARS, cap: int = TURN_CHARS
) -> str:
    """Escaped (and highlighted) text; past `limit` characters the rest folds into a <details>
    that opens on a click; past `cap` characters nothing more is sent, only how many are left."""
    return window_html(text_window(str(text), 0, cap), spans, limit=limit)


def window_html(
    excerpt: Excerpt,
    spans: Iterable[tuple[int, int]] = (),
    hidden: tuple[int, int] = (0, 0),
    limit: int = FOLD_CHARS,
) -> str:
    """A window of a longer text as HTML: folded and highlighted like `fold`, with a note of
    the characters before and after it. `spans` are character spans of the whole text; those
    outside the window, plus `hidden` (matches the caller knows of before, after), are counted
    in a note, so a person knows the hidden part holds matches and on which side."""
    shown, before, after = excerpt.spans(spans)
    before, after = before + hidden[0], after + hidden[1]
    head = _note(f"[… {excerpt.before:,} characters before] ") if excerpt.before else ""
    tail_note = f" [{excerpt.after:,} more characters not shown]" if excerpt.after else ""
    matches = ""
    if before or after:
        sides = [f"{n:,} before" for n in [before] if n] + [f"{n:,} after" for n in [after] if n]
        matches = _note(f" [matches in the hidden part: {' and '.join(sides)} the shown text]")
    return head + _folded(excerpt.text, shown, limit, excerpt.after, tail_note) + matches


def _folded(text: str, spans: list, limit: int, after: int, tail_note: str) -> str:
    if len(text) <= limit:
        return highlight(text, spans) + (_note("…" + tail_note) if after else "")
    head = highlight(text[:limit], [(s, min(e, limit)) for s, e in spans if s < limit])
    rest = highlight(
        text[limit:], [(max(s, limit) - limit, e - limit) for s, e in spans if e > limit]
    )
    more = len(text) - limit + after
    return (
        f"<details><summary>{head}… <i>({more:,} more characters)</i></summary>{rest}"
        f"{_note('…' + tail_note) if after else ''}</details>"
    )


def _note(text: str) -> str:
    return f"<i style='{NOTE_STYLE}'>{html.escape(text)}</i>"


def transcript(
    messages: list[dict],
    spans: dict[int, list] | None = None,
    windows: dict[int, Excerpt] | None = None,
    hidden: dict[int, tuple[int, int]] | None = None,
    max_turns: int = LISTED_TURNS,
) -> str:
    """A conversation as HTML: one `wb-turn` block per message (the first `max_turns`), its
    role in a `wb-role` label, its content escaped, folded, highlighted (`spans` maps a turn to
    character spans of its whole text) and capped to a window (`windows` maps a turn to the
    window shown, by default its first TURN_CHARS characters; `hidden` to matches outside)."""
    spans, windows, hidden = spans or {}, windows or {}, hidden or {}
    out = []
    for k, m in enumerate(messages[:max_turns]):
        window = windows.get(k) or text_window(str(m.get("content") or ""), 0, TURN_CHARS)
        body = window_html(window, spans.get(k, []), hidden.get(k, (0, 0)))
        role = escape_text(m.get("role"))
        out.append(f"<div class='wb-turn'><span class='wb-role'>{role}</span>{body}</div>")
    if len(messages) > max_turns:
        more = len(messages) - max_turns
        out.append(f"<div class='wb-turn'>{_note(f'[{more:,} more turns not shown]')}</div>")
    return "".join(out)


def capped_html(text: str, size: int = ANSWER_CHARS) -> str:
    """Escaped plain text cut to its first `size` characters (workbench.data.excerpt.clip),
    saying how many more there are: for answers, prompts and notes of any length."""
    return escape_text(clip(text, size))


def log_tail_html(text: str, size: int = LOG_CHARS) -> str:
    """The end of a log as escaped preformatted text: its last `size` characters at most."""
    return f"<pre style='white-space: pre-wrap'>{escape_text(tail(text, size))}</pre>"


BADGE_CHARS = 200  # a flag reason on the page


def row_badges(row: dict) -> str:
    """A row's flagged / excluded / edited / synthetic badges as HTML (the flag reason escaped,
    clipped)."""
    badges = []
    if row.get("flag"):
        badges.append(f"flagged: {escape_text(clip(row['flag'], BADGE_CHARS))}")
    if row.get("excluded"):
        badges.append("excluded")
    if row.get("edited"):
        badges.append("edited")
    if row.get("origin"):
        badges.append(synthetic_badge(row["origin"]))
    return "".join(f"<span class='wb-dsb-badge'>{b}</span>" for b in badges)


def synthetic_badge(origin: dict) -> str:
    """ "synthetic, 8 Dec 2026 01:23" (the local time it was made, not the stored epoch
    seconds), with the generator and seed rows as its tooltip; escaped."""
    made = origin.get("time")
    when = ""
    if isinstance(made, (int, float)) and made > 0:
        when = ", " + time.strftime("%d %b %Y %H:%M", time.localtime(made)).lstrip("0")
    seeds = ", ".join(str(r) for r in origin.get("seed_rows") or [])
    tip = f"made by {origin.get('generator', '?')} from rows {seeds or 'none'}"
    return f"<span title='{escape_text(tip)}'>synthetic{escape_text(when)}</span>"
