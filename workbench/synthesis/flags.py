"""Flags for a person to look at: a candidate in another language or format than the seed rows.

Nothing here drops a candidate. Language is told two ways, both cheap and without a model:
the writing system of most letters (Latin, Cyrillic, CJK, ...), and, within one writing system,
how many of its words are the seed rows' and dataset's most common words (function words such
as "the", "of", "is": short, frequent, a large share of any text in the same language and
almost none of another's). Format: the answer written as JSON or code where no seed row's
answer is, or the candidate sent as JSON instead of the asked sections.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .parse import ASKED, Parsed
from .prompts import Seed
from .similarity import tokens

COMMON_WORDS = 40  # how many of the most frequent short words count as "common"
SHORT = 4  # letters: function words are short, the words of a task's topic mostly longer
MIN_WORDS = 12  # fewer words than this are too few to tell a language by
MIN_COMMON_SHARE = 0.15  # below this share in the seeds, common words tell nothing


@dataclass(frozen=True)
class Style:
    """What the seed rows look like: their writing system, common words and kinds of answer."""

    script: str | None
    common: frozenset[str]
    common_share: float  # share of the seed rows' words that are common words
    answer_kinds: frozenset[str]

    @classmethod
    def of(cls, seeds: Sequence[Seed], words: Counter | None = None) -> Style:
        """The style of `seeds`; `words` counts the dataset's words, for common words."""
        texts = [f"{s.instruction}\n{s.response}" for s in seeds]
        seed_words = [w for t in texts for w in tokens(t) if w.isalpha()]
        counts = Counter(seed_words) + (words or Counter())
        short = [(w, c) for w, c in counts.items() if w.isalpha() and len(w) <= SHORT]
        short.sort(key=lambda item: -item[1])
        common = frozenset(w for w, _ in short[:COMMON_WORDS])
        share = sum(w in common for w in seed_words) / len(seed_words) if seed_words else 0.0
        kinds = frozenset(answer_kind(s.response) for s in seeds)
        return cls(script_of("\n".join(texts)), common, share, kinds)

    def flags(self, parsed: Parsed) -> dict[str, str]:
        """Why a person should look at this candidate, by kind; empty when nothing stands out."""
        flags = {}
        text = "\n".join(m["content"] for m in parsed.messages if m["role"] != "system")
        language = self._language(text)
        if language:
            flags["language"] = language
        notes = []
        if parsed.format != ASKED:
            notes.append(f"sent as {parsed.format}, not in the asked sections")
        answer = parsed.messages[-1]["content"]
        kind = answer_kind(answer)
        if self.answer_kinds and kind not in self.answer_kinds:
            notes.append(
                f"the answer is {kind}; the seed rows' are {', '.join(sorted(self.answer_kinds))}"
            )
        if notes:
            flags["format"] = "; ".join(notes)
        return flags

    def _language(self, text: str) -> str | None:
        script = script_of(text)
        if script and self.script and script != self.script:
            return f"written in {script.title()} letters; the seed rows use {self.script.title()}"
        words = [w for w in tokens(text) if w.isalpha()]
        if len(words) < MIN_WORDS or self.common_share < MIN_COMMON_SHARE:
            return None
        share = sum(w in self.common for w in words) / len(words)
        if share < self.common_share / 4:
            return (
                f"few of the seed rows' common words ({share:.0%} against {self.common_share:.0%}"
                "): maybe another language"
            )
        return None


def script_of(text: str) -> str | None:
    """The writing system of most letters in `text` (LATIN, CYRILLIC, CJK, ...), or None."""
    counts: Counter = Counter()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            counts[name.split(" ")[0] if name else "OTHER"] += 1
    return counts.most_common(1)[0][0] if counts else None


def answer_kind(text: str) -> str:
    """ "json", "code" or "text": what an answer is written as."""
    stripped = text.strip()
    if stripped[:1] in "{[" and stripped[-1:] in "}]":
        try:
            json.loads(stripped)
            return "json"
        except ValueError:
            pass
    return "code" if "```" in stripped else "text"
