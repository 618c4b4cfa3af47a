"""Bounded pieces of long text: windows that page through a turn, heads, log tails, and the
search matches around a window; what every view sends to the page instead of the whole text."""

from __future__ import annotations

import pytest

from workbench.data import load_source
from workbench.data.excerpt import TURN_CHARS, clip, tail, text_window

TEXT = "".join(f"line {i:05d}\n" for i in range(2_000))  # 22,000 characters


def test_show_more_pages_through_the_whole_text_and_back():
    window, pieces = text_window(TEXT), []
    while True:
        assert len(window.text) <= TURN_CHARS and window.total == len(TEXT)
        pieces.append(window.text)
        if not window.after:
            break
        window = text_window(TEXT, window.next_start())
    assert "".join(pieces) == TEXT and len(pieces) == -(-len(TEXT) // TURN_CHARS)
    assert window.next_start() == window.start  # the last window stays put
    back = text_window(TEXT, window.previous_start())
    assert back.end == window.start and back.before == window.start - TURN_CHARS
    assert text_window(TEXT, -5).start == 0 and text_window(TEXT, 10**9).end == len(TEXT)
    assert text_window("").whole and text_window("short").whole
    with pytest.raises(ValueError, match="at least one character"):
        text_window(TEXT, 0, 0)


def test_spans_are_shown_in_the_window_or_counted_on_their_side():
    window = text_window(TEXT, 100, 50)
    shown, before, after = window.spans([(0, 5), (90, 110), (120, 130), (149, 160), (150, 160)])
    assert shown == [(0, 10), (20, 30), (49, 50)] and (before, after) == (1, 1)


def test_an_edit_of_the_shown_part_keeps_every_hidden_character():
    window = text_window(TEXT, 4_000, 100)
    edited = window.splice(TEXT, "EDITED")
    assert edited == TEXT[:4_000] + "EDITED" + TEXT[4_100:]
    with pytest.raises(ValueError, match="changed since"):
        window.splice(TEXT[1:], "EDITED")


def test_a_head_and_a_log_tail_are_bounded_and_say_what_they_leave_out():
    assert clip("short", 10) == "short"
    head = clip(TEXT, 1_000)
    assert head.startswith(TEXT[:1_000]) and "21,000 more characters not shown" in head
    assert len(head) < 1_100
    end = tail(TEXT, 1_000)
    assert end.endswith(TEXT[-100:]) and len(end) < 1_100
    kept = end.split("\n", 1)[1]
    assert kept.startswith("line ") and TEXT.endswith(kept)  # starts on a whole line
    assert f"{len(TEXT) - len(kept):,} earlier characters not shown" in end
    assert tail("a\nb", 10) == "a\nb"


def test_search_highlights_around_a_window_and_counts_matches_outside_it():
    long = "x" * 10_000
    long = long[:100] + "needle" + long[100:5_000] + "needle" + long[5_000:] + "needle"
    ds = load_source(
        [
            {
                "messages": [
                    {"role": "user", "content": long},
                    {"role": "assistant", "content": "a needle"},
                ]
            }
        ]
    )
    found = ds.search("needle")
    user, answer = ds.messages_of(0)
    first = found.window_matches(user, 0, TURN_CHARS)
    assert first.spans == [(100, 106)] and (first.before, first.after) == (0, 2)
    middle = found.window_matches(user, 4_000, 6_000)
    assert middle.spans == [(5_006, 5_012)] and (middle.before, middle.after) == (1, 1)
    assert found.window_matches(answer, 0, 8).spans == [(2, 8)]
    by_role = ds.search("needle", roles=["assistant"])
    assert by_role.window_matches(user, 0, TURN_CHARS).spans == []
    empty = ds.search("z*", regex=True)  # matches empty text everywhere: stops, finds nothing
    assert empty.window_matches(user, 0, TURN_CHARS).spans == []
