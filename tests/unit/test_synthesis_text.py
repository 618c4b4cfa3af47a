"""The text side of synthesis: requests from seeds, answers parsed, ROUGE-L, judge grades."""

from __future__ import annotations

import random

import pytest

from workbench.synthesis.judge import read_grade
from workbench.synthesis.parse import Malformed, began_another, parse_candidate
from workbench.synthesis.prompts import Seed, build_requests
from workbench.synthesis.similarity import rouge_l, tokens


def asked(prompt: str, answer: str) -> str:
    return f"### Instruction:\n{prompt}\n### Response:\n{answer}"


def test_parse_reads_the_asked_sections_labels_and_json():
    parsed = parse_candidate(asked("Say hi.", "Hi!") + "\n### Instruction:\nsecond one")
    assert parsed.messages == [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
    ]
    assert parsed.format == "sections"
    assert (
        parse_candidate("**Question:** Why?\n**Answer:** Because.").messages[1]["content"]
        == "Because."
    )
    labelled = parse_candidate("Instruction: Translate\nInput: cat\nOutput: chat")
    assert labelled.messages[0]["content"] == "Translate\n\ncat"
    fenced = parse_candidate('Sure:\n```json\n{"instruction": "Add 2 and 2", "output": "4"}\n```')
    assert fenced.format == "json" and fenced.messages[1]["content"] == "4"
    with_system = parse_candidate(asked("Q", "A"), system="Be brief.")
    assert with_system.messages[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    "text, began",
    [
        ("### Instruction:\nSay hi.\n### Response:\nHi!", False),
        ("### Instruction:\nSay hi.\n### Response:\nHi!\n\n### Instruction:", True),
        ("**Question:** Why?\n**Answer:** Because.\n**Question:**", True),
        ("### Response:\nstray\n### Instruction:\nSay hi.", False),  # no answer after it yet
        ("### Instruction:\nSay hi.\n### Instruction:\nagain", False),
        ('{"instruction": "Add", "output": "4"}\n{"instruction": "Sub"', False),
    ],
)
def test_generation_stops_once_a_second_example_begins_and_the_parse_is_the_same(text, began):
    assert began_another(text) is began
    if began:  # cut where the stop comes: the parser keeps exactly what it kept from all of it
        assert parse_candidate(text) == parse_candidate(text + "\nMore of the second one")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("lorem ipsum dolor", "neither"),
        ("### Instruction:\nonly a task", "no response"),
        ("### Response:\nonly an answer", "no instruction"),
        ('{"instruction": 3}', "neither"),
        ("### Instruction:\n<the new task>\n### Response:\n<its answer>", "placeholder"),
    ],
)
def test_a_malformed_answer_says_what_is_missing(text, reason):
    with pytest.raises(Malformed, match=reason):
        parse_candidate(text)


def test_requests_vary_their_examples_and_use_every_seed():
    seeds = [Seed(r, f"task {r}", f"answer {r}") for r in range(6)]
    requests = build_requests(seeds, 12, examples=3, instruction="invoices", rng=random.Random(0))
    assert len(requests) == 12
    assert len({r.seed_rows for r in requests}) > 6  # varied per request
    shown = [row for r in requests for row in r.seed_rows]
    assert {shown.count(row) for row in range(6)} == {6}  # every seed equally often
    assert all(len(set(r.seed_rows)) == 3 for r in requests)
    assert "about: invoices" in requests[0].prompt and "### Response:" in requests[0].prompt


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence():
    assert rouge_l(
        tokens("the cat sat on the mat"), tokens("The cat is on the mat!")
    ) == pytest.approx(2 * 5 / 12)
    assert rouge_l(tokens("a b c"), tokens("x y z")) == 0
    assert rouge_l([], tokens("a")) == 0
    assert tokens("今天天气 good") == ["今", "天", "天", "气", "good"]


def test_the_judge_grade_is_read_or_said_unreadable():
    assert read_grade("Grade: 4\nReason: correct and clear.") == (4, "correct and clear.")
    assert read_grade("I'd say 2/5 here")[0] == 2
    grade, reason = read_grade("lovely")
    assert grade is None and "no grade" in reason
