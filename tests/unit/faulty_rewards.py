"""Reward functions for tests, imported by name in the runner process ("tests.unit.faulty_rewards:...").

One that works, and one for each way a reward function can break a GRPO run.
"""

from __future__ import annotations


def short_answer(prompts, completions, **columns):
    """Works: 1 for an answer under 20 characters; checks that the columns arrive."""
    assert len(columns["reference"]) == len(completions)
    return [1.0 if len(c) < 20 else 0.0 for c in completions]


def nan_reward(prompts, completions, **columns):
    """Returns NaN for the second completion."""
    return [float("nan") if i == 1 else 0.0 for i in range(len(completions))]


def raising_reward(prompts, completions, **columns):
    """Raises on the first call."""
    raise ValueError("this reward is broken on purpose")


def one_value_reward(prompts, completions, **columns):
    """Returns one value for the whole batch instead of one per completion."""
    return [0.5]
