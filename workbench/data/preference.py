"""A preference row (prompt, chosen, rejected) in any shape TRL accepts, as canonical turns.

The stored row is `messages` = prompt + chosen answer turns and `rejected` = the rejected answer
turns; the prompt ends with a non-assistant turn and each answer is assistant turns only, so
(prompt, chosen, rejected) is read back without doubt. An explicit prompt repeated at the head
of chosen and rejected is stripped, never duplicated; without a prompt column the prompt is the
longest shared prefix of chosen and rejected, as TRL's `extract_prompt` finds it.
"""

from __future__ import annotations

from typing import Any

from .errors import RowError
from .turns import RowContext, answer_turns, maybe_json, turns, user, with_system

Turns = list[dict]
PROMPT_SOURCES = ("prompt", "conversations", "messages")


def preference_row(fields: dict, ctx: RowContext) -> list[tuple[Turns, Turns]]:
    """The row as (prompt + chosen turns, rejected turns). Raises RowError for a prompt that
    chosen or rejected contradicts, or answers that are not assistant turns after the prompt."""
    if "chosen" not in fields:  # stored form: messages = prompt + chosen answer
        return [_stored_pair(fields, ctx)]
    source = next((f for f in PROMPT_SOURCES if f in fields), None)
    chosen, rejected = maybe_json(fields["chosen"]), maybe_json(fields["rejected"])
    if source is None and isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = _split_text(chosen, rejected, ctx)
    else:
        chosen = answer_turns(chosen, "chosen", ctx)
        rejected = answer_turns(rejected, "rejected", ctx)
        if source is None:
            prompt, chosen, rejected = _split_shared(chosen, rejected)
        else:
            given = _prompt_turns(fields[source], source, ctx)
            prompt, chosen, rejected = _strip_prompt(given, chosen, rejected, source)
    _check_shape(prompt, chosen, rejected)
    return [(with_system(fields, prompt + chosen, ctx), rejected)]


def _stored_pair(fields: dict, ctx: RowContext) -> tuple[Turns, Turns]:
    """A pair as the workbench stores and exports it: messages end with the chosen answer."""
    messages = turns(fields["messages"], "messages", "role", "content", ctx) or []
    rejected = answer_turns(fields["rejected"], "rejected", ctx)
    start = len(messages)
    while start and messages[start - 1]["role"] == "assistant":
        start -= 1
    _check_shape(messages[:start], messages[start:], rejected)
    return messages, rejected


def _prompt_turns(value: Any, source: str, ctx: RowContext) -> Turns:
    value = maybe_json(value)
    if isinstance(value, list):
        keys = ("from", "value") if source == "conversations" else ("role", "content")
        return turns(value, source, *keys, ctx) or []
    return [user(value, source, ctx)]


def _split_text(chosen: str, rejected: str, ctx: RowContext) -> tuple[Turns, Turns, Turns]:
    """Text answers without a prompt column: their shared beginning is the prompt (TRL keeps a
    space that ends it with the answers)."""
    shared = 0
    limit = min(len(chosen), len(rejected)) - 1
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    if shared and chosen[shared - 1] == " ":
        shared -= 1
    prompt = [user(chosen[:shared], "chosen", ctx)] if shared else []
    answer = {"role": "assistant"}
    return (
        prompt,
        [{**answer, "content": chosen[shared:]}],
        [{**answer, "content": rejected[shared:]}],
    )


def _split_shared(chosen: Turns, rejected: Turns) -> tuple[Turns, Turns, Turns]:
    """Whole conversations without a prompt column: the longest shared prefix is the prompt."""
    shared = _shared_turns(chosen, rejected)
    return chosen[:shared], chosen[shared:], rejected[shared:]


def _strip_prompt(given: Turns, chosen: Turns, rejected: Turns, source: str):
    """An explicit prompt with answers that may repeat it: each side that opens with a
    non-assistant turn must open with the prompt, which is then taken off it."""
    heads = [bool(side) and side[0]["role"] != "assistant" for side in (chosen, rejected)]
    for name, side, head in (("chosen", chosen, heads[0]), ("rejected", rejected, heads[1])):
        if head and _after(given, side) is None:
            raise RowError(
                0,
                f"{source} is {_show(given)}, but {name} opens with {_show(side[: len(given)])}; "
                f"expected {name} to repeat the prompt or to hold the answer alone. Fix the row, "
                "or drop the prompt column to use the turns chosen and rejected share.",
            )
    if all(heads):  # both repeat the prompt: what they share beyond it belongs to it too
        shared = _shared_turns(chosen, rejected)
        return chosen[:shared], chosen[shared:], rejected[shared:]
    chosen = chosen[_after(given, chosen) :] if heads[0] else chosen
    rejected = rejected[_after(given, rejected) :] if heads[1] else rejected
    return given, chosen, rejected


def _after(prompt: Turns, side: Turns) -> int | None:
    """Where `side` goes on after repeating `prompt` (system turns before it allowed), or None."""
    start = 0
    if not (prompt and prompt[0]["role"] == "system"):
        while start < len(side) and side[start]["role"] == "system":
            start += 1
    stop = start + len(prompt)
    if stop > len(side) or any(not _same(a, b) for a, b in zip(prompt, side[start:stop])):
        return None
    return stop


def _shared_turns(chosen: Turns, rejected: Turns) -> int:
    """Length of the longest shared prefix, leaving each side at least one turn (as TRL)."""
    shared, limit = 0, min(len(chosen), len(rejected)) - 1
    while shared < limit and _same(chosen[shared], rejected[shared]):
        shared += 1
    return shared


def _same(a: dict, b: dict) -> bool:
    return a["role"] == b["role"] and a["content"] == b["content"]


def _check_shape(prompt: Turns, chosen: Turns, rejected: Turns) -> None:
    """The answers are assistant turns after a prompt that ends with someone else speaking."""
    if prompt and prompt[-1]["role"] == "assistant":
        raise RowError(
            0,
            f"the prompt ends with an assistant turn ({_show(prompt[-1:])}); expected it to end "
            "with a user (or system) turn that the answers reply to.",
        )
    sides = (("chosen", chosen), ("rejected", rejected))
    for name, side in sides:
        if side and side[-1]["role"] != "assistant":
            raise RowError(
                0,
                f"{name} ends with a {side[-1]['role']} turn ({_show(side[-1:])}); expected it "
                "to end with its answer, an assistant turn.",
            )
    for name, side in sides:
        others = [m["role"] for m in side if m["role"] != "assistant"]
        if not side or others:
            found = f"a {others[0]} turn" if others else "no turn"
            raise RowError(
                0,
                f"after the prompt, {name} has {found}; expected the answer as assistant turns "
                "only. Chosen and rejected must share every turn before their answers.",
            )


def _show(messages: Turns) -> str:
    return "[" + ", ".join(f"{m['role']} {str(m['content'])[:40]!r}" for m in messages) + "]"
