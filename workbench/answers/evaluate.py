"""Held-out scoring: every contestant answers the eval rows, and a scorer marks each answer.

A row's reference is its last assistant turn; its prompt is the turns before that. Greedy answers
are cached in the workspace, keyed by the contestant's weights and template, the rendered prompt
and the settings, so evaluating again (or comparing the same prompts) costs no generation.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..persist import append_jsonl, read_jsonl
from ..templates.context import row_context
from .compare import ComparisonStopped
from .generate import GenerationSettings, Generator

Scorer = Callable[[dict, str], "bool | float"]
"""`scorer(row, answer)`: 1/True for a right answer; the signature of demo_data.verify."""

BATCH_SIZE = 16


def normalise(text: str) -> str:
    """Text as exact match compares it: spaces collapsed, wrapping quotes and a final period gone."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return re.sub(r"\.+$", "", text).strip()


def exact_match(row: dict, answer: str) -> bool:
    """The answer equals the reference after normalisation (case counts)."""
    return normalise(answer) == normalise(reference_of(row))


def contains(row: dict, answer: str) -> bool:
    """The normalised reference appears in the normalised answer."""
    return normalise(reference_of(row)) in normalise(answer)


SCORERS: dict[str, Scorer] = {"exact_match": exact_match, "contains": contains}


def resolve_scorer(scorer: str | Scorer) -> tuple[str, Scorer]:
    """A scorer's name and function, from a built-in name or a callable."""
    if isinstance(scorer, str):
        if scorer not in SCORERS:
            raise ValueError(
                f"Unknown scorer {scorer!r}; use one of {list(SCORERS)} or a function."
            )
        return scorer, SCORERS[scorer]
    if not callable(scorer):
        raise TypeError(f"A scorer is a name or a function (row, answer) -> score; got {scorer!r}.")
    name = getattr(scorer, "__qualname__", None) or type(scorer).__name__
    return f"{getattr(scorer, '__module__', '')}.{name}".lstrip("."), scorer


def split_turns(row: dict | list) -> tuple[list[dict], str]:
    """A row's prompt (the turns before its last assistant turn) and its reference answer."""
    messages = row["messages"] if isinstance(row, dict) else row
    for k in range(len(messages) - 1, -1, -1):
        if messages[k].get("role") == "assistant":
            return [dict(m) for m in messages[:k]], str(messages[k].get("content", ""))
    raise ValueError("The row has no assistant turn to use as the reference answer.")


def reference_of(row: dict) -> str:
    """The reference answer of a row: its last assistant turn."""
    return split_turns(row)[1]


class AnswerCache:
    """Greedy answers already generated, in an append-only JSONL file (thread-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._answers: dict[str, str] | None = None

    @staticmethod
    def key(fingerprint: str, text: str, settings: GenerationSettings) -> str:
        """The key of one answer: who answers, exactly what they read, and how."""
        read = [fingerprint, text, {**settings.to_json(), "seed": None}]
        if getattr(text, "control", None) is not None:  # its special token texts read as text
            read.append(text.control)
        parts = json.dumps(read)
        return hashlib.sha1(parts.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """The cached answer for `key`, or None."""
        with self._lock:
            return self._load().get(key)

    def put(self, key: str, answer: str) -> None:
        """Remember an answer (appended and fsynced to the file)."""
        with self._lock:
            answers = self._load()
            if answers.get(key) != answer:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                append_jsonl(self.path, {"key": key, "answer": answer})
                answers[key] = answer

    def _load(self) -> dict[str, str]:
        if self._answers is None:
            self._answers = {r["key"]: r["answer"] for r in read_jsonl(self.path)}
        return self._answers


def answers_for(
    generator: Generator,
    name: str,
    prompts: Sequence[str | list[dict]],
    settings: GenerationSettings,
    cache: AnswerCache | None = None,
    batch_size: int = BATCH_SIZE,
    stop: threading.Event | None = None,
    on_answers: Callable[[int], None] | None = None,
) -> list[str]:
    """Contestant `name`'s answers to `prompts`: cached ones reused, the rest in batches.

    Prompts of similar length are batched together to pad little; order is kept. `on_answers(n)`
    hears how many answers are ready: the cache hits first, then each batch. `stop` ends the
    batch in flight and skips the rest; those answers are "" and are not cached.
    """
    fingerprint = generator.fingerprint(name) if cache is not None and settings.greedy else None
    texts = [generator.render(name, p, settings) for p in prompts]
    keys = [AnswerCache.key(fingerprint, t, settings) if fingerprint else None for t in texts]
    answers: list[str | None] = [cache.get(k) if k else None for k in keys]
    missing = sorted((i for i, a in enumerate(answers) if a is None), key=lambda i: len(texts[i]))
    if on_answers is not None:
        on_answers(len(prompts) - len(missing))
    for start in range(0, len(missing), batch_size):
        if _stopped(stop):
            break
        chunk = missing[start : start + batch_size]
        fresh = generator.generate_batch([prompts[i] for i in chunk], name, settings, stop=stop)
        if _stopped(stop):  # the batch may have ended early: its answers are not whole
            break
        for i, answer in zip(chunk, fresh):
            answers[i] = answer
            if keys[i]:
                cache.put(keys[i], answer)
        if on_answers is not None:
            on_answers(len(chunk))
    return [a or "" for a in answers]


def answers_of_all(
    generator: Generator,
    names: Sequence[str],
    prompts: Sequence[str | list[dict]],
    settings: GenerationSettings,
    cache: AnswerCache | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, list[str]]:
    """Every contestant's answers to `prompts` (see answers_for), by name.

    `progress(done, total)` follows the prompt x contestant answers, cache hits included.
    Raises ComparisonStopped when `stop` is set before every answer is done.
    """
    total, done = len(names) * len(prompts), 0

    def count(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    answers = {}
    for name in names:
        answers[name] = answers_for(
            generator, name, prompts, settings, cache, stop=stop, on_answers=count
        )
        if _stopped(stop) and done < total:
            raise ComparisonStopped(done, total, cached=cache is not None and settings.greedy)
    return answers


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


@dataclass
class RowResult:
    """One scored answer: the dataset row, its prompt and reference, the answer and its score."""

    row: int
    prompt: list[dict]
    reference: str
    answer: str
    score: float


@dataclass
class Evaluation:
    """Scores of one or more contestants on the same rows; `scores` is the table of aggregates."""

    scorer: str
    settings: dict[str, Any]
    contestants: dict[str, dict[str, Any]]
    results: dict[str, list[RowResult]]
    skipped: list[int] = field(default_factory=list)

    @property
    def scores(self) -> dict[str, float]:
        """Mean score per contestant (0 to 1)."""
        return {m: _mean([r.score for r in rows]) for m, rows in self.results.items()}

    @property
    def score(self) -> float:
        """The mean score, when one contestant was evaluated."""
        if len(self.results) != 1:
            raise ValueError(f"{len(self.results)} contestants were evaluated; read .scores.")
        return next(iter(self.scores.values()))

    def table(self) -> list[dict[str, Any]]:
        """One line per contestant: rows, score, and the hashes that identify it."""
        return [
            {
                "model": name,
                "rows": len(self.results[name]),
                "score": self.scores[name],
                "adapter_sha256": info.get("adapter_sha256"),
                "template_sha": info.get("template_sha"),
            }
            for name, info in self.contestants.items()
        ]

    def per_row(self) -> list[dict[str, Any]]:
        """One line per row: the prompt, the reference, and each contestant's answer and score."""
        names = list(self.results)
        lines = []
        for k, first in enumerate(self.results[names[0]] if names else []):
            line = {"row": first.row, "prompt": first.prompt, "reference": first.reference}
            for name in names:
                line[name] = self.results[name][k].answer
                line[f"{name} score"] = self.results[name][k].score
            lines.append(line)
        return lines

    def to_json(self) -> dict[str, Any]:
        """Everything as a JSON-ready dict."""
        return asdict(self)

    def __repr__(self) -> str:
        scores = ", ".join(f"{m} {s:.0%}" for m, s in self.scores.items())
        rows = len(next(iter(self.results.values()), []))
        counted = f"{rows:,} {'row' if rows == 1 else 'rows'}"
        return f"Evaluation({self.scorer} on {counted}: {scores or 'no contestants'})"

    def _repr_html_(self) -> str:
        """One line per contestant: rows, score and the hashes that identify it (escaped)."""
        many = len(self.skipped)
        skipped = (
            f" {many:,} {'row' if many == 1 else 'rows'} skipped (no assistant answer to score "
            "against)."
            if many
            else ""
        )
        title = f"<p><b>Evaluation</b> with {html.escape(self.scorer)}.{skipped}</p>"
        head = "<tr><th>model</th><th>rows</th><th>score</th><th>adapter</th><th>template</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(line['model'])}</td><td>{line['rows']}</td>"
            f"<td>{line['score']:.1%}</td><td>{html.escape(str(line['adapter_sha256'] or '—'))}</td>"
            f"<td>{html.escape(str(line['template_sha']))}</td></tr>"
            for line in self.table()
        )
        return f"{title}<table>{head}{body}</table>"


def evaluate(
    generator: Generator,
    models: Sequence[str],
    rows: Sequence[dict],
    scorer: str | Scorer = "exact_match",
    settings: GenerationSettings | None = None,
    cache: AnswerCache | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> Evaluation:
    """Score each contestant in `models` on `rows` (dicts with "messages", as ds[i] gives).

    `progress` and `stop` work as in answers_of_all (ComparisonStopped when stopped).
    """
    settings = settings or GenerationSettings()
    scorer_name, score = resolve_scorer(scorer)
    usable, prompts, references, skipped = [], [], [], []
    for k, row in enumerate(rows):
        try:
            prompt, reference = split_turns(row)
        except ValueError:
            skipped.append(row.get("row", k))
            continue
        usable.append((row.get("row", k), row))
        context = row_context(row) if isinstance(row, dict) else {}
        prompts.append({**context, "messages": prompt} if context else prompt)
        references.append(reference)
    if not usable:
        raise ValueError("No row has an assistant turn to score against; nothing was evaluated.")
    everyone = answers_of_all(
        generator, models, prompts, settings, cache, progress=progress, stop=stop
    )
    results = {}
    for name, answers in everyone.items():
        results[name] = [
            RowResult(
                number,
                prompt["messages"] if isinstance(prompt, dict) else prompt,
                ref,
                answer,
                _score(score, scorer_name, number, row, answer),
            )
            for (number, row), prompt, ref, answer in zip(usable, prompts, references, answers)
        ]
    contestants = {name: generator.describe(name) for name in models}
    return Evaluation(scorer_name, settings.to_json(), contestants, results, skipped)


def _score(score: Scorer, name: str, number: int, row: dict, answer: str) -> float:
    try:
        return float(score(row, answer))
    except Exception as e:
        raise ValueError(f"The scorer {name} failed on row {number}: {e}") from e


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
