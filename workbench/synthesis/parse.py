"""A generator's answer as chat messages: the asked sections, or the JSON a large model prefers.

The asked form is "### Instruction:" then "### Response:" (prompts.py). Labels people and
models use alike are read too (Task/Question/Prompt, Answer/Output), with or without "###" or
bold. A JSON object ({"instruction", "response"} or {"messages": [...]}) is read as well, but
noted as another format than asked. Anything else raises Malformed with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

ASKED = "sections"
ASK_LABELS = ("instruction", "task", "question", "prompt", "user")
ANSWER_LABELS = ("response", "answer", "output", "assistant")
LABEL = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*|\*\*|__)?[ \t]*(?P<label>"
    + "|".join(ASK_LABELS + ANSWER_LABELS + ("input",))
    + r")s?[ \t]*(?:\*\*|__)?[ \t]*:[ \t]*(?:\*\*|__)?",
    re.IGNORECASE | re.MULTILINE,
)
PLACEHOLDER = re.compile(
    r"<[A-Za-z][A-Za-z ]{0,38}>|\.\.\.|…"
)  # a format's blank, copied as it was
FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
TOKEN = re.compile(r"\w+|[^\w\s]")  # words and punctuation marks: about a model's tokens
LOOP_NGRAM, LOOP_TIMES = 8, 3  # the same 8 tokens a third time: a generation loop


class Cut(str):
    """A generation cut short (by its token limit, or past the seeds' bounds), with `why`: it
    parses as any answer, but its candidate is staged as too long, to read and edit."""

    why: str

    def __new__(cls, text: str, why: str) -> Cut:
        cut = super().__new__(cls, text)
        cut.why = why
        return cut


class Malformed(ValueError):
    """A generation that holds no instruction with an answer; the message says what is missing."""


@dataclass(frozen=True)
class Parsed:
    """The messages of a candidate and the format they came in ("sections" or "json")."""

    messages: list[dict]
    format: str


def parse_candidate(text: str, system: str | None = None) -> Parsed:
    """The user and assistant turns (after `system`, when given) a generation holds.
    Raises Malformed naming what is missing; empty sections are kept (a filter drops them)."""
    if not isinstance(text, str) or not text.strip():
        raise Malformed("the answer is empty")
    found = _sections(text)
    kind = ASKED
    if found is None:
        found, kind = _json(text), "json"
    if found is None:
        raise Malformed(_missing(text))
    ask, answer = found
    if PLACEHOLDER.fullmatch(ask) or PLACEHOLDER.fullmatch(answer):
        raise Malformed("it repeats a placeholder instead of writing an example")
    if loops(f"{ask}\n{answer}"):
        raise Malformed("it says the same words over and over (a generation loop)")
    head = [{"role": "system", "content": system}] if system else []
    turns = [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]
    return Parsed(head + turns, kind)


def began_another(text: str) -> bool:
    """Whether a generation has an asked section, an answer after it, and then begins a second
    example: all the parser keeps is there, so generation may stop (model_host.StopWhenDone)."""
    seen_ask = seen_answer = False
    for mark in LABEL.finditer(text):
        label = mark["label"].lower()
        if label in ASK_LABELS:
            if seen_answer:
                return True
            seen_ask = True
        elif label in ANSWER_LABELS and seen_ask:
            seen_answer = True
    return False


def loops(text: str) -> bool:
    """Whether a run of LOOP_NGRAM words and marks comes LOOP_TIMES times: a small model's
    degenerate repetition ("I am a dog. I am a dog. ..."), which it keeps up to its token limit."""
    tokens = TOKEN.findall(text)
    seen: dict[tuple[str, ...], int] = {}
    for k in range(len(tokens) - LOOP_NGRAM + 1):
        gram = tuple(tokens[k : k + LOOP_NGRAM])
        seen[gram] = seen.get(gram, 0) + 1
        if seen[gram] >= LOOP_TIMES:
            return True
    return False


def finished(text: str, ask_limit: int, answer_limit: int) -> bool:
    """Whether a generation may stop, as nothing more would be kept: it began a second example
    (`began_another`), it loops, or its open section (instruction, then answer) ran past its
    limit in words and marks (prompts.Bounds). Called for every token, so it stays cheap."""
    return began_another(text) or loops(text) or bool(overrun(text, ask_limit, answer_limit))


def overrun(text: str, ask_limit: int, answer_limit: int) -> str | None:
    """Why the first example of `text` runs past its limits (in words and marks, `size`): its
    instruction, or the answer after it up to a second example; None when it does not."""
    marks = list(LABEL.finditer(text))
    ask = next((m for m in marks if m["label"].lower() in ASK_LABELS), None)
    if ask is None:
        return None
    answer = next(
        (m for m in marks if m.start() > ask.start() and m["label"].lower() in ANSWER_LABELS),
        None,
    )
    if answer is None:
        side, start, end, limit = "instruction", ask.end(), len(text), ask_limit
    else:
        later = (m for m in marks if m.start() > answer.start())
        end = next((m.start() for m in later if m["label"].lower() in ASK_LABELS), len(text))
        side, start, limit = "answer", answer.end(), answer_limit
    if size(text[start:end]) <= limit:
        return None
    return f"its {side} ran past {limit} words and marks (twice the longest seed's) and was cut"


def size(text: str) -> int:
    """How many words and punctuation marks `text` holds: close to a model's token count
    ("A-13," is 4 of each), without a tokenizer."""
    return len(TOKEN.findall(text))


def _sections(text: str) -> tuple[str, str] | None:
    """The first asked section and the answer after it, which runs to the next asked section
    (a second example) or the end."""
    marks = list(LABEL.finditer(text))
    for k, mark in enumerate(marks):
        if mark["label"].lower() not in ASK_LABELS:
            continue
        ask_end, extra, answer = None, None, None
        for j in range(k + 1, len(marks)):
            label = marks[j]["label"].lower()
            if label == "input" and ask_end is None:
                ask_end, extra = marks[j].start(), j
            elif label in ANSWER_LABELS:
                ask_end = ask_end if ask_end is not None else marks[j].start()
                after = [m.start() for m in marks[j + 1 :] if m["label"].lower() in ASK_LABELS]
                answer = text[marks[j].end() : after[0] if after else len(text)]
                break
        if answer is None:
            return None
        ask = text[mark.end() : ask_end]
        if extra is not None:  # Alpaca's optional input belongs to the instruction
            extra_text = text[marks[extra].end() : marks[extra + 1].start()].strip()
            ask = f"{ask.strip()}\n\n{extra_text}" if extra_text else ask
        return ask.strip(), answer.strip()
    return None


def _json(text: str) -> tuple[str, str] | None:
    fenced = FENCE.search(text)
    body = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("messages"), list):
        turns = [m for m in data["messages"] if isinstance(m, dict)]
        ask = next((m.get("content") for m in turns if m.get("role") == "user"), None)
        answer = next((m.get("content") for m in turns if m.get("role") == "assistant"), None)
    else:
        lower = {str(k).lower(): v for k, v in data.items()}
        ask = next((lower[k] for k in ASK_LABELS if k in lower), None)
        answer = next((lower[k] for k in ANSWER_LABELS if k in lower), None)
        if isinstance(ask, str) and isinstance(lower.get("input"), str) and lower["input"].strip():
            ask = f"{ask.strip()}\n\n{lower['input'].strip()}"
    if not isinstance(ask, str) or not isinstance(answer, str):
        return None
    return ask.strip(), answer.strip()


def _missing(text: str) -> str:
    labels = {m["label"].lower() for m in LABEL.finditer(text)}
    if labels & set(ASK_LABELS):
        return "it has an instruction but no response section after it"
    if labels & set(ANSWER_LABELS):
        return "it has a response but no instruction section before it"
    return 'it has neither an "### Instruction:" nor a "### Response:" section'
