"""SessionState: what session.json holds, as typed dataclasses that round-trip to JSON.

The Session keeps these values in memory and writes them whole (atomically) after every change;
the edit and vote logs beside it are append-only. Unknown keys are refused with the file named
(persist.fields_from_json), so a hand-edited typo never passes silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import DEFAULT, ModelSpec
from ..persist import fields_from_json
from ..templates import Template

DEFAULT_MAX_LENGTH = 1024


@dataclass(frozen=True)
class DatasetRef:
    """Where the session's dataset comes from, to load it again after a restart.

    `source` is {"kind": "file" | "saved" | ..., "path": ...} as the data layer describes it;
    `fingerprint` keys the edit log; `options` are the load options that were given.
    """

    source: dict[str, Any]
    fingerprint: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """A deterministic train/eval split: the eval share of rows and the seed that draws them."""

    eval_fraction: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class SessionState:
    """Everything session.json records: model, template, dataset, split, the selected row and
    run, length."""

    model: ModelSpec = DEFAULT
    template: Template = field(default_factory=lambda: Template(None, "model"))
    dataset: DatasetRef | None = None
    split: Split | None = None
    selected_row: int = 0
    max_length: int = DEFAULT_MAX_LENGTH
    selected_run: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The state as session.json stores it (the Workspace adds the schema version)."""
        return {
            "model": self.model.to_json(),
            "template": self.template.to_json(),
            "dataset": asdict(self.dataset) if self.dataset else None,
            "split": asdict(self.split) if self.split else None,
            "selected_row": self.selected_row,
            "max_length": self.max_length,
            "selected_run": self.selected_run,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str) -> SessionState:
        """Read what `to_json` wrote; raises ValueError naming `source` and any unknown key."""
        values = fields_from_json(cls, data, source=source)
        if values.get("model") is not None:
            values["model"] = ModelSpec.from_json(values["model"])
        if values.get("template") is not None:
            values["template"] = Template.from_json(values["template"])
        if values.get("dataset") is not None:
            values["dataset"] = DatasetRef(
                **fields_from_json(DatasetRef, values["dataset"], source=f"{source}: dataset")
            )
        if values.get("split") is not None:
            values["split"] = Split(
                **fields_from_json(Split, values["split"], source=f"{source}: split")
            )
        return cls(**{k: v for k, v in values.items() if v is not None or k in NULLABLE})


NULLABLE = ("dataset", "split", "selected_run")
