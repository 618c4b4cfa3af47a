"""Requests to a generator, built from seed rows as Self-Instruct and Alpaca do.

Each request shows a few seed examples (a different draw per request, every seed used about as
often as the others) and asks for ONE new example in two marked sections, which small models
follow far more reliably than a numbered list of twenty. An optional instruction steers the
topic ("questions a support agent gets about invoices"). A chat request asks in words (for a
served model); a document request is the examples with an open section after them, for a local
model to continue, as Self-Instruct prompted GPT-3 (Wang et al. 2023).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .parse import size

SECTION_INSTRUCTION = "### Instruction:"
SECTION_RESPONSE = "### Response:"
MAX_SEED_CHARS = 600  # each seed's text in a request is cut here, to bound the prompt
DOCUMENT_OPEN = f"{SECTION_INSTRUCTION}\n"  # a document request ends here; the model writes on
MIN_BOUNDS = (48, 96)  # words and marks an instruction and an answer may run to, at least


@dataclass(frozen=True)
class Seed:
    """A seed row as an example: its first user turn, the answer to it, any system message."""

    row: int
    instruction: str
    response: str
    system: str | None = None


@dataclass(frozen=True)
class Request:
    """One prompt to the generator and the seed rows it shows."""

    prompt: str
    seed_rows: tuple[int, ...]
    system: str | None  # the system message every shown seed shares, given to the candidate


def seed_of(row: int, messages: list[dict]) -> Seed | None:
    """The example a row gives (None for a row without a user turn answered by the assistant)."""
    system = next((m["content"] for m in messages if m.get("role") == "system"), None)
    for k, m in enumerate(messages):
        if m.get("role") != "user" or not str(m.get("content") or "").strip():
            continue
        answer = next((a for a in messages[k + 1 :] if a.get("role") == "assistant"), None)
        if answer is not None and str(answer.get("content") or "").strip():
            return Seed(row, str(m["content"]), str(answer["content"]), system)
        return None
    return None


@dataclass(frozen=True)
class Bounds:
    """How far a new example's instruction and answer may run, in words and punctuation marks
    (parse.size): twice the longest seed's (as shown), at least MIN_BOUNDS. A local model
    writing past one is rambling or listing without end: it is stopped there, and the candidate
    counts as too long (parse.overrun)."""

    ask: int
    answer: int

    @classmethod
    def of(cls, seeds: Sequence[Seed]) -> Bounds:
        """The bounds the seed rows set."""
        longest = [max((size(_cut(t)) for t in texts), default=0) for texts in _sides(seeds)]
        return cls(*(max(least, 2 * n) for least, n in zip(MIN_BOUNDS, longest)))


def _sides(seeds: Sequence[Seed]) -> tuple[list[str], list[str]]:
    return [s.instruction for s in seeds], [s.response for s in seeds]


def build_requests(
    seeds: Sequence[Seed],
    n: int,
    *,
    examples: int = 3,
    instruction: str | None = None,
    rng: random.Random,
    document: bool = False,
) -> list[Request]:
    """`n` requests, each showing `examples` seeds drawn in turn from a shuffled deck, so the
    draws vary per request and every seed is shown about equally often; as documents to
    continue (`document_text`) or as chat requests (`prompt_text`)."""
    if not seeds:
        raise ValueError("No seed row has a user turn with an assistant answer to learn from.")
    k = max(1, min(examples, len(seeds)))
    deck: list[Seed] = []
    requests = []
    for _ in range(n):
        shown: list[Seed] = []
        while len(shown) < k:
            if not deck:
                deck = list(seeds)
                rng.shuffle(deck)
            seed = deck.pop()
            if seed not in shown:
                shown.append(seed)
        systems = {s.system for s in shown}
        system = systems.pop() if len(systems) == 1 else None
        text = (document_text if document else prompt_text)(shown, instruction)
        requests.append(Request(text, tuple(s.row for s in shown), system))
    return requests


def prompt_text(shown: Sequence[Seed], instruction: str | None) -> str:
    """The words of one request: the examples, then the ask in the sections a parser reads."""
    blocks = [_block(s) for s in shown]
    topic = (
        f" It should be about: {instruction.strip()}."
        if instruction and instruction.strip()
        else ""
    )
    return (
        "You write new training examples for an AI assistant. Here are some examples:\n\n"
        + "\n\n".join(blocks)
        + "\n\nWrite one new example that is different from all of these, in the same language"
        f" and style.{topic} Use the same format as the examples: the line "
        f'"{SECTION_INSTRUCTION}", then the new task, then the line "{SECTION_RESPONSE}", then '
        "its answer. Write nothing else."
    )


def document_text(shown: Sequence[Seed], instruction: str | None) -> str:
    """A few-shot document for a model to continue: the examples in their sections, then an
    open instruction section (DOCUMENT_OPEN). The embedded model continues it far more often
    in the asked form than it follows the chat request (39 of 50 answers parsed against 21)."""
    topic = f", all about: {instruction.strip()}" if instruction and instruction.strip() else ""
    blocks = [_block(s) for s in shown]
    return (
        f"Examples of tasks for an AI assistant{topic}, each with its answer.\n\n"
        + "\n\n".join(blocks)
        + f"\n\n{DOCUMENT_OPEN}"
    )


def _block(seed: Seed) -> str:
    return f"{SECTION_INSTRUCTION}\n{_cut(seed.instruction)}\n{SECTION_RESPONSE}\n{_cut(seed.response)}"


def _cut(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_SEED_CHARS else text[:MAX_SEED_CHARS] + " …"
