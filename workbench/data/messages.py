"""The canonical message: its role, its content, and every other key the source gave it.

A message is stored in Arrow as struct<role, content, extra_json>: the keys other than role
and content (reasoning_content, name, tool_call_id, weight, ...) are one JSON object in
`extra_json`, null when there are none, so data without extra keys stays plain Arrow text and
converts without leaving Arrow. Rows read back (`decode`) carry those keys at the top level of
each message dict, as in the source, so templates receive them and exports write them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import RowError
from ..templates.jinja import TRAIN_FLAGS  # the templates decide what a switch does

ROLES = ("system", "user", "assistant")
EXTRA = "extra_json"
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string()), (EXTRA, pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)
# Saved copies and datasets made before extra keys were kept: role and content only.
PLAIN_MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
OnDrop = Callable[[str, str], None]  # (key, why): a key that could not be kept


def decode(stored: list[dict] | None) -> list[dict] | None:
    """Message dicts of a stored list: role, content and the extra keys at the top level."""
    if stored is None:
        return None
    out = []
    for m in stored:
        message = {"role": m["role"], "content": m["content"]}
        extra = m.get(EXTRA)
        if extra:
            message.update(json.loads(extra))
        out.append(message)
    return out


def encode(messages: list[dict] | None, on_drop: OnDrop | None = None) -> list[dict] | None:
    """The stored form of message dicts (the inverse of `decode`), for `MESSAGES_TYPE`."""
    if messages is None:
        return None
    return [
        {
            "role": m.get("role"),
            "content": m.get("content"),
            EXTRA: extras_json(
                {k: v for k, v in m.items() if k not in ("role", "content")}, on_drop
            ),
        }
        for m in messages
    ]


def extras_json(extras: dict, on_drop: OnDrop | None = None) -> str | None:
    """The extra keys as one JSON object, None when there are none. Null values are left out
    (Arrow cannot tell a null from a missing key). A value JSON cannot hold is left out and
    reported to `on_drop`; without `on_drop` it raises TypeError naming the key."""
    extras = without_nulls(extras)
    if not extras:
        return None
    try:
        return json.dumps(extras, ensure_ascii=False)
    except (TypeError, ValueError):
        pass
    kept = {}
    for key, value in extras.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            why = f"holds {type(value).__name__} values, which JSON cannot hold"
            if on_drop is None:
                raise TypeError(f"{key!r} {why}; use text, numbers, lists or objects.") from None
            on_drop(key, why)
            continue
        kept[key] = value
    return json.dumps(kept, ensure_ascii=False) if kept else None


def without_nulls(value: Any) -> Any:
    """`value` with null-valued keys of every object in it left out (lists keep their nulls)."""
    nested = (dict, list)
    if isinstance(value, dict):
        return {
            k: without_nulls(v) if isinstance(v, nested) else v
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        return [without_nulls(v) if isinstance(v, nested) else v for v in value]
    return value


def check_flags(message: dict, where: str) -> None:
    """Refuse a training switch (TRAIN_FLAGS) that is not 0/1 or true/false. A switch on any
    turn is kept: it overrides train_on for that turn, as Axolotl reads it (templates.spans).
    Raises ValueError naming `where` and the key."""
    for key in TRAIN_FLAGS:
        value = message.get(key)
        if value is None:
            continue
        if not (isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1))):
            raise ValueError(
                f"{where}.{key} is {value!r}; expected 0 or 1 (or true/false): whether this "
                "turn trains."
            )


def check_messages(messages: Any, where: Any) -> list[dict]:
    """A copy of messages given by a person (an edit or a new row), checked: role, text content,
    extra keys JSON can hold, valid training switches. Raises TypeError or ValueError naming
    the row and message."""
    if not isinstance(messages, list) or not messages:
        raise TypeError(f"Row {where}: messages must be a non-empty list of role/content dicts.")
    out = []
    for k, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("content"), str)
            or m.get("role") not in ROLES
        ):
            raise TypeError(
                f"Row {where}, message {k}: expected {{'role': 'system'|'user'|'assistant', "
                f"'content': str}} (other keys are kept); got {m!r:.200}."
            )
        try:
            extra = extras_json({key: v for key, v in m.items() if key not in ("role", "content")})
        except TypeError as e:
            raise TypeError(f"Row {where}, message {k}: {e}") from None
        check_flags(m, f"Row {where}, message {k}")
        out.append(decode([{"role": m["role"], "content": m["content"], EXTRA: extra}])[0])
    return out


# -- canonical chat without leaving Arrow --------------------------------------------------
def arrow_messages(column: pa.ChunkedArray, name: str, on_drop: OnDrop) -> pa.ChunkedArray | None:
    """The column as `MESSAGES_TYPE` without copying text, or None when it needs the row-by-row
    path (other roles, typed content parts, tool calls, null lists). Only turns with extra keys
    go through Python. Raises RowError for a bad training switch."""
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return None
    item = kind.value_type
    if not pa.types.is_struct(item) or column.null_count:
        return None
    names = [item.field(i).name for i in range(item.num_fields)]
    if "role" not in names or "content" not in names:
        return None
    text = (pa.string(), pa.large_string(), pa.null())
    if item.field("role").type not in text or item.field("content").type not in text:
        return None
    turns = pc.list_flatten(column)
    if "tool_calls" in names and pc.struct_field(turns, "tool_calls").null_count < len(turns):
        return None
    if not set(pc.unique(pc.struct_field(turns, "role")).to_pylist()) <= set(ROLES):
        return None
    others = [n for n in names if n not in ("role", "content")]
    chunks, first_row = [], 0
    for chunk in column.chunks:
        flat = pc.list_flatten(chunk)
        offsets = pc.subtract(chunk.offsets, chunk.offsets[0]).cast(pa.int32())
        role = pc.struct_field(flat, "role").cast(pa.string())
        content = pc.struct_field(flat, "content").cast(pa.string())
        extra = _extra_column(flat, others, offsets, (name, first_row), on_drop)
        struct = pa.StructArray.from_arrays([role, content, extra], fields=list(MESSAGE_TYPE))
        chunks.append(pa.ListArray.from_arrays(offsets, struct))
        first_row += len(chunk)
    return pa.chunked_array(chunks, MESSAGES_TYPE)


def _extra_column(flat, others: list[str], offsets, place, on_drop: OnDrop) -> pa.Array:
    """`extra_json` of every turn: null where a turn has no other key, JSON where it has."""
    n = len(flat)
    present = np.zeros(n, bool)
    for key in others:
        present |= pc.is_valid(pc.struct_field(flat, key)).to_numpy(zero_copy_only=False)
    where = np.flatnonzero(present)
    if not len(where):
        return pa.nulls(n, pa.string())
    picked = pa.array(where)
    fields = [pc.struct_field(flat, key).take(picked) for key in others]
    values = pa.StructArray.from_arrays(fields, names=others).to_pylist()
    roles = pc.struct_field(flat, "role").take(picked).to_pylist()
    (column, first_row), starts = place, offsets.to_numpy()
    rows = (np.searchsorted(starts, where, side="right") - 1).tolist()
    flagged = any(key in TRAIN_FLAGS for key in others)
    texts: list[str | None] = [None] * n
    for k, row, role, extras in zip(where.tolist(), rows, roles, values):
        if flagged:
            try:
                check_flags({"role": role, **extras}, f"{column}[{k - starts[row]}]")
            except ValueError as e:
                raise RowError(first_row + row, str(e)) from None
        texts[k] = extras_json(extras, on_drop)
    return pa.array(texts, pa.string())
