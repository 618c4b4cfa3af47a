"""One turn of a source row into a canonical message, for every layout's converter.

A turn keeps every key it was given: role and content are read from the layout's keys (role or
from, content or value) and the other keys stay on the message. Anything that cannot be kept
as given is noted on the row's context, and the load warns about it once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import RowError
from .messages import ROLES, check_flags, without_nulls
from .options import LoadOptions

ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}
# Tool turns: the role they become with tool_turns="as_text".
TOOL_ROLES = {
    "function_call": "assistant",
    "tool_call": "assistant",
    "observation": "user",
    "tool": "user",
    "function": "user",
    "ipython": "user",
}


@dataclass
class RowContext:
    """The load options and what converting one row could not keep: (key, sentence) notes."""

    options: LoadOptions
    notes: list[tuple[str, str]] = field(default_factory=list)

    def note(self, key: str, text: str) -> None:
        """Record that something given could not be kept as it was (warned once per load)."""
        self.notes.append((key, text))


def turns(value: Any, where: str, role_key: str, content_key: str, ctx: RowContext) -> list | None:
    """Canonical messages of a list of turn dicts, each keeping its other keys; None when
    tool_turns='drop_rows' drops the row. Raises RowError naming the turn and key."""
    value = maybe_json(value)
    if not isinstance(value, list):
        expected = f"a list of {{{role_key}, {content_key}}} turns"
        raise RowError(0, f"{where} is {kind(value)}; expected {expected}.")
    out = []
    for k, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise RowError(0, f"{where}[{k}] is {kind(turn)}; expected a dict with {role_key}.")
        message = _turn(without_nulls(turn), f"{where}[{k}]", role_key, content_key, ctx)
        if message is None:
            return None
        out.append(message)
    return out


def _turn(turn: dict, where: str, role_key: str, content_key: str, ctx) -> dict | None:
    role_at = _first_key(turn, (role_key, "role", "from"))
    content_at = _first_key(turn, (content_key, "content", "value"))
    role, content = turn.get(role_at), turn.get(content_at)
    extras = {k: v for k, v in turn.items() if k not in (role_at, content_at)}
    for key in ("role", "content"):
        if key in extras:  # both "from" and "role", say: the layout's key wins
            ctx.note(
                f"turn key {key}",
                f"{where} has both {role_at}/{content_at} and a "
                f"{key!r} key; the {key!r} key ({extras.pop(key)!r:.40}) was left out",
            )
    if extras.get("tool_calls"):
        # sorted keys: the same text whichever datasets version loaded the row (4.0 sorts a
        # struct's fields, 5 keeps the given order)
        calls = json.dumps(extras.pop("tool_calls"), ensure_ascii=False, sort_keys=True)
        said = text(content, f"{where}.{content_at}", ctx)
        role, content = "function_call", f"{said}\n{calls}" if said else calls
    if role in TOOL_ROLES:
        if ctx.options.tool_turns is None:
            raise RowError(
                0,
                f"{where} is a {role!r} (tool) turn, which chat templates of system/user/"
                "assistant cannot hold; pass tool_turns='as_text' to keep tool calls and results "
                "as assistant and user turns, or tool_turns='drop_rows'.",
                option="tool_turns",
                choices=["as_text", "drop_rows"],
            )
        if ctx.options.tool_turns == "drop_rows":
            return None
        role = TOOL_ROLES[role]
    if role not in ROLE_ALIASES:
        raise RowError(
            0,
            f"{where}.{role_at} is {role!r}; expected one of system, user, assistant "
            f"(or {', '.join(a for a in ROLE_ALIASES if a not in ROLES)}).",
        )
    message = {"role": ROLE_ALIASES[role], "content": text(content, f"{where}.{content_at}", ctx)}
    message.update(extras)
    try:
        check_flags(message, where)
    except ValueError as e:
        raise RowError(0, str(e)) from None
    return message


def _first_key(turn: dict, keys: tuple[str, ...]) -> str:
    return next((k for k in keys if k in turn), keys[0])


def answer_turns(value: Any, where: str, ctx: RowContext) -> list[dict]:
    """An answer given as text (one assistant turn), one turn dict, or a list of turns."""
    value = maybe_json(value)
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        key = (
            ("from", "value")
            if value and isinstance(value[0], dict) and "from" in value[0]
            else ("role", "content")
        )
        return turns(value, where, *key, ctx) or []
    return [assistant(value, where, ctx)]


def with_system(fields: dict, messages: list[dict], ctx: RowContext) -> list[dict]:
    """`messages` after the row's `system` column, unless they open with a system turn (then
    a column that says something else is noted: its text is not kept)."""
    system = fields.get("system")
    if system is None or system == "":
        return messages
    if messages and messages[0]["role"] == "system":
        if text(system, "system", ctx) != messages[0]["content"]:
            ctx.note(
                "system",
                "the system column differs from the conversation's own system "
                "turn; the turn was kept and the column's text left out",
            )
        return messages
    return [{"role": "system", "content": text(system, "system", ctx)}, *messages]


def user(value: Any, where: str, ctx: RowContext) -> dict:
    """A user turn of a text field."""
    return {"role": "user", "content": text(value, where, ctx)}


def assistant(value: Any, where: str, ctx: RowContext) -> dict:
    """An assistant turn of a text field."""
    return {"role": "assistant", "content": text(value, where, ctx)}


def join(instruction: str | None, extra: Any, where: str, ctx: RowContext) -> str | None:
    """An instruction and its input, one paragraph apart (either may be missing)."""
    extra = text(extra, where, ctx)
    if not extra:
        return instruction
    return f"{instruction}\n\n{extra}" if instruction else extra


def text(value: Any, where: str, ctx: RowContext) -> str | None:
    """Text of a content value: a string, typed text parts joined, or None (left for quality).
    Raises RowError for anything else, naming `where`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        parts = []
        for p in value:
            if p.get("type", "text") != "text":
                raise RowError(0, f"{where} has a {p.get('type')!r} part; only text is supported.")
            for key in sorted(set(without_nulls(p)) - {"type", "text", "value"}):
                ctx.note(
                    f"part key {key}",
                    f"{where}: the key {key!r} of a text part was left "
                    "out (parts are joined into one text)",
                )
            parts.append(text(p.get("text", p.get("value")), where, ctx) or "")
        return "\n".join(parts)
    raise RowError(0, f"{where} is {kind(value)} ({value!r:.60}); expected text.")


def maybe_json(value: Any) -> Any:
    """A list of turns written as JSON text (as CSV cells hold them) parsed; anything else as is."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, list) and all(isinstance(t, dict) for t in parsed):
            return parsed
    return value


def kind(value: Any) -> str:
    """How a JSON value is described in errors: 'a number', 'a string', 'missing'."""
    if value is None:
        return "missing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"
