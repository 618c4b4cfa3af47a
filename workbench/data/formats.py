"""Data layouts people use for instruction data, and detecting which one a table is in.

A layout is a set of canonical fields (`messages`, `instruction`+`output`, ...). Detection looks
at column names, after an explicit `mapping` (canonical field -> column) renames them, and
names the option to pass when it cannot decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DatasetLoadError
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
NAMES = {
    "chat": "OpenAI chat",
    "sharegpt": "ShareGPT",
    "alpaca": "Alpaca",
    "self_instruct": "Self-Instruct",
    "prompt_completion": "prompt-completion",
    "question_answer": "question-answer",
    "preference": "preference",
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


def detect_format(
    columns: list[str], options: LoadOptions, source: str = "the data"
) -> FormatChoice:
    """Which layout `columns` hold, honouring options.format and options.mapping. Raises
    DatasetLoadError naming `source`, the columns found and what each near layout lacks."""
    present = _present_fields(columns, options.mapping, source)
    if options.format is not None:
        missing = [f for f in REQUIRED[options.format] if f not in present]
        if missing:
            raise DatasetLoadError(
                f"{source}: format={options.format!r} needs the field(s) {missing}, which the "
                f"columns {columns} lack; name them with mapping={{{missing[0]!r}: '<column>'}}.",
                option="mapping",
            )
        return _choice(options.format, present)
    matches = [name for name in FORMATS if all(f in present for f in REQUIRED[name])]
    for winner in PRECEDENCE:
        if winner in matches:
            return _choice(winner, present)
    if matches == ["chat"] and "rejected" in present:  # pairs as the workbench exports them
        return FormatChoice("preference", {f: present[f] for f in ("messages", "rejected")})
    if len(matches) == 1:
        return _choice(matches[0], present)
    if matches:
        raise DatasetLoadError(
            f"{source}: the columns {columns} fit several layouts ({', '.join(matches)}); pass "
            f"format= one of {matches} to choose.",
            option="format",
            choices=matches,
        )
    raise DatasetLoadError(_no_layout(columns, present, source), option="mapping")


def _no_layout(columns: list[str], present: dict[str, str], source: str) -> str:
    """What was found, what each layout that uses some of the columns still needs, the fix."""
    near = [
        (name, [f for f in REQUIRED[name] if f not in present])
        for name in FORMATS
        if any(f in present for f in REQUIRED[name])
    ]
    found = f"{source}: columns {', '.join(columns) or '(none)'} found"
    if near:
        needs = "; ".join(
            f"the {NAMES[name]} layout ({' + '.join(REQUIRED[name])}) needs "
            + " and ".join(
                f"a {f} column" if f[0] not in "aeiou" else f"an {f} column" for f in missing
            )
            for name, missing in near
        )
        field = near[0][1][0]
        return (
            f"{found}; {needs}. Rename the column that holds it, or pass "
            f"mapping={{{field!r}: '<column>'}}."
        )
    expected = "; ".join(DESCRIPTIONS.values())
    return (
        f"{found}. No known layout uses them: expected {expected}. Name the columns with "
        "mapping=, e.g. mapping={'prompt': '<column>', 'completion': '<column>'}."
    )


def _present_fields(columns: list[str], mapping: dict[str, str], source: str) -> dict[str, str]:
    known = {f for name in FORMATS for f in fields_of(name)}
    for canonical, column in mapping.items():
        if canonical not in known:
            raise DatasetLoadError(
                f"{source}: mapping names the field {canonical!r}, which no layout has; the "
                f"fields are {sorted(known)}.",
                option="mapping",
            )
        if column not in columns:
            raise DatasetLoadError(
                f"{source}: mapping maps {canonical!r} to the column {column!r}, which the data "
                f"lacks; the columns are {columns}.",
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
