"""The quality report: what is wrong with which rows, found with Arrow and NumPy, not row loops.

Excluded rows are left out: excluding a row is one way to fix its problems. Each problem lists
its rows (sorted), so a view can page through them and jump to each. A report shows itself in a
notebook as a list of the problems found, each with its first rows and their notes (escaped).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..templates.special_text import special_strings
from .chunks import canonical, message_chunks, normalise, row_texts, turns_of
from .dedup import equal_groups
from .invisible import unseen_difference

if TYPE_CHECKING:
    from .dataset import InstructionDataset

MAX_NOTES = 1000
SHOWN_ROWS = 10  # rows of each problem a notebook shows
NOTE_CHARS = 160  # a note as a notebook shows it
SYSTEM, USER, ASSISTANT, START = 0, 1, 2, -2
# C0/C1 control characters other than tab/newline/CR, the replacement character left by bad
# decoding, and the usual signs of UTF-8 read as Latin-1 or Windows-1252 (mojibake).
BAD_TEXT = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}\x{fffd}]|Ã[\x{80}-\x{bf}]|â€"
TITLES = {
    "empty_turn": "Empty or whitespace-only turns",
    "missing_assistant": "No assistant turn",
    "role_order": "Roles out of order",
    "duplicate": "Exact duplicates",
    "near_duplicate": "Near duplicates (same text after normalising)",
    "too_long": "Longer than the training length",
    "template_error": "The template cannot render the row",
    "non_text": "Missing (null) role or content",
    "bad_characters": "Control characters or broken unicode",
    "eval_overlap": "Eval prompts also in the train split",
    "special_token_text": "Text that spells a special token (tokenised as text)",
}


@dataclass
class Problem:
    """One kind of problem: its name, a title for people, the rows that have it, and a note
    for each of the first rows (for example "same as row 12")."""

    name: str
    rows: np.ndarray
    notes: dict[int, str] = field(default_factory=dict)
    summary: str = ""  # one line about all its rows, e.g. the trained tokens truncation cuts

    @property
    def title(self) -> str:
        """The problem as people read it."""
        return TITLES[self.name]

    def __len__(self) -> int:
        return len(self.rows)

    def to_json(self) -> dict[str, Any]:
        """The problem as JSON (all rows, the notes kept)."""
        return {
            "name": self.name,
            "title": self.title,
            "count": len(self.rows),
            "summary": self.summary,
            "rows": self.rows.tolist(),
            "notes": {str(k): v for k, v in self.notes.items()},
        }


@dataclass
class QualityReport:
    """Every check's result; a check that found nothing is present with no rows."""

    problems: dict[str, Problem]
    checked_rows: int
    lengths_checked: bool

    def __getitem__(self, name: str) -> Problem:
        return self.problems[name]

    def rows(self, name: str) -> list[int]:
        """The rows with problem `name`."""
        return self.problems[name].rows.tolist()

    def found(self) -> list[Problem]:
        """The problems that have rows, most rows first."""
        return sorted((p for p in self.problems.values() if len(p)), key=lambda p: -len(p))

    def summary(self) -> dict[str, int]:
        """Rows per problem."""
        return {name: len(p) for name, p in self.problems.items()}

    def problems_of(self, row: int) -> list[str]:
        """The names of the problems `row` has."""
        return [p.name for p in self.problems.values() if np.isin(row, p.rows)]

    def __repr__(self) -> str:
        found = "; ".join(f"{p.title}: {len(p):,}" for p in self.found()) or "no problems"
        return f"QualityReport({self.checked_rows:,} rows checked; {found})"

    def _repr_html_(self) -> str:
        """The problems found, most rows first, each with its first rows and their notes."""
        lengths = "" if self.lengths_checked else " (token lengths not checked)"
        head = f"<p><b>Quality report</b>: {self.checked_rows:,} rows checked{lengths}.</p>"
        found = self.found()
        if not found:
            return head + "<p>No problems found.</p>"
        items = "".join(_problem_html(p) for p in found)
        return f"{head}<ul>{items}</ul><p>Each list gives row numbers: ds[row] shows one.</p>"

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON, problem by problem."""
        return {
            "checked_rows": self.checked_rows,
            "lengths_checked": self.lengths_checked,
            "problems": [p.to_json() for p in self.problems.values()],
        }


def _problem_html(problem: Problem) -> str:
    """One problem as a list item: title, count, summary, and its first rows with notes."""
    rows = problem.rows[:SHOWN_ROWS].tolist()
    listed = "".join(
        f"<li>row {r}{html.escape(': ' + _clip(problem.notes[r]) if r in problem.notes else '')}"
        "</li>"
        for r in rows
    )
    more = len(problem) - len(rows)
    if more:
        listed += f"<li>… and {more:,} more</li>"
    summary = f" {html.escape(_clip(problem.summary))}" if problem.summary else ""
    return (
        f"<li><b>{html.escape(problem.title)}</b>: {len(problem):,} "
        f"{'row' if len(problem) == 1 else 'rows'}.{summary}<ul>{listed}</ul></li>"
    )


def _clip(text: str) -> str:
    text = str(text)
    return text if len(text) <= NOTE_CHARS else text[:NOTE_CHARS] + "…"


def quality_report(
    ds: InstructionDataset, *, lengths: bool = True, eval_rows: Sequence[int] | None = None
) -> QualityReport:
    """Check every row that is not excluded (see QualityReport); memoised until the next edit."""
    if eval_rows is None and ds.last_split and ds.last_split[0] > 0:
        eval_rows = ds.split_indices(*ds.last_split)[1]
    template = ds.template if lengths else None
    bound = ds.template
    specials = special_strings(bound.tokenizer) if bound and bound.tokenizer else ()
    key = (
        "quality",
        ds.edit_version,
        template.fingerprint if template else None,
        ds.max_length if template else None,
        _digest(eval_rows),
        specials,
    )
    if key not in ds._memo:
        ds._memo = {k: v for k, v in ds._memo.items() if k[0] != "quality"}
        ds._memo[key] = _check(ds, template is not None, eval_rows, specials)
    return ds._memo[key]


def _check(ds, lengths: bool, eval_rows, specials: tuple[str, ...]) -> QualityReport:
    found: dict[str, list[np.ndarray]] = {name: [] for name in TITLES}
    spelled: dict[int, str] = {}
    checked = 0
    for rows, chunk in message_chunks(ds, include_excluded=False):
        for name, hits in _turn_checks(chunk).items():
            found[name].append(rows[hits])
        spelled.update(_spelled_specials(rows, chunk, specials))
        checked += len(rows)
    problems = {name: Problem(name, _sorted(parts)) for name, parts in found.items()}
    rows = np.array(sorted(spelled), np.int64)
    notes = {int(r): spelled[int(r)] for r in rows[:MAX_NOTES]}
    problems["special_token_text"] = Problem("special_token_text", rows, notes)
    problems["duplicate"], problems["near_duplicate"] = _duplicates(ds)
    if lengths:
        problems["too_long"], problems["template_error"] = _length_problems(ds)
    if eval_rows is not None and len(eval_rows):
        problems["eval_overlap"] = _eval_overlap(ds, np.asarray(eval_rows, np.int64))
    return QualityReport(problems, checked, lengths)


def _spelled_specials(rows: np.ndarray, chunk: pa.ListArray, specials) -> dict[int, str]:
    """Rows whose turns spell a special token's text, with a note naming the turn and token:
    it trains and is read as text, never as the token (templates.special_text)."""
    if not specials:
        return {}
    t = turns_of(chunk)
    notes: dict[int, str] = {}
    for token in specials:
        hits = pc.match_substring(t.content, token).fill_null(False).to_numpy(zero_copy_only=False)
        for turn in np.flatnonzero(hits):
            row = int(rows[t.parents[turn]])
            role = t.role[int(turn)].as_py()
            notes.setdefault(
                row, f"the {role} turn spells {token}; it is read as text, not as the token"
            )
    return notes


def _turn_checks(chunk: pa.ListArray) -> dict[str, np.ndarray]:
    """Positions (in the chunk) of rows failing each per-turn check."""
    t = turns_of(chunk)
    n = len(chunk)
    if not len(t.codes):
        none = np.zeros(0, np.int64)
        return {
            "empty_turn": none,
            "non_text": none,
            "bad_characters": none,
            "missing_assistant": np.arange(n),
            "role_order": none,
        }
    null = pc.or_(t.content.is_null(), t.role.is_null()).to_numpy(zero_copy_only=False)
    blank = pc.equal(pc.utf8_trim_whitespace(t.content), "").fill_null(False)
    bad = pc.match_substring_regex(t.content, BAD_TEXT).fill_null(False)
    answers = np.bincount(t.parents[t.codes == ASSISTANT], minlength=n)
    same_row = np.r_[False, t.parents[1:] == t.parents[:-1]]
    prev = np.where(same_row, np.r_[START, t.codes[:-1]], START)
    last = np.r_[t.parents[1:] != t.parents[:-1], True]
    position = np.arange(len(t.codes)) - t.offsets[t.parents]
    disorder = (t.codes == SYSTEM) & (position > 0)
    disorder |= (t.codes == ASSISTANT) & ((prev == START) | (prev == SYSTEM))
    disorder |= (t.codes == prev) & (t.codes != SYSTEM)
    disorder |= last & (t.codes == USER) & (answers[t.parents] > 0)
    return {
        "empty_turn": np.unique(t.parents[blank.to_numpy(zero_copy_only=False)]),
        "non_text": np.unique(t.parents[null]),
        "bad_characters": np.unique(t.parents[bad.to_numpy(zero_copy_only=False)]),
        "missing_assistant": np.flatnonzero(answers == 0),
        "role_order": np.unique(t.parents[disorder]),
    }


def _duplicates(ds) -> tuple[Problem, Problem]:
    """Rows repeating an earlier row as a reader sees it (the same text but for invisible
    characters or the Unicode form, named in the note), and rows equal to an earlier one only
    after normalising (case, punctuation, spacing, compatibility forms)."""

    def chunks():
        return message_chunks(ds, include_excluded=False)

    exact = equal_groups(chunks, lambda chunk: canonical(row_texts(chunk)))
    near = equal_groups(chunks, lambda chunk: normalise(row_texts(chunk, spaced=True)))
    exact_first = {int(r): int(g[0]) for g in exact for r in g[1:]}
    near_first = {}
    for g in near:
        for r in g[1:]:
            if int(r) not in exact_first or exact_first[int(r)] != int(g[0]):
                near_first[int(r)] = int(g[0])
    duplicate = _problem("duplicate", exact_first, "same as row {}")
    for row, note in duplicate.notes.items():
        unseen = unseen_difference(_text(ds, row), _text(ds, exact_first[row]))
        duplicate.notes[row] = f"{note} {unseen}".strip()
    return duplicate, _problem("near_duplicate", near_first, "nearly the same as row {}")


def _text(ds, row: int) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in ds[row]["messages"])


def _length_problems(ds) -> tuple[Problem, Problem]:
    lengths = ds.token_lengths()
    keep = np.ones(len(ds), bool)
    keep[list(ds.excluded)] = False
    over = np.flatnonzero(keep & (lengths.total > (lengths.max_length or np.iinfo(np.int32).max)))
    notes = {
        int(r): f"{lengths.total[r]} tokens > {lengths.max_length}; truncation cuts "
        f"{lengths.cut.get(int(r), 0)} trained tokens"
        for r in over[:MAX_NOTES]
    }
    cut = sum(lengths.cut.get(int(r), 0) for r in over)
    summary = f"truncation to {lengths.max_length} tokens cuts {cut:,} trained tokens in all"
    failed = np.flatnonzero(keep & (lengths.total < 0))
    return Problem("too_long", over, notes, summary), Problem("template_error", failed)


def _eval_overlap(ds, eval_rows: np.ndarray) -> Problem:
    """Eval rows whose prompt (system and user turns, normalised) is also a train prompt."""
    prompts = []
    for rows, chunk in message_chunks(ds, include_excluded=False):
        wanted = np.isin(rows, eval_rows)
        if wanted.any():
            text = normalise(row_texts(chunk.filter(pa.array(wanted)), ("system", "user"), True))
            prompts.append((rows[wanted], text))
    if not prompts:
        return Problem("eval_overlap", np.zeros(0, np.int64))
    eval_text = pa.concat_arrays([t for _, t in prompts])
    eval_row = np.concatenate([r for r, _ in prompts])
    seen = np.zeros(len(eval_text), bool)
    notes: dict[int, str] = {}
    for rows, chunk in message_chunks(ds, include_excluded=False):
        train = ~np.isin(rows, eval_rows)
        if not train.any():
            continue
        text = normalise(row_texts(chunk.filter(pa.array(train)), ("system", "user"), True))
        found = pc.index_in(eval_text, value_set=text)
        hit = found.is_valid().to_numpy(zero_copy_only=False)
        where = found.fill_null(-1).to_numpy(zero_copy_only=False)
        for k in np.flatnonzero(hit & ~seen)[:MAX_NOTES]:
            notes[int(eval_row[k])] = f"same prompt as train row {int(rows[train][int(where[k])])}"
        seen |= hit
    return Problem("eval_overlap", np.sort(eval_row[seen]), notes)


def _problem(name: str, first: dict[int, int], note: str) -> Problem:
    rows = np.array(sorted(first), np.int64)
    return Problem(name, rows, {int(r): note.format(first[int(r)]) for r in rows[:MAX_NOTES]})


def _sorted(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def _digest(rows) -> Any:
    return None if rows is None else hash(np.asarray(rows, np.int64).tobytes())
