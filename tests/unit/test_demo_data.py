"""The bundled demo dataset: deterministic, well-formed, correct answers, reproducible file."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from workbench import demo_data
from workbench.demo.handwritten import HANDWRITTEN_TASK, handwritten_rows
from workbench.demo.tasks import DEMO_PATH, TASKS, generate, verify, write_jsonl

REPO = Path(__file__).resolve().parents[2]
N_HANDWRITTEN = len(handwritten_rows())


@pytest.fixture(scope="module")
def rows():
    return generate(2000, seed=0)


def _payload(prompt: str) -> str:
    """The list or phrase a prompt asks about: the text after its last colon or question mark."""
    return re.split(r"[:?]\s+", prompt)[-1]


def _items(prompt: str) -> list[str]:
    return _payload(prompt).split(", ")


def _arithmetic(prompt: str) -> int:
    a, b = (int(x) for x in re.findall(r"\d+", prompt))
    if "Subtract" in prompt:
        return b - a
    if re.search(r"\+|Add|plus", prompt):
        return a + b
    if re.search(r" - |minus", prompt):
        return a - b
    return a * b


def _change_case(prompt: str) -> str:
    phrase = _payload(prompt)
    return phrase.upper() if re.search(r"upper|capital|caps", prompt) else phrase.lower()


def _format_date(prompt: str) -> str:
    d = date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}", prompt).group())
    return f"{d:%B} {d.day}, {d.year}"


def _json_pairs(prompt: str) -> str:
    obj = json.loads(prompt[prompt.index("{") :])
    return ", ".join(f"{k}={v}" for k, v in obj.items())


# An independent recomputation of each family's answer from its prompt alone.
ORACLES = {
    "sort_words": lambda p: ", ".join(sorted(_items(p))),
    "reverse_list": lambda p: ", ".join(reversed(_items(p))),
    "arithmetic": lambda p: str(_arithmetic(p)),
    "count_items": lambda p: str(len(_items(p))),
    "change_case": _change_case,
    "format_date": _format_date,
    "json_to_pairs": _json_pairs,
    "max_number": lambda p: str(max(int(x) for x in _items(p))),
    "acronym": lambda p: "".join(w[0] for w in _payload(p).split()).upper(),
}


def _user_prompt(row: dict) -> str:
    return next(m["content"] for m in row["messages"] if m["role"] == "user")


def test_same_seed_gives_same_rows():
    first = generate(300, seed=3)
    assert first == generate(300, seed=3)
    assert len(first) == 300 + N_HANDWRITTEN


def test_different_seeds_give_different_rows():
    assert generate(300, seed=1) != generate(300, seed=2)


def test_every_row_is_a_chat_ending_with_the_assistant(rows):
    for row in rows:
        messages = row["messages"]
        roles = [m["role"] for m in messages]
        if roles[0] == "system":
            roles = roles[1:]
        assert roles and roles == ["user", "assistant"] * (len(roles) // 2), row
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages)
        assert row["task"] in TASKS or row["task"] == HANDWRITTEN_TASK
        assert row["answer"] == messages[-1]["content"]


def test_rows_mix_tasks_system_prompts_and_handwritten_examples(rows):
    assert len(rows) == 2000 + N_HANDWRITTEN
    handwritten = [r for r in rows if r["task"] == HANDWRITTEN_TASK]
    assert N_HANDWRITTEN >= 30
    assert sorted(map(json.dumps, handwritten)) == sorted(map(json.dumps, handwritten_rows()))
    assert any(len(r["messages"]) == 4 for r in handwritten)
    counts = {task: sum(r["task"] == task for r in rows) for task in TASKS}
    assert min(counts.values()) >= 2000 // len(TASKS)
    with_system = sum(r["messages"][0]["role"] == "system" for r in rows)
    assert 0.05 * len(rows) < with_system < 0.2 * len(rows)
    assert rows[: len(handwritten)] != handwritten  # shuffled in, not appended
    assert not any(r["task"] == HANDWRITTEN_TASK for r in generate(50, handwritten=False))


def test_prompts_vary_in_phrasing_and_have_a_long_tail_of_lengths(rows):
    for task in TASKS:
        prompts = [_user_prompt(r) for r in rows if r["task"] == task]
        assert len({" ".join(p.split()[:2]) for p in prompts}) >= 2, task
        assert len(set(prompts)) == len(prompts), task
    lengths = [len(_user_prompt(r)) for r in rows if r["task"] in TASKS]
    assert max(lengths) > 3 * statistics.median(lengths)


def test_answers_are_correct_and_verify(rows):
    verifiable = [r for r in rows if r["task"] in TASKS]
    for row in verifiable:
        assert row["answer"] == ORACLES[row["task"]](_user_prompt(row)), row
        assert verify(row, row["answer"])
        assert verify(row, f"  {row['answer']}. ")


def test_wrong_answers_do_not_verify(rows):
    for row in (r for r in rows if r["task"] in TASKS):
        assert not verify(row, row["answer"] + "9"), row
        assert not verify(row, ""), row
    sort_row = next(r for r in rows if r["task"] == "sort_words")
    assert not verify(sort_row, ", ".join(reversed(sort_row["answer"].split(", "))))


def test_verify_ignores_spacing_and_case_only_where_allowed():
    sort_row = demo_data._row("sort_words", "Sort: pear, apple", "apple, pear")
    assert verify(sort_row, "Apple,pear.")
    upper_row = demo_data._row("change_case", "Uppercase: red fox", "RED FOX")
    assert verify(upper_row, "RED   FOX")
    assert not verify(upper_row, "red fox")
    with pytest.raises(ValueError, match="no exactly checkable answer"):
        verify(handwritten_rows()[0], "anything")


def test_task_selection_and_bad_arguments():
    only = generate(40, seed=1, tasks=["acronym", "max_number"], handwritten=False)
    assert {r["task"] for r in only} == {"acronym", "max_number"}
    with pytest.raises(ValueError, match="Unknown"):
        generate(5, tasks=["no_such_task"])
    with pytest.raises(ValueError, match="zero or more"):
        generate(-1)


def test_shipped_file_is_exactly_the_seed_zero_generation(tmp_path, rows):
    assert demo_data.demo_path() == DEMO_PATH
    assert DEMO_PATH.is_file()
    assert DEMO_PATH.stat().st_size < 1_000_000
    expected = tmp_path / "demo.jsonl"
    write_jsonl(expected, rows)
    assert DEMO_PATH.read_bytes() == expected.read_bytes()


def test_module_command_line_writes_the_rows(tmp_path):
    out = tmp_path / "sub" / "demo.jsonl"
    command = [sys.executable, "-m", "workbench.demo", "--rows", "25", "--seed", "4"]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert written == generate(25, seed=4)
    assert f"Wrote {25 + N_HANDWRITTEN} rows" in done.stdout
