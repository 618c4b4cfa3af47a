"""A preference row (prompt, chosen, rejected) in any shape TRL accepts, as canonical turns.

The stored row is `messages` = prompt + chosen answer turns and `rejected` = the rejected answer
turns; the prompt ends with a non-assistant turn and each answer is assistant turns only, so
(prompt, chosen, rejected) is read back without doubt. An explicit prompt repeated at the head
of chosen and rejected is stripped, never duplicated; without a prompt column the prompt is the
longest shared prefix of chosen and rejected, as TRL's `extract_prompt` finds it: the rule is
preferences.pairs.preference_pair, which DPO and reward runs use as well.
"""

from __future__ import annotations

from typing import Any

from ..errors import RowError
from ..preferences.pairs import preference_pair
from .turns import RowContext, answer_turns, maybe_json, turns, user, with_system

Turns = list[dict]
PROMPT_SOURCES = ("prompt", "conversations", "messages")


def preference_row(fields: dict, ctx: RowContext) -> list[tuple[Turns, Turns]]:
    """The row as (prompt + chosen turns, rejected turns). The pair is the one TRL builds
    (preferences.pairs.preference_pair, the one rule for every shape); raises RowError when it
    cannot be built, or when an answer holds other turns than the assistant's (the stored row
    could then not be read back)."""
    if "chosen" not in fields:  # stored form: messages = prompt + chosen answer
        return [_stored_pair(fields, ctx)]
    source = next((f for f in PROMPT_SOURCES if f in fields), None)
    chosen, rejected = maybe_json(fields["chosen"]), maybe_json(fields["rejected"])
    if not (isinstance(chosen, str) and isinstance(rejected, str)):
        chosen = answer_turns(chosen, "chosen", ctx)
        rejected = answer_turns(rejected, "rejected", ctx)
    prompt = None if source is None else _prompt_turns(fields[source], source, ctx)
    try:
        pair = preference_pair(prompt, chosen, rejected)
    except ValueError as e:
        raise RowError(0, f"{e}. Fix the row.") from None
    _check_shape(pair["prompt"], pair["chosen"], pair["rejected"])
    return [(with_system(fields, pair["prompt"] + pair["chosen"], ctx), pair["rejected"])]


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
