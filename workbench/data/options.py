"""LoadOptions: how to read a source, as a dataclass that round-trips to JSON (session.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import DatasetLoadError
from ..persist import fields_from_json

FORMATS = (
    "chat",
    "sharegpt",
    "alpaca",
    "self_instruct",
    "prompt_completion",
    "question_answer",
    "preference",
)
FILE_TYPES = ("jsonl", "json", "csv", "tsv", "parquet")
CHOICES: dict[str, tuple] = {
    "format": FORMATS,
    "file_type": FILE_TYPES,
    "on_error": ("raise", "skip"),
    "tool_turns": ("as_text", "drop_rows"),
    "instances": ("expand", "first"),
}


@dataclass(frozen=True)
class LoadOptions:
    """Options of `load_source` / `Session.load_dataset`; each is None (or default) to detect.

    format: the data layout (one of FORMATS). mapping: canonical field -> source column, e.g.
    {"prompt": "question_text", "completion": "reply"}. file_type: how to read a file whose
    suffix does not say. on_error="skip" loads a JSON Lines file around its malformed lines.
    split: which split of a DatasetDict or hub dataset. tool_turns: "as_text" keeps tool calls
    and results as assistant and user turns, "drop_rows" leaves rows with tool turns out.
    instances: "expand" makes one row per Self-Instruct instance, "first" keeps the first.
    """

    format: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    file_type: str | None = None
    on_error: str = "raise"
    split: str | None = None
    tool_turns: str | None = None
    instances: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise DatasetLoadError(
                    f"{name}={value!r} is not an option; choose one of {list(allowed)}.",
                    option=name,
                    choices=list(allowed),
                )
        mapping = self.mapping or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise DatasetLoadError(
                f"mapping must be a dict of canonical field to column name (both text); got "
                f"{mapping!r}."
            )
        object.__setattr__(self, "mapping", dict(mapping))

    @classmethod
    def from_kwargs(cls, **options: Any) -> LoadOptions:
        """Build from keyword options, naming any unknown option and the known ones."""
        try:
            options = fields_from_json(cls, options, source="load_dataset")
        except ValueError as e:  # the one unknown-key policy, as the data layer's error
            raise DatasetLoadError(str(e)) from None
        return cls(**{k: v for k, v in options.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        """The options that differ from the defaults, JSON-able."""
        default = LoadOptions()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadOptions:
        """The options as stored in session.json."""
        return cls.from_kwargs(**data)
