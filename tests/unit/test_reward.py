"""Reward models (method "reward"): trained on the votes, scoring answers, kept out of generation,
measured on votes they never trained on, and refused on another base model."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from tests.unit.test_dpo import capital_votes
from workbench.preferences.pairs import MIN_PAIRS
from workbench.train import TrainingDataError
from workbench.train.reward_model import (
    REWARD_FILE,
    RewardModelError,
    RewardRecord,
    write_random_reward_model,
)


def reward_config(**more) -> wb.TrainConfig:
    """A reward run small enough for the tiny model to finish in seconds."""
    values = {"method": "reward", "max_steps": 16, "batch_size": 4, "learning_rate": 5e-3}
    return wb.TrainConfig(**{**values, **more})


def test_too_few_pairs_are_refused_before_launch(session):
    capital_votes(session, MIN_PAIRS - 1)
    with pytest.raises(TrainingDataError, match=f"A reward model needs at least {MIN_PAIRS}"):
        session.train(reward_config())
    assert session.runs == []


def test_pairs_with_identical_answers_are_listed(session):
    capital_votes(session, MIN_PAIRS)
    session.record_preference("Same?", "yes", "yes")
    with pytest.raises(TrainingDataError, match=rf"rows \[{MIN_PAIRS}\]"):
        session.train(reward_config())


def test_a_reward_model_needs_no_base_adapter():
    with pytest.raises(wb.train.ConfigError, match="base_adapter"):
        reward_config(base_adapter="run-1")


def test_a_reward_model_of_another_base_is_refused_naming_both(session, tmp_path):
    folder = write_random_reward_model(tmp_path / "rm", session.model, session.template)
    scores = session.score("Capitalise: cold water", ["COLD WATER", "cold water"], folder)
    assert len(scores) == 2 and scores[0] != scores[1]
    other = wb.models.ModelSpec("some-org/another-model")
    (folder / "base_model.json").write_text(json.dumps(other.to_json()))
    with pytest.raises(RewardModelError) as refused:
        session.score("Capitalise: cold water", ["COLD WATER"], folder)
    assert "another-model" in str(refused.value)
    assert session.model.display_name in str(refused.value)
    with pytest.raises(RewardModelError, match="not a reward model"):
        session.score("Hi", ["Hello"], tmp_path)


def test_a_reward_run_scores_chosen_above_rejected_and_writes_no_answers(session):
    capital_votes(session, 24)
    session.set_max_length(64)
    run = session.train(reward_config(eval_steps=8))
    status = run.wait(timeout=300)
    assert status.state == "finished", status.message + run.log_tail()
    evals = [m for m in run.metrics if "eval_accuracy" in m]
    assert evals[0]["step"] == 0 and len(evals) >= 3  # measured before, during and after
    assert {"accuracy", "margin"} <= set(next(m for m in run.metrics if "loss" in m))
    record = RewardRecord.from_json(json.loads((run.adapter_path / REWARD_FILE).read_text()))
    assert len(record.trained_pairs) + len(record.held_out_pairs) == 24
    assert record.held_out_accuracy == evals[-1]["eval_accuracy"]
    # a reward model scores answers; it is not a contestant
    assert session.reward_models == {run.name: run.adapter_path}
    assert run.name not in session.adapters and run.name not in session.contestants
    with pytest.raises(ValueError, match="reward model"):
        session.generate("Hi", model=run.name)
    ranked = [
        session.score(
            v["prompt"], [v["chosen"][0]["content"], v["rejected"][0]["content"]], run.name
        )
        for v in session.preferences.pairs().rows
    ]
    assert sum(chosen > rejected for chosen, rejected in ranked) >= 20  # learnt, on the tiny model
    # agreement is measured on the held-out pairs and on votes recorded after the run
    session.record_preference("Write this in capital letters: fresh bread", "FRESH BREAD", "bread")
    agreement = session.reward_agreement(run.name)
    assert agreement.total == len(record.held_out_pairs) + 1
    assert agreement.held_out_accuracy == record.held_out_accuracy


@pytest.mark.slow
def test_the_embedded_reward_model_ranks_correct_answers_above_wrong_ones(
    default_model_dir, tmp_path
):
    """Demo tasks: the chosen answer is right, the rejected one another row's answer or a
    non-answer. The untrained head already ranks ~80% of held-out pairs right (a non-answer is
    easy to tell), so training must lift that to 90% or more and widen the margin."""
    from benchmarks.reward_grpo import correct_wrong_pairs
    from workbench import demo_data

    tasks = ["change_case", "reverse_list", "acronym"]  # answers checkable against the prompt
    rows = demo_data.generate(240, seed=5, tasks=tasks, handwritten=False)
    with wb.Session.open(tmp_path / "ws") as s:
        s.set_max_length(256)  # a few demo pairs run past 128 tokens
        run = s.train(
            wb.TrainConfig(method="reward", max_steps=20, eval_steps=20),
            preferences=correct_wrong_pairs(rows, seed=0),
        )
        status = run.wait(timeout=1800)
        assert status.state == "finished", status.message + run.log_tail()
        evals = [m for m in run.metrics if "eval_accuracy" in m]
        before, after = evals[0], evals[-1]  # step 0 and the last step
        record = json.loads((run.adapter_path / REWARD_FILE).read_text())
        assert record["held_out_accuracy"] == after["eval_accuracy"] >= 0.9, (before, after)
        assert before["step"] == 0 and after["eval_accuracy"] > before["eval_accuracy"]
        assert after["eval_margin"] > before["eval_margin"] + 1.0
        assert len(record["held_out_pairs"]) >= 40
