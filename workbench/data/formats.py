"""Data layouts people use for instruction data, and detecting which one a table is in.

A layout is a set of canonical fields (`messages`, `instruction`+`output`, ...). Detection looks
at column names, after an explicit `mapping` (canonical field -> column) renames them, and
names the option to pass when it cannot decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DatasetLoadError
from .options import FORMATS, LoadOptions

REQUIRED: dict[str, tuple[str, ...]] = {
    "chat": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
    "self_instruct": ("instruction", "instances"),
    "prompt_completion": ("prompt", "completion"),
    "question_answer": ("question", "answer"),
    "preference": ("chosen", "rejected"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "chat": (),
    "sharegpt": ("system",),
    "alpaca": ("input", "system", "history"),
    "self_instruct": (),
    "prompt_completion": ("system",),
    "question_answer": ("system",),
    "preference": ("prompt", "conversations", "messages", "system"),
}
DESCRIPTIONS = {
    "chat": "messages (OpenAI chat)",
    "sharegpt": "conversations (ShareGPT)",
    "alpaca": "instruction + output (Alpaca)",
    "self_instruct": "instruction + instances (Self-Instruct)",
    "prompt_completion": "prompt + completion",
    "question_answer": "question + answer",
    "preference": "prompt + chosen + rejected (preference pairs)",
}
# When several layouts match, these win over the others they contain.
PRECEDENCE = ("preference", "self_instruct")


@dataclass(frozen=True)
class FormatChoice:
    """The detected layout and, for each canonical field it uses, the source column."""

    name: str
    columns: dict[str, str]

    @property
    def consumed(self) -> set[str]:
        """Source columns turned into messages (the others are kept as extra columns)."""
        return set(self.columns.values())

    @property
    def is_preference(self) -> bool:
        """Preference pairs: rows carry a rejected answer beside the chosen one."""
        return self.name == "preference"


def fields_of(name: str) -> tuple[str, ...]:
    """Every canonical field of a layout, required first: what a mapping may name."""
    return REQUIRED[name] + OPTIONAL[name]


def detect_format(columns: list[str], options: LoadOptions) -> FormatChoice:
    """Which layout `columns` hold, honouring options.format and options.mapping."""
    present = _present_fields(columns, options.mapping)
    if options.format is not None:
        missing = [f for f in REQUIRED[options.format] if f not in present]
        if missing:
            raise DatasetLoadError(
                f"format={options.format!r} needs the field(s) {missing}, which the columns "
                f"{columns} lack; name them with mapping={{{missing[0]!r}: '<column>'}}.",
                option="mapping",
            )
        return _choice(options.format, present)
    matches = [name for name in FORMATS if all(f in present for f in REQUIRED[name])]
    for winner in PRECEDENCE:
        if winner in matches:
            return _choice(winner, present)
    if len(matches) == 1:
        return _choice(matches[0], present)
    if matches:
        raise DatasetLoadError(
            f"The columns {columns} fit several layouts ({', '.join(matches)}); pass "
            f"format= one of {matches} to choose.",
            option="format",
            choices=matches,
        )
    expected = "; ".join(DESCRIPTIONS.values())
    raise DatasetLoadError(
        f"No known layout in the columns {columns}: expected {expected}. Name the columns "
        "with mapping=, e.g. mapping={'prompt': '<column>', 'completion': '<column>'}.",
        option="mapping",
    )


def _present_fields(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    known = {f for name in FORMATS for f in fields_of(name)}
    for canonical, column in mapping.items():
        if canonical not in known:
            raise DatasetLoadError(
                f"mapping names the field {canonical!r}, which no layout has; the fields are "
                f"{sorted(known)}.",
                option="mapping",
            )
        if column not in columns:
            raise DatasetLoadError(
                f"mapping maps {canonical!r} to the column {column!r}, which the data lacks; "
                f"the columns are {columns}.",
                option="mapping",
            )
    mapped = set(mapping.values())
    present = {c: c for c in columns if c in known and c not in mapped}
    present.update(mapping)
    return present


def _choice(name: str, present: dict[str, str]) -> FormatChoice:
    used = {f: present[f] for f in fields_of(name) if f in present}
    if name == "preference":  # one prompt source only, in this order of preference
        sources = [f for f in ("prompt", "conversations", "messages") if f in used]
        for extra in sources[1:]:
            used.pop(extra)
    return FormatChoice(name, used)
