"""Where the trained text is: the character spans of the turns that train in a rendered conversation.

A turn trains by its own flag (Axolotl's "train"/"training", "loss" in some ShareGPT files,
OpenAI's "weight") where it has one, else by `train_on`. The definition (the prefix method): an
assistant turn k trains from the end of `render(messages[:k], add_generation_prompt=True)` to the
end of `render(messages[:k + 1])`: the answer, its end-of-turn token and the whitespace after it,
as TRL's completion-only loss trains. Where a template writes a turn differently once later turns
follow (Qwen3 drops the <think> part of earlier answers), the turn is located in the full rendering,
the text that trains: what changes when a marker replaces its content is its text. A turn that
cannot be located (dropped, reordered, rewritten beyond recognition) does not train and is reported
in `Rendered.unlocated`. Templates with `{% generation %}` blocks train those blocks.

A fast path renders once per conversation: assistant contents are wrapped in sentinels, located,
and the template's fixed text around them (learned per template from probe conversations with the
prefix method) gives the spans. It is used only where it reproduced the prefix method on every
probe; a row that breaks its assumptions falls back to the prefix method.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from .jinja import (
    TRAIN_FLAGS,
    TemplateError,
    has_generation_blocks,
    render,
    render_tracked,
    template_variables,
    tested_strings,
)

Span = tuple[int, int]
# Unicode private use: never in real data (rows with them fall back)
OPEN, CLOSE = "\ue000", "\ue001"
MARKS = ("\ue002", "\ue003", "\ue004")  # stand-ins for a turn's content while locating it
STOP_STRINGS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")


@dataclass(frozen=True)
class Layout:
    """A template's fixed text around assistant content, learned from probes. `before`: from the
    generation prompt's end to the content; `after`: from the content to the end of a turn that
    is not the conversation's last."""

    before: str
    after: str


@dataclass(frozen=True)
class Rendered:
    """A rendered conversation and its trained character spans. `unlocated`: the messages that
    should train (under train_on="all": be masked) but that the template does not write as
    given, so that could not be done; the template check "answer_not_found" reports them."""

    text: str
    spans: list[Span]
    unlocated: tuple[int, ...] = ()


def trained_spans(template: Any, messages: list[dict]) -> Rendered:
    """The rendered text and the character spans that train under `template.train_on`."""
    variables = template_variables(template.tokenizer)
    return spans_for(template.jinja, messages, template.train_on, variables)


def spans_batch(
    source: str,
    conversations: list[list[dict]],
    train_on: str,
    variables: dict,
    contexts: list[dict] | None = None,
) -> list[Rendered]:
    """`spans_for` over many conversations; the first is also checked against the definition:
    should the fast path disagree there, it is switched off for this template and the batch is
    redone the slow, exact way. `contexts[k]`: row k's tools and documents, if any."""
    each = [{**variables, **c} if c else variables for c in contexts or [None] * len(conversations)]
    out = [spans_for(source, m, train_on, v) for m, v in zip(conversations, each)]
    if out and out[0] != spans_for(source, conversations[0], train_on, each[0], fast=False):
        _NO_FAST_PATH.add((source, _freeze(variables)))
        out = [spans_for(source, m, train_on, v, fast=False) for m, v in zip(conversations, each)]
    return out


_NO_FAST_PATH: set[tuple[str, tuple]] = set()


def spans_for(
    source: str, messages: list[dict], train_on: str, variables: dict, fast: bool = True
) -> Rendered:
    """`trained_spans` on a Jinja source; `fast=False` forces the prefix method (the definition).
    Raises TemplateError where the template fails or a training flag is bad (`train_flag`)."""
    flags = [train_flag(m, k) for k, m in enumerate(messages)]
    if train_on == "all":
        return _all_but_masked(source, messages, flags, variables)
    turns = _trained_turns(messages, train_on, flags)
    if has_generation_blocks(source):
        found = _block_spans(source, messages, turns, train_on, variables)
        if found is not None:
            return found
    frozen = _freeze(variables)
    fast = fast and not (variables.get("tools") or variables.get("documents"))  # learnt without
    if fast and (source, frozen) not in _NO_FAST_PATH:
        layout = learn_layout(source, frozen)
        if layout is not None:
            found = _fast_spans(source, messages, turns, layout, variables)
            if found is not None:
                return found
    text = render(source, messages, False, variables=variables)
    return _located(source, messages, turns, text, variables)


def train_flag(message: dict, index: int) -> bool | None:
    """The message's own say on whether it trains (None: it has none; train_on decides). Raises
    TemplateError naming the message for a value other than true/false or 0/1, and for flags
    that disagree (e.g. "weight": 1 with "loss": false)."""
    given = {key: message[key] for key in TRAIN_FLAGS if message.get(key) is not None}
    for key, value in given.items():
        if isinstance(value, str) or value not in (0, 1):
            raise TemplateError(
                f"Message {index} has {key}={value!r}; a training flag is true or false "
                '(OpenAI\'s "weight": 0 or 1). Fix the value or remove the key.'
            )
    values = {bool(v) for v in given.values()}
    if len(values) > 1:
        raise TemplateError(
            f"Message {index} has training flags that disagree ({given}); keep one of them."
        )
    return values.pop() if values else None


def _trained_turns(messages: list[dict], train_on: str, flags: list[bool | None]) -> list[int]:
    answers = [k for k, m in enumerate(messages) if m.get("role") == "assistant"]
    default = set(answers[-1:] if train_on == "last_assistant" else answers)
    return [k for k, flag in enumerate(flags) if (k in default if flag is None else flag)]


def _all_but_masked(
    source: str, messages: list[dict], flags: list[bool | None], variables: dict
) -> Rendered:
    """train_on="all": every character trains except the turns flagged not to."""
    text = render(source, messages, False, variables=variables)
    masked = [k for k, flag in enumerate(flags) if flag is False]
    found = _located(source, messages, masked, text, variables)
    spans: list[Span] = []
    cursor = 0
    for start, end in [*found.spans, (len(text), len(text))]:
        if start > cursor:
            spans.append((cursor, start))
        cursor = max(cursor, end)
    written = [k for k in found.unlocated if _changed_region(source, messages, k, text, variables)]
    return Rendered(text, spans, tuple(written))  # a turn the template never writes needs no mask


def _block_spans(
    source: str, messages: list[dict], turns: list[int], train_on: str, variables: dict
) -> Rendered | None:
    """The `{% generation %}` blocks of the trained turns; None where blocks and turns differ."""
    text, blocks = render_tracked(source, messages, False, variables=variables)
    answers = [k for k, m in enumerate(messages) if m.get("role") == "assistant"]
    if len(blocks) != len(answers):  # blocks that are not one per answer: trust them as they are
        if any(train_flag(m, k) is not None for k, m in enumerate(messages)):
            return None
        spans = [s for s in blocks if s[1] > s[0]]
        return Rendered(text, spans[-1:] if train_on == "last_assistant" else spans)
    block_of = dict(zip(answers, blocks))
    others = _located(source, messages, [k for k in turns if k not in block_of], text, variables)
    spans = [block_of[k] for k in turns if k in block_of and block_of[k][1] > block_of[k][0]]
    return Rendered(text, sorted(spans + others.spans), others.unlocated)


def _located(
    source: str, messages: list[dict], turns: list[int], text: str, variables: dict
) -> Rendered:
    """The definition: each turn's span in `text`, in order; turns not found are `unlocated`."""
    spans: list[Span] = []
    unlocated: list[int] = []
    cursor = 0
    for k in turns:
        span = _turn_span(source, messages, k, text, cursor, variables)
        if span is None:
            unlocated.append(k)
        elif span[1] > span[0]:
            spans.append(span)
            cursor = span[1]
    return Rendered(text, spans, tuple(unlocated))


def _turn_span(
    source: str, messages: list[dict], k: int, text: str, cursor: int, variables: dict
) -> Span | None:
    """Turn k's trained span: by the prefix method where its prefixes hold, else located."""
    prompt_end = None
    if messages[k].get("role") == "assistant":
        prompt = render(source, messages[:k], True, variables=variables)
        if text.startswith(prompt) and len(prompt) >= cursor:
            prompt_end = len(prompt)
            last = k == len(messages) - 1
            upto = text if last else render(source, messages[: k + 1], False, variables=variables)
            if text.startswith(upto) and len(upto) > prompt_end:
                return prompt_end, len(upto)
    stops = [s for s in (*STOP_STRINGS, variables.get("eos_token")) if s]
    region = _written_region(source, messages, k, text, variables)
    if region is not None and region[0] >= cursor:
        span = _as_turn(text, region, prompt_end, stops, messages[k]["content"])
        if span is not None:
            return span
    start = prompt_end if prompt_end is not None else cursor
    return _search_answer(text, messages[k], start, prompt_end, stops)


def _written_region(
    source: str, messages: list[dict], k: int, text: str, variables: dict
) -> Span | None:
    """Where turn k's content lands in `text`; None where the template does not write it, or
    writes it beyond recognition (neither text holds the other)."""
    region = _changed_region(source, messages, k, text, variables)
    if region is None:
        return None
    written, given = text[region[0] : region[1]].strip(), messages[k]["content"].strip()
    recognised = (written in given or given in written) if written else not given
    return region if recognised else None


def _changed_region(
    source: str, messages: list[dict], k: int, text: str, variables: dict
) -> Span | None:
    """What changes in `text` when a marker replaces turn k's content; None if nothing does."""
    mark = next((m for m in MARKS if m not in text), None)
    if not isinstance(messages[k].get("content"), str) or mark is None:
        return None
    marked = [*messages[:k], {**messages[k], "content": mark}, *messages[k + 1 :]]
    try:
        other = render(source, marked, False, variables=variables)
    except TemplateError:
        return None
    if other == text:
        return None
    head = len(os.path.commonprefix([text, other]))
    room = min(len(text), len(other)) - head
    tail = min(len(os.path.commonprefix([text[::-1], other[::-1]])), room)
    return head, len(text) - tail


def _as_turn(
    text: str, region: Span, prompt_end: int | None, stops: list[str], content: str
) -> Span | None:
    """A located content region as a trained span: from the generation prompt where nothing
    ends a turn in between, else from the content, which must then end with a stop token."""
    start, stop = region
    if any(s in text[start:stop] and s not in content for s in stops):
        return None  # the region runs over into other turns
    end = _after_stop(text, stop, stops)
    between = text[prompt_end:start] if prompt_end is not None and prompt_end <= start else None
    if between is not None and not any(s in between for s in stops):
        return prompt_end, stop if end is None else end
    return None if end is None else (start, end)


def _search_answer(
    text: str, message: dict, start: int, prompt_end: int | None, stops: list[str]
) -> Span | None:
    """The answer found as given after `start`, with a stop token right after it; the span
    starts at `prompt_end` (the generation prompt's end) if only whitespace is in between."""
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    for needle in (content, content.strip()):
        at = text.find(needle, start)
        while at >= 0:
            end = _after_stop(text, at + len(needle), stops)
            if end is not None:
                anchored = prompt_end is not None and not text[prompt_end:at].strip()
                return (prompt_end if anchored else at), end
            at = text.find(needle, at + 1)
    return None


def _after_stop(text: str, at: int, stops: list[str]) -> int | None:
    """The end of the stop token at `at` and the whitespace after it; None if none is there."""
    length = next((len(s) for s in stops if text.startswith(s, at)), 0)
    if not length:
        return None
    end = at + length
    return end + len(text[end:]) - len(text[end:].lstrip())


def _fast_spans(
    source: str, messages: list[dict], turns: list[int], layout: Layout, variables: dict
) -> Rendered | None:
    """One render with sentinel-wrapped answers; None where a row breaks the fast path's rules."""
    if not turns:
        return None
    tested = tested_strings(source)  # a content the template looks into may render differently
    marked = list(messages)
    for k in turns:
        content = messages[k].get("content")
        if not isinstance(content, str) or not content or OPEN in content or CLOSE in content:
            return None
        if messages[k].get("role") != "assistant" or any(t in content for t in tested):
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
    return Rendered(text, [s for s in spans if s[1] > s[0]])


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
        turns = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
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
