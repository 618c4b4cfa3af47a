"""Token lengths under the session's template and tokenizer, cached, and the dataset's stats.

Rows are tokenised in batches by `tokenize_with_labels`, the one function training uses, so
prompt tokens (not trained) and response tokens (trained) are exactly what training will see.
Counts are cached on disk by (dataset fingerprint, template fingerprint): the template's
fingerprint covers its Jinja, what trains and the tokenizer, so reopening does not tokenise.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc

from ..progress import progress
from ..templates.template import TokenizedExample, tokenize_with_labels
from .chunks import message_chunks
from .messages import ROLES, decode

if TYPE_CHECKING:
    from .dataset import InstructionDataset

BATCH_ROWS = 256
PROGRESS_MIN_ROWS = 2000
NO_TEMPLATE = (
    "Token lengths need a template and tokenizer: load the data with session.load_dataset(...) "
    "(or call dataset.bind(template=..., max_length=...))."
)


@dataclass
class TokenLengths:
    """Per row: total tokens and trained (response) tokens; total is -1 where the template
    cannot render the row. `cut` maps rows longer than max_length to the trained tokens that
    truncation would cut off."""

    total: np.ndarray
    trained: np.ndarray
    max_length: int | None
    cut: dict[int, int] = field(default_factory=dict)

    @property
    def prompt(self) -> np.ndarray:
        """Tokens that do not train: system and user turns, template markup."""
        return np.where(self.total >= 0, self.total - self.trained, -1)

    @property
    def failed_rows(self) -> np.ndarray:
        """Rows the template cannot render."""
        return np.flatnonzero(self.total < 0)

    @property
    def over_rows(self) -> np.ndarray:
        """Rows longer than the training length."""
        if self.max_length is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.total > self.max_length)


def token_lengths(ds: InstructionDataset) -> TokenLengths:
    """Lengths of every row of `ds` under its bound template (see InstructionDataset)."""
    template = ds.template
    if template is None:
        raise RuntimeError(NO_TEMPLATE)
    max_length = ds.max_length
    total, trained, cut = _base_lengths(ds, template, max_length)
    total = np.concatenate([total, np.zeros(len(ds.added), np.int32)])
    trained = np.concatenate([trained, np.zeros(len(ds.added), np.int32)])
    overlay = sorted(set(ds.edited) | set(range(len(ds.table), len(ds))))
    cut = {r: c for r, c in cut.items() if r not in ds.edited}
    for row, (n, k, c) in zip(overlay, _measure_rows(ds, template, overlay, max_length)):
        total[row], trained[row] = n, k
        if c:
            cut[row] = c
    return TokenLengths(total, trained, max_length, cut)


def _base_lengths(ds, template, max_length) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    key = (ds.fingerprint, template.fingerprint)
    cached = ds._memo.get(("lengths", key)) or _read_cache(ds, key)
    if cached is None:
        cached = _measure_base(ds, template, max_length)
        _write_cache(ds, key, cached)
    ds._memo[("lengths", key)] = cached
    if cached["cut_length"] != max_length:  # re-cut only the rows longer than the new length
        over = np.flatnonzero(cached["total"] > (max_length or np.iinfo(np.int32).max))
        cuts = _measure_rows(ds, template, over.tolist(), max_length)
        cached = {**cached, "cut_rows": over, "cut": np.array([c for *_, c in cuts], np.int32)}
        cached["cut_length"] = max_length
        ds._memo[("lengths", key)] = cached
    cut = dict(zip(cached["cut_rows"].tolist(), cached["cut"].tolist()))
    return cached["total"], cached["trained"], cut


def _measure_base(ds, template, max_length) -> dict[str, Any]:
    n = len(ds.table)
    total, trained = np.zeros(n, np.int32), np.zeros(n, np.int32)
    cut_rows, cuts = [], []
    column = ds.arrow.column("messages")
    with progress(n, "Tokenizing rows", disable=n < PROGRESS_MIN_ROWS) as advance:
        for start in range(0, n, BATCH_ROWS):
            batch = [decode(m) for m in column.slice(start, BATCH_ROWS).to_pylist()]
            for k, example in enumerate(_tokenize(template, batch)):
                row = start + k
                if example is None:
                    total[row] = -1
                    continue
                total[row], trained[row] = len(example.input_ids), example.num_trained
                if max_length is not None and total[row] > max_length:
                    cut_rows.append(row)
                    cuts.append(_cut(example, max_length))
            advance(len(batch))
    return {
        "total": total,
        "trained": trained,
        "cut_rows": np.array(cut_rows, np.int64),
        "cut": np.array(cuts, np.int32),
        "cut_length": max_length,
    }


def _measure_rows(ds, template, rows: list[int], max_length) -> list[tuple[int, int, int]]:
    """(total, trained, cut) for a few rows, e.g. edited ones; memoised by their content."""
    out = []
    for row in rows:
        messages = ds.messages_of(row)
        key = ("row", template.fingerprint, max_length, json.dumps(messages, sort_keys=True))
        if key not in ds._memo:
            example = _tokenize(template, [messages])[0]
            if example is None:
                ds._memo[key] = (-1, 0, 0)
            else:
                n, cut = len(example.input_ids), 0
                if max_length is not None and n > max_length:
                    cut = _cut(example, max_length)
                ds._memo[key] = (n, example.num_trained, cut)
        out.append(ds._memo[key])
    return out


def _tokenize(template, batch: list[list[dict]]) -> list[TokenizedExample | None]:
    """One fast-tokenizer call for the batch; rows the template cannot render give None."""
    try:
        return tokenize_with_labels(template, batch)
    except Exception:  # user Jinja and odd rows fail in many ways; find which rows, one by one
        out = []
        for messages in batch:
            try:
                out.append(tokenize_with_labels(template, [messages])[0])
            except Exception:
                out.append(None)
        return out


def _cut(example: TokenizedExample, max_length: int) -> int:
    tail = TokenizedExample(example.input_ids[max_length:], example.labels[max_length:])
    return tail.num_trained


def _cache_file(ds, key):
    if ds.cache_dir is None:
        return None
    return ds.cache_dir / "lengths" / f"{key[0]}-{key[1]}.npz"


def _read_cache(ds, key) -> dict[str, Any] | None:
    path = _cache_file(ds, key)
    if path is None or not path.exists():
        return None
    with np.load(path) as data:
        cached = {name: data[name] for name in ("total", "trained", "cut_rows", "cut")}
        length = int(data["cut_length"])
    cached["cut_length"] = None if length < 0 else length
    return cached if len(cached["total"]) == len(ds.table) else None


def _write_cache(ds, key, cached: dict[str, Any]) -> None:
    path = _cache_file(ds, key)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    length = -1 if cached["cut_length"] is None else cached["cut_length"]
    arrays = {k: v for k, v in cached.items() if k != "cut_length"}
    np.savez(temp, cut_length=np.array(length), **arrays)
    os.replace(temp, path)


@dataclass
class DatasetStats:
    """Distributions over the rows that train (excluded rows left out)."""

    rows: np.ndarray
    prompt_tokens: np.ndarray
    response_tokens: np.ndarray
    total_tokens: np.ndarray
    turns: np.ndarray
    role_counts: dict[str, int]
    max_length: int | None
    template_errors: int

    def __repr__(self) -> str:
        total = self.summary()["total_tokens"]
        median = f", total tokens median {total['p50']:.0f}, max {total['max']}" if total else ""
        return f"DatasetStats({len(self.rows):,} rows{median}, {self.over_max_length:,} over {self.max_length})"

    def _repr_html_(self) -> str:
        """A table of the token lengths (mean, median, p90, p99, max) and the counts below it."""
        s = self.summary()
        head = "".join(f"<th>{k}</th>" for k in ("", "mean", "median", "p90", "p99", "max"))
        body = "".join(
            f"<tr><th>{label}</th>"
            + "".join(
                f"<td>{s[key].get(k, 0):,.0f}</td>" for k in ("mean", "p50", "p90", "p99", "max")
            )
            + "</tr>"
            for label, key in (
                ("prompt tokens", "prompt_tokens"),
                ("response tokens", "response_tokens"),
                ("total tokens", "total_tokens"),
                ("turns", "turns"),
            )
            if s[key]
        )
        roles = ", ".join(f"{html.escape(str(r))} {n:,}" for r, n in self.role_counts.items())
        return (
            f"<p><b>Dataset stats</b>: {len(self.rows):,} rows that train.</p>"
            f"<table><tr>{head}</tr>{body}</table>"
            f"<p>Turns by role: {roles}. Longer than the training length ({self.max_length}): "
            f"{self.over_max_length:,}. The template cannot render: {self.template_errors:,}.</p>"
        )

    @property
    def over_max_length(self) -> int:
        """How many rows are longer than the training length."""
        return 0 if self.max_length is None else int((self.total_tokens > self.max_length).sum())

    def histograms(self, bins: int = 40) -> tuple[list[float], dict[str, list[int]]]:
        """Bin edges shared by the three lengths, and the counts of "prompt", "response" and
        "total" tokens in them (one set of bins, so the three can be drawn together)."""
        top = int(self.total_tokens.max()) if len(self.total_tokens) else 1
        edges = np.linspace(0, max(top, 1), bins + 1)
        values = {
            "prompt": self.prompt_tokens,
            "response": self.response_tokens,
            "total": self.total_tokens,
        }
        counts = {k: np.histogram(v, bins=edges)[0].tolist() for k, v in values.items()}
        return edges.tolist(), counts

    def summary(self) -> dict[str, Any]:
        """JSON-able figures: percentiles of each length, turns, role counts, rows over length."""

        def describe(values: np.ndarray) -> dict[str, float]:
            if not len(values):
                return {}
            p50, p90, p99 = np.percentile(values, [50, 90, 99])
            return {
                "mean": float(values.mean()),
                "p50": float(p50),
                "p90": float(p90),
                "p99": float(p99),
                "max": int(values.max()),
            }

        return {
            "rows": len(self.rows),
            "prompt_tokens": describe(self.prompt_tokens),
            "response_tokens": describe(self.response_tokens),
            "total_tokens": describe(self.total_tokens),
            "turns": describe(self.turns),
            "role_counts": self.role_counts,
            "max_length": self.max_length,
            "over_max_length": self.over_max_length,
            "template_errors": self.template_errors,
        }


def dataset_stats(ds: InstructionDataset) -> DatasetStats:
    """Stats of `ds` (see DatasetStats); tokenises on first use, then reads the cache."""
    lengths = token_lengths(ds)
    keep = np.ones(len(ds), bool)
    keep[list(ds.excluded)] = False
    rendered = keep & (lengths.total >= 0)
    turns = np.zeros(len(ds), np.int32)
    roles = dict.fromkeys(ROLES, 0)
    for rows, chunk in message_chunks(ds, include_excluded=False):
        turns[rows] = pc.list_value_length(chunk).to_numpy(zero_copy_only=False)
        counted = pc.value_counts(pc.list_flatten(chunk).field("role"))
        for item in counted.to_pylist():
            roles[item["values"]] = roles.get(item["values"], 0) + item["counts"]
    return DatasetStats(
        rows=np.flatnonzero(rendered),
        prompt_tokens=lengths.prompt[rendered],
        response_tokens=lengths.trained[rendered],
        total_tokens=lengths.total[rendered],
        turns=turns[keep],
        role_counts=roles,
        max_length=lengths.max_length,
        template_errors=int((keep & (lengths.total < 0)).sum()),
    )
