"""Bounded pieces of long text: what a view may send to the page of a turn, an answer or a log.

One turn of scraped instruction data can hold megabytes (a pasted log or book). A browser tab
struggles with a page that large, so views never send text whole: a turn shows a window of
TURN_CHARS characters that "show more" moves on request (`text_window`, `turn_window`), an
answer or a table cell shows its head (`clip`), a log shows its end (`tail`). The sizes are
characters of the source text; escaping for HTML may make the page a few times larger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dataset import InstructionDataset

TURN_CHARS = 2_000  # a turn in the dataset browser's rows; "show more" moves by as much
EDIT_CHARS = 10_000  # a turn in the row editor: the head is editable, the rest kept as it is
ANSWER_CHARS = 20_000  # a model's answer, or a turn of its conversation, in the comparator
CELL_CHARS = 2_000  # a cell of a table (the comparator's batch table)
LOG_CHARS = 20_000  # the end of a run's log
LISTED_TURNS = 20  # turns of one row shown in a page of rows (the editor shows them all)
TABLE_ROWS = 100  # rows of a table shown on the page (an export holds them all)

Span = tuple[int, int]


@dataclass(frozen=True)
class Excerpt:
    """A window of a longer text: `text` is `whole[start:start + len(text)]`, of `total`."""

    text: str
    start: int
    total: int

    @property
    def end(self) -> int:
        """Where the window ends in the whole text (exclusive)."""
        return self.start + len(self.text)

    @property
    def before(self) -> int:
        """Characters hidden before the window."""
        return self.start

    @property
    def after(self) -> int:
        """Characters hidden after the window."""
        return self.total - self.end

    @property
    def whole(self) -> bool:
        """True when nothing is hidden."""
        return self.start == 0 and self.end == self.total

    def next_start(self) -> int:
        """Where the next window starts ("show more"); the same window at the end."""
        return self.end if self.after else self.start

    def previous_start(self, size: int = TURN_CHARS) -> int:
        """Where the window of `size` before this one starts (0 at the beginning)."""
        return max(0, self.start - size)

    def spans(self, spans: Iterable[Span]) -> tuple[list[Span], int, int]:
        """Character spans of the whole text as spans of the window (clipped to it), and how
        many lie wholly in the hidden part before it and after it."""
        shown, before, after = [], 0, 0
        for start, end in spans:
            if end <= self.start:
                before += 1
            elif start >= self.end:
                after += 1
            else:
                shown.append((max(start, self.start) - self.start, min(end, self.end) - self.start))
        return shown, before, after

    def splice(self, whole: str, edited: str) -> str:
        """`whole` with this window replaced by `edited`: an edit of the shown part that keeps
        every hidden character. Raises ValueError if `whole` is not the text it was cut from."""
        if len(whole) != self.total or whole[self.start : self.end] != self.text:
            raise ValueError(
                "The text changed since this part of it was shown; show the row again and "
                "redo the edit."
            )
        return whole[: self.start] + edited + whole[self.end :]


def text_window(text: str, start: int = 0, size: int = TURN_CHARS) -> Excerpt:
    """The window of `text` from `start` (clamped into the text), at most `size` characters.
    Raises ValueError for a size below 1."""
    if size < 1:
        raise ValueError(f"A window holds at least one character; got size={size}.")
    start = max(0, min(int(start), max(0, len(text) - 1)))
    return Excerpt(text[start : start + size], start, len(text))


def turn_window(
    dataset: InstructionDataset, row: int, turn: int, start: int = 0, size: int = TURN_CHARS
) -> Excerpt:
    """The window of turn `turn` of `row` (edits applied) from `start`: what "show more" reads.
    Raises IndexError naming the row and turn when the row has no such turn."""
    messages = dataset.messages_of(row)
    if not 0 <= turn < len(messages):
        raise IndexError(f"Row {row} has {len(messages)} turns; there is no turn {turn}.")
    content = messages[turn].get("content")
    return text_window("" if content is None else str(content), start, size)


def clip(text: str, size: int = ANSWER_CHARS) -> str:
    """`text` cut to its first `size` characters, saying how many more there are."""
    text = "" if text is None else str(text)
    if len(text) <= size:
        return text
    return f"{text[:size]}… [{len(text) - size:,} more characters not shown]"


def tail(text: str, size: int = LOG_CHARS) -> str:
    """The end of `text` (a log): its last `size` characters from a line start where one is
    near, saying how many earlier characters are not shown."""
    text = "" if text is None else str(text)
    if len(text) <= size:
        return text
    kept = text[-size:]
    newline = kept.find("\n")
    if 0 <= newline < size // 4:  # start on a whole line when one starts soon
        kept = kept[newline + 1 :]
    return f"[… {len(text) - len(kept):,} earlier characters not shown]\n{kept}"
