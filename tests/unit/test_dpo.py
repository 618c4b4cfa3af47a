"""Feedback tuning: votes become preference pairs, checked before launch, and a DPO run learns them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import workbench as wb
from workbench.preferences.pairs import MIN_PAIRS, as_pairs
from workbench.train import TrainingDataError

WORDS = [
    "quiet river",
    "green apple",
    "small house",
    "cold water",
    "bright star",
    "old book",
    "fast car",
    "soft bread",
    "tall tree",
    "blue sky",
    "warm coat",
    "dark night",
]


def capital_votes(session, n: int) -> None:
    """Votes on a verifiable task: the correct answer chosen, a wrong one rejected."""
    for i in range(n):
        phrase = f"{WORDS[i % len(WORDS)]} {i}"
        session.record_preference(
            f"Write this in capital letters: {phrase}",
            chosen=phrase.upper(),
            rejected=phrase.title() if i % 2 else phrase,
            chosen_model="run-1",
            rejected_model="base",
        )


def test_votes_become_pairs_skipping_ties_unless_asked(session):
    capital_votes(session, 3)
    session.record_preference("Q", "a", "b", verdict="tie")
    session.record_preference("Q", "a", "b", verdict="both_bad")
    pairs = as_pairs(session.preferences)
    assert len(pairs) == 3 and pairs.skipped == {"tie": 1, "both_bad": 1}
    assert pairs.by_pair == {"run-1 > base": 3}
    assert pairs.rows[0]["prompt"][0]["role"] == "user"
    assert pairs.rows[0]["chosen"] == [{"role": "assistant", "content": "QUIET RIVER 0"}]
    assert len(as_pairs(session.preferences, include_ties=True)) == 5


def test_too_few_pairs_are_refused_before_launch(session):
    capital_votes(session, MIN_PAIRS - 1)
    with pytest.raises(TrainingDataError, match=f"at least {MIN_PAIRS}"):
        session.train(wb.TrainConfig(method="dpo", max_steps=2))
    assert session.runs == []


def test_identical_and_overlong_pairs_are_listed(session):
    capital_votes(session, MIN_PAIRS)
    session.record_preference("Same?", "yes", "yes")
    session.record_preference("Long?", "word " * 400, "no")
    with pytest.raises(TrainingDataError) as error:
        session.train(wb.TrainConfig(method="dpo", max_steps=2, max_length=256))
    assert f"rows [{MIN_PAIRS}]" in str(error.value) and f"rows [{MIN_PAIRS + 1}]" in str(
        error.value
    )


@pytest.mark.slow
def test_votes_recorded_before_a_restart_train_dpo_after_it(tmp_path, default_model_dir):
    ws = tmp_path / "ws"
    writer = f"""
        import workbench as wb
        from tests.unit.test_dpo import capital_votes
        s = wb.Session.open({str(ws)!r})
        capital_votes(s, 24)
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(writer)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with wb.Session.open(ws) as s:  # a new process: as after a kernel restart
        assert len(s.preferences) == 24
        s.set_max_length(128)
        run = s.train(
            wb.TrainConfig(
                method="dpo",
                max_steps=8,
                batch_size=4,
                eval_steps=8,
                learning_rate=5e-4,
                keep_set="off",  # the margins are what is tested; DPO's keep drift: gpu_check
            )
        )
        status = run.wait(timeout=900)
        assert status.state == "finished", status.message + run.log_tail()
        evals = [m for m in run.metrics if "eval_rewards/margins" in m]
        assert evals[0]["step"] == 0, "the held-out margin is measured before training"
        assert evals[-1]["eval_rewards/margins"] > evals[0]["eval_rewards/margins"]
        assert evals[-1]["eval_rewards/accuracies"] > evals[0]["eval_rewards/accuracies"]
        assert (
            run.adapter_path is not None
            and (run.adapter_path / "adapter_model.safetensors").exists()
        )
        assert not (run.adapter_path / "ref").exists()


def test_a_preference_file_merges_with_the_votes(session, tmp_path):
    import json

    path = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"Capitalise {w}", "chosen": w.upper(), "rejected": w} for w in WORDS[:5]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = session.load_dataset(path)
    assert loaded.load_report.format == "preference"
    capital_votes(session, 3)
    pairs = as_pairs(list(session.preferences) + loaded.rows(range(len(loaded))))
    assert len(pairs) == 8
    assert pairs.rows[-1]["chosen"] == [{"role": "assistant", "content": WORDS[4].upper()}]
    assert pairs.rows[-1]["rejected"][0]["content"] == WORDS[4]
    assert pairs.rows[-1]["prompt"][-1]["content"] == f"Capitalise {WORDS[4]}"
