"""The rules of a side-by-side vote: a blind order that hides who is where, one vote per answer."""

from __future__ import annotations

import random
from collections import Counter

from workbench.answers.blind import blind_order, vote_refusal


def test_the_blind_order_is_a_fresh_permutation_each_time():
    names = ["base", "run-1", "run-2"]
    orders = [tuple(blind_order(names)) for _ in range(300)]
    assert all(sorted(o) == sorted(names) for o in orders)
    firsts = Counter(o[0] for o in orders)
    assert set(firsts) == set(names) and min(firsts.values()) > 50  # no name keeps pane A
    assert names == ["base", "run-1", "run-2"]  # the caller's list is left alone


def test_a_seeded_order_is_reproducible():
    names = ["base", "run-1", "run-2", "run-3"]
    assert blind_order(names, random.Random(7)) == blind_order(names, random.Random(7))


def test_a_vote_waits_for_the_answers_and_is_taken_once():
    assert vote_refusal(turns=0, answering=False, voted=False) == (
        "Ask a question first: there is nothing to vote on yet."
    )
    assert "Wait for the answers" in vote_refusal(turns=1, answering=True, voted=False)
    assert "have their vote" in vote_refusal(turns=1, answering=False, voted=True)
    assert vote_refusal(turns=1, answering=False, voted=False) is None
    assert vote_refusal(turns=2, answering=False, voted=False, pair=(0, 2)) is None


def test_a_vote_needs_two_different_panes():
    refusal = vote_refusal(turns=1, answering=False, voted=False, pair=(1, 1))
    assert refusal == "Choose two different panes to vote on."
