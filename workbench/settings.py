"""One way to declare a setting of a config dataclass, and the help that is generated from it.

A setting is a dataclass field whose metadata carries its `help`, its form `group` and any of
`choices`, `advanced`, `min`, `max`, `step` and `rows`. The forms (widgets.common.forms) are built from
it, and `documented` writes every field's help, by group, into the class's docstring, so that
`help(wb.TrainConfig)` lists them (as the Parameters block of TRL's configs reads).
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, TypeVar

T = TypeVar("T")


def setting(default: Any, help: str, group: str = "", **more: Any) -> Any:
    """A dataclass field with its help text, form group and any of choices, advanced, min, max,
    step and rows as metadata; a list or dict default is copied for each instance."""
    metadata = {"help": help, **({"group": group} if group else {}), **more}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def documented(cls: type[T]) -> type[T]:
    """Class decorator: append each setting's name, default, help and choices, by group in the
    order of the fields, to the docstring (what help() shows). Returns the class."""
    groups: dict[str, list[str]] = {}
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        choices = f.metadata.get("choices")
        line = f"    {f.name} = {default!r}: {f.metadata['help']}"
        line += f" Choices: {', '.join(map(str, choices))}." if choices else ""
        groups.setdefault(f.metadata.get("group", "settings"), []).append(line)
    blocks = [f"{group.capitalize()}:\n" + "\n".join(lines) for group, lines in groups.items()]
    cls.__doc__ = (cls.__doc__ or cls.__name__).rstrip() + "\n\n" + "\n\n".join(blocks) + "\n"
    return cls
