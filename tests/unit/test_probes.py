"""Probe answers during training: what a run answers at each evaluation, beside its curve."""

from __future__ import annotations

import pytest

from workbench.train import TrainConfig
from workbench.train.config import ConfigError


def _run_with_probes(session, chat_rows, **config):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    session.split(eval_fraction=0.25, seed=0)
    settings = dict(method="lora", batch_size=2, max_steps=4, eval_steps=2, save_steps=2)
    return session.train(TrainConfig(**{**settings, **config}))


def test_probes_are_answered_at_each_evaluation_and_kept(session, chat_rows):
    run = _run_with_probes(session, chat_rows, probes=2, probe_max_new_tokens=8)
    status = run.wait(timeout=240)
    assert status.state == "finished", status.message + status.traceback_tail
    history = run.probe_history()
    assert [h["step"] for h in history] == [4, 2]  # newest first, one entry an evaluation
    for entry in history:
        assert [a["probe"] for a in entry["answers"]] == [0, 1]
        assert all(a["reference"] for a in entry["answers"])  # eval rows carry their answers
        assert entry["score"] == sum(a["correct"] for a in entry["answers"]) / 2
    assert all(not a["changed"] for a in history[-1]["answers"])  # nothing before the first
    newest, before = history
    for a, b in zip(newest["answers"], before["answers"]):
        assert a["changed"] == (a["answer"] != b["answer"])
    scores = [m for m in run.metrics if "probe_score" in m]
    assert [m["step"] for m in scores] == [2, 4]  # the curve the launcher draws


def test_given_prompts_are_probes_without_a_reference(session, chat_rows):
    run = _run_with_probes(
        session, chat_rows, max_steps=2, probes=["Say hi", [{"role": "user", "content": "2+2?"}]]
    )
    assert run.wait(timeout=240).state == "finished"
    (entry,) = run.probe_history()
    assert [a["reference"] for a in entry["answers"]] == [None, None]
    assert entry["score"] is None and not [m for m in run.metrics if "probe_score" in m]


def test_a_probe_longer_than_the_training_length_is_refused_before_launch(session, chat_rows):
    with pytest.raises(ConfigError, match=r"probe 1 is \d+ tokens, longer than max_length"):
        _run_with_probes(session, chat_rows, probes=["short", "long " * 200])
    assert not session.runs


@pytest.mark.parametrize(
    "probes",
    ["What is 2+2?", [3], [[{"text": "no role"}]], -1, True],
    ids=["a bare string", "a number in the list", "not messages", "negative", "a bool"],
)
def test_probes_of_the_wrong_kind_are_refused(probes):
    with pytest.raises(ConfigError, match="probes must be"):
        TrainConfig(probes=probes)


def test_keep_best_without_an_eval_split_is_refused_with_the_fix(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    for asked in (dict(keep_best=True), dict(early_stopping_patience=2)):
        with pytest.raises(ConfigError, match=r"no eval split. Make one \(session.split"):
            session.train(TrainConfig(method="lora", max_steps=2, **asked))
    assert not session.runs


def test_a_tracker_that_is_not_installed_is_refused_before_launch(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    with pytest.raises(ConfigError, match="pip install wandb"):
        session.train(TrainConfig(method="lora", max_steps=2, report_to=["wandb"]))
    assert not session.runs
