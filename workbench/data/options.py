"""LoadOptions: how to read a source, as a dataclass that round-trips to JSON (session.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import DatasetLoadError
from ..persist import fields_from_json
from ..settings import documented, setting

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


@documented
@dataclass(frozen=True)
class LoadOptions:
    """Options of `load_source` / `Session.load_dataset`; each is None (or default) to detect."""

    format: str | None = setting(
        None, "The data layout; None: detected from the rows.", choices=FORMATS
    )
    mapping: dict[str, str] = setting(
        {},
        "Canonical field -> source column, e.g. {'prompt': 'question_text', 'completion': "
        "'reply'}.",
    )
    file_type: str | None = setting(
        None, "How to read a file whose suffix does not say.", choices=FILE_TYPES
    )
    on_error: str = setting(
        "raise",
        "raise: stop at a malformed line, naming it; skip: load a JSON Lines file around its "
        "malformed lines (each is reported).",
        choices=("raise", "skip"),
    )
    split: str | None = setting(None, "Which split of a DatasetDict or hub dataset.")
    tool_turns: str | None = setting(
        None,
        "as_text: tool calls and results kept as assistant and user turns; drop_rows: rows "
        "with tool turns left out.",
        choices=("as_text", "drop_rows"),
    )
    instances: str | None = setting(
        None,
        "expand: one row per Self-Instruct instance; first: the first instance only.",
        choices=("expand", "first"),
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            allowed, value = f.metadata.get("choices"), getattr(self, f.name)
            if allowed and value is not None and value not in allowed:
                raise DatasetLoadError(
                    f"{f.name}={value!r} is not an option; choose one of {list(allowed)}.",
                    option=f.name,
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
