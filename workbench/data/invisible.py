"""What sets apart two texts that read the same: characters no one sees, or a Unicode form.

Format characters (Unicode category Cf: zero-width space, zero-width joiners, word joiner,
byte order mark, soft hyphen, direction marks) change the bytes and the tokens of a text but
not what a reader sees; "é" can be one code point (NFC) or "e" and a combining accent (NFD).
Duplicate checks compare texts without them (data.chunks.canonical) and name what differed.
"""

from __future__ import annotations

import unicodedata


def invisible_characters(text: str) -> list[str]:
    """The distinct invisible (format, Cf) characters of `text`, in code point order."""
    return sorted({c for c in text if unicodedata.category(c) == "Cf"})


def character_names(chars: list[str]) -> str:
    """ "U+200B ZERO WIDTH SPACE, U+FEFF ZERO WIDTH NO-BREAK SPACE" for people."""
    return ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'an unnamed character')}" for c in chars)


def unseen_difference(text: str, other: str) -> str:
    """How two texts that read the same differ ("" when they are equal): "but for invisible
    U+200B ZERO WIDTH SPACE", or "in another Unicode form" when only the Unicode
    composition differs (texts equal under data.chunks.canonical)."""
    if text == other:
        return ""
    invisible = invisible_characters(text + other)
    if invisible:
        return f"but for invisible {character_names(invisible)}"
    return "in another Unicode form (accents composed and decomposed: NFC and NFD)"
