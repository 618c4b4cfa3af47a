"""Text that spells a special token stays text: only the template writes control tokens.

A tokenizer turns every occurrence of a special token's text into that token, wherever it
stands, so an answer that mentions "<|im_end|>" would train the end-of-turn token mid-answer
and the model would learn to stop there (transformers #29279). Here a conversation whose
messages spell a special token is tokenised in pieces: the special tokens the template itself
wrote stay control tokens, and the text between them is tokenised with special tokens split
into ordinary text (`split_special_tokens`). Which occurrences are the template's is found by
rendering again with every spelled occurrence in the messages replaced by stand-ins of the same
length: an occurrence the stand-in render still has at the same place is the template's.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from .jinja import render

STAND_IN = "\ue010"  # Unicode private use: a character no template or tokenizer treats specially

Span = tuple[int, int]


class PromptText(str):
    """A rendered prompt whose messages spell special tokens: `control` holds the character
    spans of the special tokens the template wrote; every other spelling is text."""

    control: list[Span]


def prompt_text(
    tokenizer: Any, source: str, messages: list[dict], text: str, variables: dict
) -> str:
    """`text` (the prompt `messages` render to) as a PromptText when its messages spell special
    tokens of a fast tokenizer and the template's own can be told apart; else `text` itself."""
    strings = special_strings(tokenizer) if getattr(tokenizer, "is_fast", False) else ()
    if not strings or not spelled(messages, strings):
        return text
    stand_ins = render(source, with_stand_ins(messages, strings), True, variables=variables)
    control = control_spans(text, stand_ins, strings)
    if control is None:
        return text
    marked = PromptText(text)
    marked.control = control
    return marked


def prompt_token_ids(tokenizer: Any, text: str) -> list[int]:
    """The token ids of one rendered prompt, a PromptText's spellings tokenised as text."""
    if isinstance(text, PromptText):
        return encode_in_pieces(tokenizer, text, text.control)[0]
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_prompts(tokenizer: Any, texts: list[str]):
    """The left-padded batch (tensors) of rendered prompts, a PromptText's spellings of special
    tokens tokenised as text."""
    if not any(isinstance(t, PromptText) for t in texts):
        return tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
    ids = [prompt_token_ids(tokenizer, t) for t in texts]
    return tokenizer.pad({"input_ids": ids}, padding=True, padding_side="left", return_tensors="pt")


def special_strings(tokenizer: Any) -> tuple[str, ...]:
    """The texts of the tokenizer's special tokens (those it never splits), longest first."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    found = {t.content for t in decoder.values() if getattr(t, "special", False) and t.content}
    found |= {t for t in getattr(tokenizer, "all_special_tokens", []) if t}
    return tuple(sorted(found, key=lambda t: (-len(t), t)))


def spelled(messages: list[dict], strings: tuple[str, ...]) -> list[tuple[int, str]]:
    """(message index, special token text) for each message content that spells one."""
    out = []
    for k, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str) and _pattern(strings).search(content):
            out += [(k, s) for s in strings if s in content]
    return out


@functools.lru_cache(maxsize=8)
def _pattern(strings: tuple[str, ...]) -> re.Pattern:
    """One search for any of `strings` (a tokenizer has up to hundreds of special tokens)."""
    return re.compile("|".join(map(re.escape, strings)))


def with_stand_ins(messages: list[dict], strings: tuple[str, ...]) -> list[dict]:
    """The messages with every special token text in their contents replaced by stand-ins of
    the same length."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and any(s in content for s in strings):
            for s in strings:
                content = content.replace(s, STAND_IN * len(s))
            message = {**message, "content": content}
        out.append(message)
    return out


def control_spans(text: str, stand_in_text: str, strings: tuple[str, ...]) -> list[Span] | None:
    """Where `text` holds a special token the template wrote: occurrences that the render
    with stand-ins (`stand_in_text`) holds at the same place. None when the two renders do not
    align (a template that changed a message's length), so no place can be told apart."""
    if len(text) != len(stand_in_text):
        return None
    spans, at = [], 0
    while at < len(text):
        found = next((s for s in strings if text.startswith(s, at)), None)
        if found is None:
            at += 1
            continue
        if stand_in_text.startswith(found, at):
            spans.append((at, at + len(found)))
        at += len(found)
    return spans


def encode_in_pieces(
    tokenizer: Any, text: str, control: list[Span]
) -> tuple[list[int], list[Span]]:
    """Token ids of `text` and each token's character span: the `control` spans as their
    special tokens, every other piece with special token texts tokenised as plain text."""
    ids: list[int] = []
    offsets: list[Span] = []
    start = 0
    for begin, end in [*control, (len(text), len(text))]:
        if begin > start:
            piece = tokenizer(
                text[start:begin],
                add_special_tokens=False,
                split_special_tokens=True,
                return_offsets_mapping=True,
            )
            ids += piece["input_ids"]
            offsets += [(start + a, start + b) for a, b in piece["offset_mapping"]]
        if end > begin:
            ids.append(tokenizer.convert_tokens_to_ids(text[begin:end]))
            offsets.append((begin, end))
        start = end
    return ids, offsets


def tokenize_as_text(
    tokenizer: Any, source: str, messages: list[dict], rendered: Any, variables: dict, strings
) -> tuple[list[int], list[Span]] | None:
    """Ids and trained token spans of a conversation whose messages spell special tokens
    (`rendered`: its text and trained character spans, templates.spans), the spellings
    tokenised as text; None when the template's own tokens cannot be told apart from them."""
    stand_ins = render(source, with_stand_ins(messages, strings), False, variables=variables)
    control = control_spans(rendered.text, stand_ins, strings)
    if control is None:
        return None
    ids, offsets = encode_in_pieces(tokenizer, rendered.text, control)
    covering: list[int | None] = [None] * len(rendered.text)
    for token, (start, end) in enumerate(offsets):
        for char in range(start, end):
            if covering[char] is None:
                covering[char] = token
    spans = []
    for start, end in rendered.spans:
        inside = [covering[c] for c in range(start, end) if covering[c] is not None]
        if inside and inside[-1] >= inside[0]:
            spans.append((inside[0], inside[-1] + 1))
    return ids, spans
