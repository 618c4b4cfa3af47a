"""Where the trained text is: the character spans of assistant turns in a rendered conversation.

The definition (the prefix method): an assistant turn k trains from the end of the generation
prompt for it, `render(messages[:k], add_generation_prompt=True)`, to the end of
`render(messages[:k + 1])`: the answer, its end-of-turn token and any whitespace the template
writes after that token, which is what TRL's completion-only loss trains too. Templates that
mark assistant text with `{% generation %}` train exactly those blocks.

The prefix method renders once per assistant turn. A fast path renders once per conversation:
assistant contents are wrapped in sentinel characters, located, and the template's fixed text
around them (learned per template from probe conversations with the prefix method) gives the
spans. It is used only where it reproduced the prefix method on every probe, and a row that
breaks its assumptions falls back to the prefix method.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .jinja import (
    TemplateError,
    has_generation_blocks,
    render,
    render_tracked,
    template_variables,
)

Span = tuple[int, int]
OPEN, CLOSE = (
    "\ue000",
    "\ue001",
)  # Unicode private use: never in real data (rows with them fall back)
STOP_STRINGS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")


@dataclass(frozen=True)
class Layout:
    """A template's fixed text around assistant content, learned from probes.

    `before`: between the end of the generation prompt and the content. `after`: between the
    content and the end of the turn, when the turn is not the conversation's last message.
    """

    before: str
    after: str


def trained_spans(template: Any, messages: list[dict]) -> tuple[str, list[Span]]:
    """The rendered text and the character spans that train under `template.train_on`."""
    variables = template_variables(template.tokenizer)
    return spans_for(template.jinja, messages, template.train_on, variables)


def spans_batch(
    source: str, conversations: list[list[dict]], train_on: str, variables: dict
) -> list[tuple[str, list[Span]]]:
    """`spans_for` over many conversations; the first is also checked against the definition.

    Should the fast path disagree with the prefix method there, it is switched off for this
    template and the batch is redone the slow, exact way.
    """
    out = [spans_for(source, m, train_on, variables) for m in conversations]
    if out and out[0] != spans_for(source, conversations[0], train_on, variables, fast=False):
        _NO_FAST_PATH.add((source, _freeze(variables)))
        out = [spans_for(source, m, train_on, variables, fast=False) for m in conversations]
    return out


_NO_FAST_PATH: set[tuple[str, tuple]] = set()


def spans_for(
    source: str, messages: list[dict], train_on: str, variables: dict, fast: bool = True
) -> tuple[str, list[Span]]:
    """`trained_spans` on a Jinja source; `fast=False` forces the prefix method (the definition)."""
    if train_on == "all":
        text = render(source, messages, False, variables=variables)
        return text, [(0, len(text))] if text else []
    if has_generation_blocks(source):
        text, spans = render_tracked(source, messages, False, variables=variables)
        spans = [s for s in spans if s[1] > s[0]]
        return text, spans[-1:] if train_on == "last_assistant" else spans
    turns = _trained_turns(messages, train_on)
    frozen = _freeze(variables)
    if fast and (source, frozen) not in _NO_FAST_PATH:
        layout = learn_layout(source, frozen)
        if layout is not None:
            found = _fast_spans(source, messages, turns, layout, variables)
            if found is not None:
                return found
    text = render(source, messages, False, variables=variables)
    return text, _prefix_spans(source, messages, turns, text, variables)


def _trained_turns(messages: list[dict], train_on: str) -> list[int]:
    turns = [k for k, m in enumerate(messages) if m.get("role") == "assistant"]
    return turns[-1:] if train_on == "last_assistant" else turns


def _prefix_spans(
    source: str, messages: list[dict], turns: list[int], text: str, variables: dict
) -> list[Span]:
    spans: list[Span] = []
    cursor = 0
    for k in turns:
        prompt = render(source, messages[:k], True, variables=variables)
        last = k == len(messages) - 1
        upto = text if last else render(source, messages[: k + 1], False, variables=variables)
        if text.startswith(prompt) and text.startswith(upto) and len(upto) > len(prompt):
            span = (len(prompt), len(upto))
        else:  # prefixes of this conversation are not prefixes of its text: find the answer
            anchored = text.startswith(prompt) and len(prompt) >= cursor
            start = len(prompt) if anchored else cursor
            span = _locate_answer(text, messages[k], start, anchored, variables)
        if span is not None and span[1] > span[0]:
            spans.append(span)
            cursor = span[1]
    return spans


def _locate_answer(
    text: str, message: dict, start: int, anchored: bool, variables: dict
) -> Span | None:
    """The answer's text found after `start`, with a stop token that follows it directly.

    `anchored`: `start` is the end of the generation prompt, so the span starts there when only
    whitespace separates it from the answer.
    """
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    for needle in (content, content.strip()):
        at = text.find(needle, start)
        if at >= 0:
            end = at + len(needle)
            stops = {s for s in (*STOP_STRINGS, variables.get("eos_token")) if s}
            stop = next((len(s) for s in stops if text.startswith(s, end)), 0)
            if stop:  # the whitespace the template puts after a stop token is trained too
                end += stop
                end += len(text[end:]) - len(text[end:].lstrip())
            return (start if anchored and not text[start:at].strip() else at), end
    return None


def _fast_spans(
    source: str, messages: list[dict], turns: list[int], layout: Layout, variables: dict
) -> tuple[str, list[Span]] | None:
    """One render with sentinel-wrapped answers; None where a row breaks the fast path's rules."""
    if not turns:
        return None
    marked = list(messages)
    for k in turns:
        content = messages[k].get("content")
        if not isinstance(content, str) or not content or OPEN in content or CLOSE in content:
            return None
        marked[k] = {**messages[k], "content": OPEN + content + CLOSE}
    raw = render(source, marked, False, variables=variables)
    located = _strip_sentinels(raw, len(turns))
    if located is None:
        return None
    text, contents = located
    spans: list[Span] = []
    for k, (c_start, c_end) in zip(turns, contents):
        start = c_start - len(layout.before)
        if start < (spans[-1][1] if spans else 0) or text[start:c_start] != layout.before:
            return None
        if k == len(messages) - 1:
            end = len(text)
        else:
            end = c_end + len(layout.after)
            if text[c_end:end] != layout.after:
                return None
        spans.append((start, end))
    return text, [s for s in spans if s[1] > s[0]]


def _strip_sentinels(raw: str, expected: int) -> tuple[str, list[Span]] | None:
    """The text without sentinels and each wrapped content's span in it, if all are intact."""
    if raw.count(OPEN) != expected or raw.count(CLOSE) != expected:
        return None
    parts: list[str] = []
    spans: list[Span] = []
    length = pos = 0
    for _ in range(expected):
        o = raw.find(OPEN, pos)
        c = raw.find(CLOSE, o)
        if o < 0 or c < 0 or OPEN in raw[o + 1 : c]:
            return None
        parts.append(raw[pos:o])
        length += o - pos
        spans.append((length, length + c - o - 1))
        parts.append(raw[o + 1 : c])
        length += c - o - 1
        pos = c + 1
    parts.append(raw[pos:])
    return "".join(parts), spans


def _freeze(variables: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in variables.items() if isinstance(v, str)))


PROBE_CONTENTS = ("Answer one.", "  Padded answer with\nlines.  \n", "Answer three.")


def _probes() -> list[list[dict]]:
    """Conversations that exercise what a template may treat differently."""
    user = {"role": "user", "content": "A question?"}
    system = {"role": "system", "content": "A system prompt."}
    a = [{"role": "assistant", "content": c} for c in PROBE_CONTENTS]
    follow = {"role": "user", "content": "And another?"}
    return [
        [user, a[0]],
        [system, user, a[1]],
        [user, a[0], follow, a[1], follow, a[2]],
        [system, user, a[2], follow, a[0]],
        [user, a[1], follow],
    ]


@functools.lru_cache(maxsize=64)
def learn_layout(source: str, frozen_variables: tuple) -> Layout | None:
    """The template's fixed text around answers, or None when the fast path cannot reproduce it."""
    variables = dict(frozen_variables)
    befores: set[str] = set()
    afters: set[str] = set()
    checked = 0
    for messages in _probes():
        turns = _trained_turns(messages, "all_assistant")
        try:
            text = render(source, messages, False, variables=variables)
            marked = [
                {**m, "content": OPEN + m["content"] + CLOSE} if k in turns else m
                for k, m in enumerate(messages)
            ]
            located = _strip_sentinels(
                render(source, marked, False, variables=variables), len(turns)
            )
            if located is None or located[0] != text:
                return None  # the template changes or moves the answer text
            for k, (c_start, c_end) in zip(turns, located[1]):
                prompt = render(source, messages[:k], True, variables=variables)
                upto = render(source, messages[: k + 1], False, variables=variables)
                if not (text.startswith(prompt) and text.startswith(upto)):
                    return None
                if not len(prompt) <= c_start <= c_end <= len(upto):
                    return None
                befores.add(text[len(prompt) : c_start])
                if k < len(messages) - 1:
                    afters.add(text[c_end : len(upto)])
        except TemplateError:
            continue  # e.g. a template that refuses system turns: other probes decide
        checked += 1
    if checked < 2 or len(befores) != 1 or len(afters) > 1:
        return None
    return Layout(befores.pop(), afters.pop() if afters else "")
