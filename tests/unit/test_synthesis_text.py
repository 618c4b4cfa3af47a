"""The text side of synthesis: requests from seeds, answers parsed, ROUGE-L, judge grades."""

from __future__ import annotations

import random

import pytest

from workbench.synthesis.judge import read_grade
from workbench.synthesis.parse import (
    Malformed,
    began_another,
    finished,
    loops,
    overrun,
    parse_candidate,
)
from workbench.synthesis.prompts import DOCUMENT_OPEN, Bounds, Seed, build_requests
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


def test_document_requests_are_the_examples_then_an_open_instruction_section():
    seeds = [Seed(r, f"task {r}", f"answer {r}") for r in range(4)]
    requests = build_requests(
        seeds, 5, examples=2, instruction="invoices", rng=random.Random(0), document=True
    )
    for request in requests:
        assert request.prompt.endswith("\n\n" + DOCUMENT_OPEN)  # the model writes the task
        assert "about: invoices" in request.prompt.splitlines()[0]
        for row in request.seed_rows:
            assert f"### Instruction:\ntask {row}\n### Response:\nanswer {row}" in request.prompt
        assert "Write one new example" not in request.prompt  # no chat request in it


@pytest.mark.parametrize(
    "answer, loop",
    [
        ("I am a dog. I am a dog. I am a dog. I am a dog.", True),
        ("The answer is \n" * 6, True),
        (" ".join(f"The {i}th wave is deep." for i in range(40)), False),  # long, never the same
        ("Red, yellow and blue; red, yellow and blue.", False),  # said twice is not a loop
    ],
)
def test_a_generation_loop_ends_generation_and_is_malformed(answer, loop):
    text = asked("Say something.", answer)
    assert loops(text) is loop
    assert finished(text, 1000, 1000) is loop
    if loop:
        with pytest.raises(Malformed, match="over and over"):
            parse_candidate(text)
    else:
        assert parse_candidate(text).messages[1]["content"] == answer


def test_generation_stops_once_a_section_runs_past_the_seeds_bound():
    seeds = [Seed(0, "Name a colour.", "Red."), Seed(1, " ".join(["word"] * 30), "x " * 70)]
    bounds = Bounds.of(seeds)
    assert (bounds.ask, bounds.answer) == (60, 140)  # twice the longest, in words and marks
    assert Bounds.of(seeds[:1]) == Bounds(48, 96)  # short seeds: the floor
    open_ask = DOCUMENT_OPEN + "1, 2, 3, 4"
    assert not finished(open_ask, bounds.ask, bounds.answer)
    assert finished(open_ask + ", 5" * 30, bounds.ask, bounds.answer)  # a runaway list
    answering = asked("Count.", " ".join(str(k) for k in range(139)))
    assert not finished(answering, bounds.ask, bounds.answer)
    assert finished(answering + " 139 140", bounds.ask, bounds.answer)
    assert overrun(answering, bounds.ask, bounds.answer) is None
    assert overrun(answering + "\n### Instruction:\nmore", bounds.ask, bounds.answer) is None
    why = overrun(answering + " 139 140", bounds.ask, bounds.answer)
    assert "answer ran past 140" in why


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
