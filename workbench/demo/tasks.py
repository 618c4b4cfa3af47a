"""The bundled demo dataset: seeded, verifiable instruction tasks plus handwritten examples.

Each task family is a small function that draws one row from a `random.Random`; its answer is
computed by code, so a model's reply can be checked exactly with `verify`. Rows are in canonical
chat form: `{"messages": [...], "task": name, "answer": expected}`. Regenerate the shipped file
with `python -m workbench.demo` (2000 rows, seed 0).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..persist import atomic_write_text
from .handwritten import handwritten_rows

DEMO_PATH: Path = Path(__file__).resolve().parent / "assets" / "demo.jsonl"
DEFAULT_ROWS = 2000
SYSTEM_SHARE = 0.1
MAX_TRIES_PER_ROW = 100

_WORD_TEXT = """
apple banana cherry grape lemon mango melon orange peach pear plum berry olive onion carrot
potato tomato pepper garlic rice bread butter cheese honey sugar salt flour pasta soup salad
cake cookie pie tea coffee milk water juice egg bean corn nut seed leaf tree flower grass
forest river lake ocean beach island mountain valley hill desert field garden park road
bridge street city town village farm house home room kitchen door window wall floor roof
table chair desk bed lamp clock mirror shelf box bag basket bottle cup plate bowl spoon fork
knife pan pot oven stove sink towel soap brush comb shirt coat hat shoe sock glove scarf
dress belt button pocket ring watch key lock phone radio camera screen letter paper pencil
pen book page story poem song music piano drum guitar violin picture paint color circle
square line point number dog cat horse cow pig sheep goat chicken duck goose rabbit mouse
fox wolf bear deer lion tiger monkey zebra camel whale shark fish frog snake turtle bird
eagle owl parrot bee ant spider butterfly sun moon star sky cloud rain snow wind storm
thunder light shadow fire ice stone rock sand metal gold silver iron glass wood cotton wool
silk morning evening night winter spring summer autumn today week month year hour minute
doctor teacher farmer driver baker pilot nurse artist writer singer player friend family
mother father sister brother child baby king queen captain train plane ship boat bus car
bicycle wheel engine rocket planet earth world country map flag market shop bank school
library museum hospital office station airport hotel theater garage castle tower tent cabin
happy quiet bright gentle brave clever calm eager fancy jolly kind lucky proud silly swift
warm cold green blue yellow purple small large tall short quick slow soft loud sweet fresh
jump run walk swim climb dance sing read write draw cook bake build carry catch throw open
close push pull smile laugh think dream learn teach play rest sleep wake travel visit
"""
_KEY_TEXT = """
name color size age city count price level score owner status shape animal fruit day room
team weight speed height
"""
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())
KEYS: tuple[str, ...] = tuple(_KEY_TEXT.split())
SYSTEM_PROMPTS: tuple[str, ...] = (
    "You are a helpful assistant.",
    "You are a precise assistant. Reply with the answer only.",
    "Answer briefly and exactly.",
)
CASE_SENSITIVE_TASKS = frozenset({"change_case", "acronym"})


# -- shared helpers ---------------------------------------------------------------------------


def _length(rng: random.Random, low: int, mean_extra: float, cap: int) -> int:
    """A list length with a long tail: usually near `low`, occasionally up to `cap`."""
    return min(cap, low + int(rng.expovariate(1.0 / mean_extra)))


def _words(rng: random.Random, count: int) -> list[str]:
    return rng.sample(WORDS, count)


def _join(items: Sequence[object]) -> str:
    return ", ".join(str(item) for item in items)


def _row(task: str, prompt: str, answer: str) -> dict:
    """One verifiable row whose assistant turn is exactly the expected answer."""
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"messages": messages, "task": task, "answer": answer}


# -- task families ----------------------------------------------------------------------------


def sort_words(rng: random.Random) -> dict:
    """Sort a list of distinct words alphabetically."""
    words = _words(rng, _length(rng, 3, 3, 30))
    phrasing = rng.choice(
        (
            "Sort these words alphabetically: {}",
            "Put the following words in alphabetical order: {}",
            "Arrange these words from A to Z: {}",
            "Alphabetize this list:\n{}",
        )
    )
    return _row("sort_words", phrasing.format(_join(words)), _join(sorted(words)))


def reverse_list(rng: random.Random) -> dict:
    """Reverse a list of words or numbers."""
    count = _length(rng, 3, 3, 30)
    items = _words(rng, count) if rng.random() < 0.6 else rng.sample(range(1, 100), count)
    phrasing = rng.choice(
        (
            "Reverse this list: {}",
            "Write these items in reverse order: {}",
            "List the following backwards, last item first: {}",
        )
    )
    return _row("reverse_list", phrasing.format(_join(items)), _join(items[::-1]))


def arithmetic(rng: random.Random) -> dict:
    """Add, subtract or multiply two small integers."""
    op = rng.choice(("add", "subtract", "multiply"))
    if op == "multiply":
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        result = a * b
        phrasings = ("What is {a} * {b}?", "Multiply {a} by {b}.", "What is {a} times {b}?")
    elif op == "add":
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        result = a + b
        phrasings = ("What is {a} + {b}?", "Add {a} and {b}.", "Compute {a} plus {b}.")
    else:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        result = a - b
        phrasings = ("What is {a} - {b}?", "Subtract {b} from {a}.", "Compute {a} minus {b}.")
    prompt = rng.choice(phrasings).format(a=a, b=b) + " Answer with the number only."
    return _row("arithmetic", prompt, str(result))


def count_items(rng: random.Random) -> dict:
    """Count the items in a list of words."""
    words = _words(rng, _length(rng, 2, 4, 40))
    phrasing = rng.choice(
        (
            "How many items are in this list? {}",
            "Count the words in this list: {}",
            "How many words are here: {}",
        )
    )
    return _row("count_items", phrasing.format(_join(words)), str(len(words)))


def change_case(rng: random.Random) -> dict:
    """Convert a phrase to uppercase or to lowercase."""
    phrase = " ".join(_words(rng, _length(rng, 2, 2, 12)))
    if rng.random() < 0.5:
        phrasing = rng.choice(
            (
                "Convert this phrase to uppercase: {}",
                "Write this in capital letters: {}",
                "Rewrite in all caps: {}",
            )
        )
        return _row("change_case", phrasing.format(phrase), phrase.upper())
    shown = phrase.title() if rng.random() < 0.5 else phrase.upper()
    phrasing = rng.choice(
        ("Convert this phrase to lowercase: {}", "Write this in small letters only: {}")
    )
    return _row("change_case", phrasing.format(shown), phrase)


def format_date(rng: random.Random) -> dict:
    """Convert a YYYY-MM-DD date to "Month D, YYYY"."""
    year, month = rng.randint(1950, 2049), rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    iso = f"{year:04d}-{month:02d}-{day:02d}"
    phrasing = rng.choice(
        (
            'Convert the date {} to the form "Month D, YYYY".',
            'Write {} as "Month D, YYYY".',
            "Rewrite this date in words, like January 5, 2020: {}",
        )
    )
    return _row("format_date", phrasing.format(iso), f"{calendar.month_name[month]} {day}, {year}")


def json_to_pairs(rng: random.Random) -> dict:
    """Convert a small flat JSON object to comma-separated key=value pairs, in order."""
    keys = rng.sample(KEYS, _length(rng, 2, 1.5, 8))
    obj = {key: rng.choice(WORDS) if rng.random() < 0.5 else rng.randint(0, 99) for key in keys}
    phrasing = rng.choice(
        (
            "Convert this JSON object to key=value pairs, in order: {}",
            "Rewrite as comma-separated key=value pairs, keeping the order: {}",
        )
    )
    answer = _join(f"{key}={value}" for key, value in obj.items())
    return _row("json_to_pairs", phrasing.format(json.dumps(obj)), answer)


def max_number(rng: random.Random) -> dict:
    """Pick the largest number in a list of distinct integers."""
    numbers = rng.sample(range(-50, 1000), _length(rng, 2, 4, 40))
    phrasing = rng.choice(
        (
            "What is the largest number in this list? {}",
            "Which of these numbers is the biggest: {}",
            "Find the maximum of: {}",
        )
    )
    return _row("max_number", phrasing.format(_join(numbers)), str(max(numbers)))


def acronym(rng: random.Random) -> dict:
    """Write the first letter of each word, in capitals."""
    words = _words(rng, _length(rng, 2, 2, 10))
    phrasing = rng.choice(
        (
            "Write the first letter of each word, in capitals: {}",
            "Make an uppercase acronym from these words: {}",
            "What acronym do these words form (capital letters)? {}",
        )
    )
    answer = "".join(word[0] for word in words).upper()
    return _row("acronym", phrasing.format(" ".join(words)), answer)


TASKS: dict[str, Callable[[random.Random], dict]] = {
    "sort_words": sort_words,
    "reverse_list": reverse_list,
    "arithmetic": arithmetic,
    "count_items": count_items,
    "change_case": change_case,
    "format_date": format_date,
    "json_to_pairs": json_to_pairs,
    "max_number": max_number,
    "acronym": acronym,
}


# -- dataset ----------------------------------------------------------------------------------


def generate(
    n: int, seed: int = 0, tasks: Sequence[str] | None = None, handwritten: bool = True
) -> list[dict]:
    """`n` verifiable rows (tasks in turn, no repeated prompt) plus, if `handwritten`, each
    handwritten example once, all shuffled. The same arguments always give the same rows.
    """
    if n < 0:
        raise ValueError(f"n must be zero or more; got {n}.")
    names = _task_names(tasks)
    rng = random.Random(seed)
    rows: list[dict] = []
    seen: set[str] = set()
    for index in range(n):
        row = _unique_row(rng, names[index % len(names)], seen)
        if rng.random() < SYSTEM_SHARE:
            system = {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}
            row["messages"].insert(0, system)
        rows.append(row)
    if handwritten:
        rows.extend(handwritten_rows())
    rng.shuffle(rows)
    return rows


def _task_names(tasks: Sequence[str] | None) -> list[str]:
    if tasks is None:
        return list(TASKS)
    if isinstance(tasks, str):
        tasks = [tasks]
    unknown = [name for name in tasks if name not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"Unknown or no tasks {unknown}; choose from {', '.join(TASKS)}.")
    return list(tasks)


def _unique_row(rng: random.Random, task: str, seen: set[str]) -> dict:
    """A row of `task` whose prompt is not in `seen` (which it joins)."""
    for _ in range(MAX_TRIES_PER_ROW):
        row = TASKS[task](rng)
        prompt = row["messages"][0]["content"]
        if prompt not in seen:
            seen.add(prompt)
            return row
    raise ValueError(f"Task {task!r} ran out of distinct prompts; ask for fewer rows.")


def write_jsonl(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    """Write `rows` as JSONL (one row a line, UTF-8), replacing `path` atomically."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    atomic_write_text(path, text)


def demo_path() -> Path:
    """Path of the shipped demo dataset, `workbench/demo/assets/demo.jsonl`."""
    return DEMO_PATH


# -- checking answers -------------------------------------------------------------------------


def is_verifiable(row: dict) -> bool:
    """Whether `row` comes from a task family whose answer `verify` can check."""
    return row.get("task") in TASKS


def verify(row: dict, answer: str) -> bool:
    """Whether `answer` is correct for a verifiable `row`.

    Whitespace, spacing around commas and a trailing period are ignored, and so is case except
    in tasks about case. Handwritten rows have no single answer: they raise ValueError.
    """
    if not is_verifiable(row):
        raise ValueError(f"Rows of task {row.get('task')!r} have no exactly checkable answer.")
    ignore_case = row["task"] not in CASE_SENSITIVE_TASKS
    return _normalise(answer, ignore_case) == _normalise(row["answer"], ignore_case)


def _normalise(text: str, ignore_case: bool) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    text = re.sub(r"\s*,\s*", ", ", text)
    text = re.sub(r"\.+$", "", text).strip()
    return text.casefold() if ignore_case else text


# -- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate a demo file: `python -m workbench.demo --rows N --seed S --out PATH`."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench.demo", description="Write the demo dataset as JSONL."
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="verifiable rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEMO_PATH)
    parser.add_argument("--no-handwritten", action="store_true", help="leave them out")
    args = parser.parse_args(argv)
    try:
        rows = generate(args.rows, seed=args.seed, handwritten=not args.no_handwritten)
    except ValueError as e:
        parser.error(str(e))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out, rows)
    print(f"Wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
