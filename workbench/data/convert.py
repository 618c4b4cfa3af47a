"""Convert a block of source rows, in any known layout, to canonical chat `messages`.

Chat data already in canonical form is converted without leaving Arrow; every other layout goes
row by row through a small function per layout. Columns a layout does not use are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import RowError
from .formats import FormatChoice
from .options import LoadOptions

ROLES = ("system", "user", "assistant")
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)
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
Output = tuple[list[dict], list[dict] | None]  # messages, and rejected turns for preference data


def convert_block(table: pa.Table, choice: FormatChoice, options: LoadOptions) -> pa.Table:
    """Canonical table of a block: `messages` (+ `rejected`), then the unused columns."""
    extra = [c for c in table.column_names if c not in choice.consumed]
    if choice.name == "chat":
        fast = _canonical_messages(table.column(choice.columns["messages"]))
        if fast is not None:
            return _assemble(fast, None, table.select(extra))
    convert = CONVERTERS[choice.name]
    rows = table.select(list(choice.columns.values())).to_pylist()
    messages, rejected, sources = [], [], []
    by_field = {field: column for field, column in choice.columns.items()}
    for index, row in enumerate(rows):
        fields = {field: row[column] for field, column in by_field.items()}
        try:
            outputs = convert(fields, options)
        except RowError as e:
            raise RowError(index, str(e), e.option, e.choices) from None
        for msgs, rej in outputs:
            messages.append(msgs)
            rejected.append(rej)
            sources.append(index)
    kept = table.select(extra).take(pa.array(sources, pa.int64()))
    return _assemble(
        pa.array(messages, MESSAGES_TYPE),
        pa.array(rejected, MESSAGES_TYPE) if choice.is_preference else None,
        kept,
    )


def _assemble(messages, rejected, extra: pa.Table) -> pa.Table:
    columns = {"messages": messages}
    if rejected is not None:
        columns["rejected"] = rejected
    for name in extra.column_names:
        if name not in columns:
            columns[name] = extra.column(name)
    return pa.table(columns)


def _canonical_messages(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The column as list<struct<role, content>> without copying text, or None if it needs
    the row-by-row path (other roles, typed content parts, tool calls, null lists)."""
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return None
    item = kind.value_type
    if not pa.types.is_struct(item) or column.null_count:
        return None
    names = {item.field(i).name: item.field(i).type for i in range(item.num_fields)}
    text = (pa.string(), pa.large_string(), pa.null())
    if names.get("role") not in text or names.get("content") not in text:
        return None
    turns = pc.list_flatten(column)
    if "tool_calls" in names and pc.struct_field(turns, "tool_calls").null_count < len(turns):
        return None
    if not set(pc.unique(pc.struct_field(turns, "role")).to_pylist()) <= set(ROLES):
        return None
    chunks = []
    for chunk in column.chunks:
        values = chunk.values
        role = values.field("role").cast(pa.string())
        content = values.field("content").cast(pa.string())
        struct = pa.StructArray.from_arrays([role, content], fields=list(MESSAGE_TYPE))
        chunks.append(pa.ListArray.from_arrays(chunk.offsets.cast(pa.int32()), struct))
    return pa.chunked_array(chunks, MESSAGES_TYPE)


# -- one function per layout: fields of one row -> list of (messages, rejected) ---------------
def chat_row(fields: dict, options: LoadOptions) -> list[Output]:
    """OpenAI chat: `messages` of role/content (role aliases such as human/gpt accepted)."""
    messages = _turns(fields["messages"], "messages", "role", "content", options)
    return [(messages, None)] if messages is not None else []


def sharegpt_row(fields: dict, options: LoadOptions) -> list[Output]:
    """ShareGPT: `conversations` of from/value, with an optional `system`."""
    messages = _turns(fields["conversations"], "conversations", "from", "value", options)
    if messages is None:
        return []
    return [(_with_system(fields, messages), None)]


def alpaca_row(fields: dict, options: LoadOptions) -> list[Output]:
    """Alpaca: instruction (+ input) -> output, optional system and [question, answer] history."""
    messages = []
    for k, pair in enumerate(fields.get("history") or []):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RowError(0, f"history[{k}] is {pair!r}; expected a [question, answer] pair.")
        messages += [_user(pair[0], f"history[{k}][0]"), _assistant(pair[1], f"history[{k}][1]")]
    prompt = _join(_text(fields["instruction"], "instruction"), fields.get("input"), "input")
    messages += [_user(prompt, "instruction"), _assistant(fields["output"], "output")]
    return [(_with_system(fields, messages), None)]


def self_instruct_row(fields: dict, options: LoadOptions) -> list[Output]:
    """Self-Instruct: one instruction with nested instances; options.instances decides."""
    instances = fields["instances"]
    if not isinstance(instances, list):
        raise RowError(0, f"instances is {_kind(instances)}; expected a list of input/output.")
    if options.instances is None:
        raise RowError(
            0,
            "Self-Instruct rows nest their examples in `instances`; pass instances='expand' "
            "for one row per instance, or instances='first' to keep the first.",
            option="instances",
            choices=["expand", "first"],
        )
    chosen = instances if options.instances == "expand" else instances[:1]
    instruction = _text(fields["instruction"], "instruction")
    out = []
    for k, instance in enumerate(chosen):
        if not isinstance(instance, dict):
            raise RowError(0, f"instances[{k}] is {_kind(instance)}; expected input/output.")
        prompt = _join(instruction, instance.get("input"), f"instances[{k}].input")
        answer = _assistant(instance.get("output"), f"instances[{k}].output")
        out.append(([_user(prompt, "instruction"), answer], None))
    return out


def prompt_completion_row(fields: dict, options: LoadOptions) -> list[Output]:
    """prompt -> completion (text, or TRL's conversational lists)."""
    return [(_with_system(fields, _pair(fields, "prompt", "completion", options)), None)]


def question_answer_row(fields: dict, options: LoadOptions) -> list[Output]:
    """question -> answer."""
    return [(_with_system(fields, _pair(fields, "question", "answer", options)), None)]


def preference_row(fields: dict, options: LoadOptions) -> list[Output]:
    """A preference pair: messages end with the chosen answer; the rejected turns kept apart."""
    source = next((f for f in ("prompt", "conversations", "messages") if f in fields), None)
    chosen = _answer_turns(fields["chosen"], "chosen", options)
    rejected = _answer_turns(fields["rejected"], "rejected", options)
    if source is None:  # implicit prompt: chosen and rejected are whole conversations
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    elif isinstance(fields[source], list):
        key = ("from", "value") if source == "conversations" else ("role", "content")
        prompt = _turns(fields[source], source, *key, options) or []
    else:
        prompt = [_user(fields[source], source)]
    return [(_with_system(fields, prompt + chosen), rejected)]


CONVERTERS: dict[str, Callable[[dict, LoadOptions], list[Output]]] = {
    "chat": chat_row,
    "sharegpt": sharegpt_row,
    "alpaca": alpaca_row,
    "self_instruct": self_instruct_row,
    "prompt_completion": prompt_completion_row,
    "question_answer": question_answer_row,
    "preference": preference_row,
}


# -- helpers --------------------------------------------------------------------------------
def _turns(value: Any, where: str, role_key: str, content_key: str, options) -> list | None:
    """Canonical turns of a list of dicts; None when tool_turns='drop_rows' drops the row."""
    value = _maybe_json(value)
    if not isinstance(value, list):
        expected = f"a list of {{{role_key}, {content_key}}} turns"
        raise RowError(0, f"{where} is {_kind(value)}; expected {expected}.")
    out = []
    for k, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise RowError(0, f"{where}[{k}] is {_kind(turn)}; expected a dict with {role_key}.")
        role = turn.get(role_key, turn.get("role", turn.get("from")))
        content = turn.get(content_key, turn.get("content", turn.get("value")))
        if turn.get("tool_calls"):
            role, content = "function_call", json.dumps(turn["tool_calls"], ensure_ascii=False)
        if role in TOOL_ROLES:
            if options.tool_turns is None:
                raise RowError(
                    0,
                    f"{where}[{k}] is a {role!r} (tool) turn, which chat templates of "
                    "system/user/assistant cannot hold; pass tool_turns='as_text' to keep tool "
                    "calls and results as assistant and user turns, or tool_turns='drop_rows'.",
                    option="tool_turns",
                    choices=["as_text", "drop_rows"],
                )
            if options.tool_turns == "drop_rows":
                return None
            role = TOOL_ROLES[role]
        if role not in ROLE_ALIASES:
            raise RowError(
                0,
                f"{where}[{k}].{role_key} is {role!r}; expected one of system, user, assistant "
                f"(or {', '.join(a for a in ROLE_ALIASES if a not in ROLES)}).",
            )
        text = _text(content, f"{where}[{k}].{content_key}")
        out.append({"role": ROLE_ALIASES[role], "content": text})
    return out


def _answer_turns(value: Any, where: str, options) -> list[dict]:
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        key = ("from", "value") if value and "from" in value[0] else ("role", "content")
        return _turns(value, where, *key, options) or []
    return [_assistant(value, where)]


def _pair(fields: dict, ask: str, reply: str, options) -> list[dict]:
    if isinstance(fields[ask], list):  # conversational prompt-completion (TRL)
        turns = _turns(fields[ask], ask, "role", "content", options) or []
        return turns + _answer_turns(fields[reply], reply, options)
    return [_user(fields[ask], ask), _assistant(fields[reply], reply)]


def _with_system(fields: dict, messages: list[dict]) -> list[dict]:
    system = fields.get("system")
    if system is None or system == "" or (messages and messages[0]["role"] == "system"):
        return messages
    return [{"role": "system", "content": _text(system, "system")}, *messages]


def _user(value: Any, where: str) -> dict:
    return {"role": "user", "content": _text(value, where)}


def _assistant(value: Any, where: str) -> dict:
    return {"role": "assistant", "content": _text(value, where)}


def _join(instruction: str | None, extra: Any, where: str) -> str | None:
    extra = _text(extra, where)
    if not extra:
        return instruction
    return f"{instruction}\n\n{extra}" if instruction else extra


def _text(value: Any, where: str) -> str | None:
    """Text of a content value: a string, typed text parts joined, or None (left for quality)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        parts = []
        for p in value:
            if p.get("type", "text") != "text":
                raise RowError(0, f"{where} has a {p.get('type')!r} part; only text is supported.")
            parts.append(_text(p.get("text", p.get("value")), where) or "")
        return "\n".join(parts)
    raise RowError(0, f"{where} is {_kind(value)} ({value!r:.60}); expected text.")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _kind(value: Any) -> str:
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
