"""Comparison: a batch of prompts answered by every contestant, side by side, and its exports.

Exports are for people who do not run notebooks: JSONL (a header line, then one line a prompt),
CSV (one row a prompt, one column a contestant) and a self-contained HTML report that shows the
settings and each contestant's adapter and template hashes. Every piece of text is escaped.
"""

from __future__ import annotations

import csv
import html
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.excerpt import CELL_CHARS, TABLE_ROWS, clip
from ..persist import atomic_write_text, fields_from_json
from .report import answers_table, prompt_text, report_html

if TYPE_CHECKING:
    from .evaluate import Evaluation

FORMATS = (".jsonl", ".csv", ".html")


class ComparisonStopped(RuntimeError):
    """A comparison or evaluation ended by its `stop` event before every answer was done.

    `done` of `total` answers (prompt x contestant) were finished; with greedy settings they are
    in the workspace's answer cache, so running the same comparison again starts from there.
    """

    def __init__(self, done: int, total: int, cached: bool):
        self.done, self.total, self.cached = done, total, cached
        kept = " They are cached: running again picks up from there." if cached and done else ""
        super().__init__(f"Stopped after {done} of {total} answers.{kept}")


@dataclass
class Comparison:
    """Answers of several contestants to the same prompts, with references and scores if known."""

    prompts: list[list[dict]]
    answers: dict[str, list[str]]
    contestants: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    references: list[str | None] | None = None
    scores: dict[str, list[float]] | None = None
    scorer: str | None = None
    created: float = field(default_factory=time.time)

    @classmethod
    def from_evaluation(cls, evaluation: Evaluation) -> Comparison:
        """The answers of an Evaluation side by side, with their references and scores."""
        results = evaluation.results
        first = next(iter(results.values()))
        return cls(
            prompts=[r.prompt for r in first],
            answers={m: [r.answer for r in rows] for m, rows in results.items()},
            contestants=evaluation.contestants,
            settings=evaluation.settings,
            references=[r.reference for r in first],
            scores={m: [r.score for r in rows] for m, rows in results.items()},
            scorer=evaluation.scorer,
        )

    @property
    def models(self) -> list[str]:
        """The contestants, in column order."""
        return list(self.answers)

    @property
    def summary(self) -> dict[str, float]:
        """Mean score per contestant (empty when there were no references)."""
        if not self.scores:
            return {}
        return {m: sum(s) / len(s) if s else 0.0 for m, s in self.scores.items()}

    def __len__(self) -> int:
        return len(self.prompts)

    def __repr__(self) -> str:
        scored = ", ".join(f"{m} {s:.0%}" for m, s in self.summary.items())
        scores = f"; {self.scorer}: {scored}" if scored else ""
        return f"Comparison({len(self):,} prompts × {', '.join(self.models)}{scores})"

    def head(self, rows: int = TABLE_ROWS, chars: int = CELL_CHARS) -> Comparison:
        """The first `rows` prompts with every prompt, reference and answer cut to `chars`
        characters: what a page shows (an export writes the whole comparison)."""
        refs = self.references
        return replace(
            self,
            prompts=[
                [{"role": "user", "content": clip(prompt_text(p), chars)}]
                for p in self.prompts[:rows]
            ],
            answers={
                m: [clip(a, chars) for a in a_list[:rows]] for m, a_list in self.answers.items()
            },
            references=None if refs is None else [clip(r, chars) for r in refs[:rows]],
            scores={m: s[:rows] for m, s in self.scores.items()} if self.scores else None,
        )

    def rows(self) -> list[dict[str, Any]]:
        """One dict a prompt: prompt (messages), reference, answers and scores by contestant."""
        out = []
        for k, prompt in enumerate(self.prompts):
            row: dict[str, Any] = {"index": k, "prompt": prompt}
            row["reference"] = self.references[k] if self.references else None
            row["answers"] = {m: a[k] for m, a in self.answers.items()}
            row["scores"] = {m: s[k] for m, s in self.scores.items()} if self.scores else {}
            out.append(row)
        return out

    # -- JSON ---------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        """Everything but the rows: settings, contestants (hashes), scorer, time."""
        data = asdict(self)
        for key in ("prompts", "answers", "references", "scores"):
            data.pop(key)
        return data

    def to_json(self) -> dict[str, Any]:
        """Everything as a JSON-ready dict (`from_json` reads it back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "a comparison") -> Comparison:
        """A Comparison from `to_json` output; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))

    # -- exports ------------------------------------------------------------------------------
    def export(self, path: str | os.PathLike) -> Path:
        """Write JSONL, CSV or HTML, chosen by the file's suffix; returns the path."""
        path = Path(path)
        writers = {".jsonl": self.to_jsonl, ".csv": self.to_csv, ".html": self.to_html}
        if path.suffix.lower() not in writers:
            raise ValueError(
                f"Cannot export to {path.name}: use a name ending in {', '.join(FORMATS)}."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return writers[path.suffix.lower()](path)

    def export_to(self, folder: str | os.PathLike, fmt: str) -> Path:
        """Write a new `comparison-<YYYYmmdd-HHMMSS>.<fmt>` file into `folder` (a workspace's
        exports_dir); `fmt` is html, jsonl or csv. A name taken gets -2, -3, ... ."""
        suffix = "." + fmt.lower().lstrip(".")
        if suffix not in FORMATS:
            raise ValueError(f"Cannot export as {fmt!r}: choose one of {', '.join(FORMATS)}.")
        stem = "comparison-" + time.strftime("%Y%m%d-%H%M%S")
        path, n = Path(folder) / f"{stem}{suffix}", 1
        while path.exists():
            n += 1
            path = path.with_name(f"{stem}-{n}{suffix}")
        return self.export(path)

    def to_jsonl(self, path: str | os.PathLike) -> Path:
        """A {"comparison": header} line, then one line a prompt."""
        lines = [json.dumps({"comparison": self.header()}, ensure_ascii=False)]
        lines += [json.dumps(row, ensure_ascii=False) for row in self.rows()]
        atomic_write_text(path, "\n".join(lines) + "\n")
        return Path(path)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> Comparison:
        """Read back what `to_jsonl` wrote."""
        records = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line]
        header, rows = records[0]["comparison"], records[1:]
        models = list(header["contestants"])
        scored = bool(rows and rows[0]["scores"])
        return cls(
            prompts=[r["prompt"] for r in rows],
            answers={m: [r["answers"][m] for r in rows] for m in models},
            references=[r["reference"] for r in rows] if rows[0]["reference"] is not None else None,
            scores={m: [r["scores"][m] for r in rows] for m in models} if scored else None,
            **header,
        )

    def to_csv(self, path: str | os.PathLike) -> Path:
        """One row a prompt: the prompt text, the reference, then each contestant's answer."""
        columns = ["index", "prompt", "reference"]
        for m in self.models:
            columns += [m] + ([f"{m} score"] if self.scores else [])
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            for row in self.rows():
                line = {"index": row["index"], "prompt": prompt_text(row["prompt"])}
                line["reference"] = row["reference"] or ""
                for m in self.models:
                    line[m] = row["answers"][m]
                    if self.scores:
                        line[f"{m} score"] = row["scores"][m]
                writer.writerow(line)
        return Path(path)

    def to_html(self, path: str | os.PathLike) -> Path:
        """The self-contained report (no scripts, no external files)."""
        atomic_write_text(path, self.html())
        return Path(path)

    def html(self) -> str:
        """The report as one HTML page: summary, settings, contestants, answers."""
        return report_html(self)

    def _repr_html_(self) -> str:
        """The mean scores (when scored) and the answers side by side: the first TABLE_ROWS
        prompts, each cell cut to CELL_CHARS characters; `export` writes everything."""
        scored = ", ".join(f"{html.escape(m)} {s:.1%}" for m, s in self.summary.items())
        scores = f" Scores ({html.escape(str(self.scorer))}): {scored}." if scored else ""
        shown = min(len(self), TABLE_ROWS)
        more = (
            f" The first {shown:,} are shown; .export(path) writes them all."
            if shown < len(self)
            else ""
        )
        head = f"<p><b>Comparison</b> of {len(self):,} prompts.{scores}{more}</p>"
        return head + answers_table(self.head())
