"""Convert a block of source rows, in any known layout, to canonical chat `messages`.

Chat data already in canonical form is converted without leaving Arrow (only turns with extra
keys go through Python); every other layout goes row by row through a small function per
layout. Columns a layout does not use are kept, and so is every extra key of a turn.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from ..errors import RowError
from ..templates.context import CONTEXT_COLUMNS
from .formats import FormatChoice
from .messages import MESSAGE_TYPE, MESSAGES_TYPE, ROLES, arrow_messages, encode
from .options import LoadOptions
from .preference import preference_row
from .turns import RowContext, answer_turns, assistant, join, kind, text, turns, user, with_system

__all__ = ["MESSAGES_TYPE", "MESSAGE_TYPE", "ROLES", "convert_block"]

Output = tuple[list[dict], list[dict] | None]  # messages, and rejected turns for preference data
Note = Callable[[str, str, "int | None"], None]  # (key, sentence, row in the block or None)
# Names the canonical table gives its own columns: a source column of that name is renamed.
OWN_COLUMNS = ("messages", "rejected")
# Names ds[i] gives its own fields: a source column of that name is kept but hidden there.
ROW_FIELDS = ("row", "flag", "excluded", "edited")


def column_uses(columns: list[str]) -> list[str]:
    """One sentence for each kind of column beside the messages: what is done with it. A row's
    `tools` and `documents` reach the chat template, as transformers' apply_chat_template
    passes them; the others are kept and exported but never trained on."""
    uses = [
        f"column {name!r}: passed to the chat template as `{name}` (training, the mask view, "
        "answers and the export's parity check)"
        for name in columns
        if name in CONTEXT_COLUMNS
    ]
    others = [repr(c) for c in columns if c not in CONTEXT_COLUMNS and c not in OWN_COLUMNS]
    if others:
        uses.append(
            f"{'columns' if len(others) > 1 else 'column'} {', '.join(others)}: kept beside "
            "the rows (ds[i]) and exported, not trained on"
        )
    return uses


def convert_block(
    table: pa.Table, choice: FormatChoice, options: LoadOptions, note: Note
) -> pa.Table:
    """Canonical table of a block: `messages` (+ `rejected`), then the unused columns.
    `note` hears of anything given that could not be kept as it was. Raises RowError."""
    extra = [c for c in table.column_names if c not in choice.consumed]
    if choice.name == "chat":
        column = choice.columns["messages"]

        def dropped(key: str, why: str) -> None:
            note(f"key {key}", f"{column}[*].{key} {why}; it was left out", None)

        fast = arrow_messages(table.column(column), column, dropped)
        if fast is not None:
            return _assemble(fast, None, table.select(extra), note)
    convert = CONVERTERS[choice.name]
    rows = table.select(list(choice.columns.values())).to_pylist()
    messages, rejected, sources = [], [], []
    for index, row in enumerate(rows):
        ctx = RowContext(options)
        fields = {field: row[column] for field, column in choice.columns.items()}
        try:
            outputs = convert(fields, ctx)
        except RowError as e:
            raise RowError(index, str(e), e.option, e.choices) from None

        def dropped(key: str, why: str, index=index) -> None:
            note(f"key {key}", f"a turn's {key!r} {why}; it was left out", index)

        for msgs, rej in outputs:
            messages.append(encode(msgs, dropped))
            rejected.append(encode(rej, dropped))
            sources.append(index)
        for key, sentence in ctx.notes:
            note(key, sentence, index)
    kept = table.select(extra).take(pa.array(sources, pa.int64()))
    return _assemble(
        pa.array(messages, MESSAGES_TYPE),
        pa.array(rejected, MESSAGES_TYPE) if choice.is_preference else None,
        kept,
        note,
    )


def _assemble(messages, rejected, extra: pa.Table, note: Note) -> pa.Table:
    columns = {"messages": messages}
    if rejected is not None:
        columns["rejected"] = rejected
    names = set(extra.column_names) | set(columns)
    for name in extra.column_names:
        kept = name
        if name in OWN_COLUMNS:
            kept = f"source_{name}"
            while kept in names:
                kept = f"source_{kept}"
            names.add(kept)
            note(
                f"column {name}",
                f"the column {name!r} is not the layout's and would clash "
                f"with the canonical {name!r}; it is kept as {kept!r}",
                None,
            )
        elif name in ROW_FIELDS:
            note(
                f"column {name}",
                f"the column {name!r} is kept (and exported) but ds[i][{name!r}] "
                "shows the workbench's own field of that name",
                None,
            )
        columns[kept] = extra.column(name)
    return pa.table(columns)


# -- one function per layout: fields of one row -> list of (messages, rejected) ---------------
def chat_row(fields: dict, ctx: RowContext) -> list[Output]:
    """OpenAI chat: `messages` of role/content (role aliases such as human/gpt accepted)."""
    messages = turns(fields["messages"], "messages", "role", "content", ctx)
    return [(messages, None)] if messages is not None else []


def sharegpt_row(fields: dict, ctx: RowContext) -> list[Output]:
    """ShareGPT: `conversations` of from/value, with an optional `system`."""
    messages = turns(fields["conversations"], "conversations", "from", "value", ctx)
    if messages is None:
        return []
    return [(with_system(fields, messages, ctx), None)]


def alpaca_row(fields: dict, ctx: RowContext) -> list[Output]:
    """Alpaca: instruction (+ input) -> output, optional system and [question, answer] history."""
    messages = []
    for k, pair in enumerate(fields.get("history") or []):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RowError(0, f"history[{k}] is {pair!r}; expected a [question, answer] pair.")
        messages += [
            user(pair[0], f"history[{k}][0]", ctx),
            assistant(pair[1], f"history[{k}][1]", ctx),
        ]
    prompt = join(
        text(fields["instruction"], "instruction", ctx), fields.get("input"), "input", ctx
    )
    messages += [
        {"role": "user", "content": prompt},
        assistant(fields["output"], "output", ctx),
    ]
    return [(with_system(fields, messages, ctx), None)]


def self_instruct_row(fields: dict, ctx: RowContext) -> list[Output]:
    """Self-Instruct: one instruction with nested instances; options.instances decides."""
    instances = fields["instances"]
    if not isinstance(instances, list):
        raise RowError(0, f"instances is {kind(instances)}; expected a list of input/output.")
    if ctx.options.instances is None:
        raise RowError(
            0,
            "Self-Instruct rows nest their examples in `instances`; pass instances='expand' "
            "for one row per instance, or instances='first' to keep the first.",
            option="instances",
            choices=["expand", "first"],
        )
    chosen = instances if ctx.options.instances == "expand" else instances[:1]
    instruction = text(fields["instruction"], "instruction", ctx)
    out = []
    for k, instance in enumerate(chosen):
        if not isinstance(instance, dict):
            raise RowError(0, f"instances[{k}] is {kind(instance)}; expected input/output.")
        for key in sorted(k2 for k2, v in instance.items() if v is not None):
            if key not in ("input", "output"):
                ctx.note(
                    f"instance key {key}",
                    f"instances[{k}] has the key {key!r}, which a "
                    "row of messages cannot hold; it was left out",
                )
        prompt = join(instruction, instance.get("input"), f"instances[{k}].input", ctx)
        answer = assistant(instance.get("output"), f"instances[{k}].output", ctx)
        out.append(([{"role": "user", "content": prompt}, answer], None))
    return out


def prompt_completion_row(fields: dict, ctx: RowContext) -> list[Output]:
    """prompt -> completion (text, or TRL's conversational lists)."""
    return [(with_system(fields, _pair(fields, "prompt", "completion", ctx), ctx), None)]


def question_answer_row(fields: dict, ctx: RowContext) -> list[Output]:
    """question -> answer."""
    return [(with_system(fields, _pair(fields, "question", "answer", ctx), ctx), None)]


def _pair(fields: dict, ask: str, reply: str, ctx: RowContext) -> list[dict]:
    if isinstance(fields[ask], list):  # conversational prompt-completion (TRL)
        asked = turns(fields[ask], ask, "role", "content", ctx) or []
        return asked + answer_turns(fields[reply], reply, ctx)
    return [user(fields[ask], ask, ctx), assistant(fields[reply], reply, ctx)]


CONVERTERS: dict[str, Callable[[dict, RowContext], list[Output]]] = {
    "chat": chat_row,
    "sharegpt": sharegpt_row,
    "alpaca": alpaca_row,
    "self_instruct": self_instruct_row,
    "prompt_completion": prompt_completion_row,
    "question_answer": question_answer_row,
    "preference": preference_row,
}
