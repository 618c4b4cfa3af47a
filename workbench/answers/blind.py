"""The rules of a side-by-side vote: the blind order of the panes and when a vote may be taken.

A blind comparison shows the contestants in a random order so that a person cannot favour a
name; a vote is taken once per answered turn, on two different panes, never while answers are
still being written. The chat comparator follows these rules; a script can too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def blind_order(contestants: Sequence[str], rng: random.Random | None = None) -> list[str]:
    """The contestants in a random order, one per pane (a fresh order each call).

    `rng` makes the order reproducible (tests, scripted studies); by default the system's.
    """
    order = list(contestants)
    (rng or random.SystemRandom()).shuffle(order)
    return order


def vote_refusal(
    turns: int, answering: bool, voted: bool, pair: tuple[int, int] | None = None
) -> str | None:
    """Why a vote cannot be taken now, as one sentence for a person; None when it can.

    `turns`: answered turns of the conversation (0 before the first question); `voted`: the last
    answers already have their vote; `pair`: the two panes voted on (indexes), when chosen.
    """
    if answering:
        return "Wait for the answers to finish, then vote."
    if turns == 0:
        return "Ask a question first: there is nothing to vote on yet."
    if voted:
        return "These answers have their vote; ask the next question to vote again."
    if pair is not None and pair[0] == pair[1]:
        return "Choose two different panes to vote on."
    return None
