"""The default model and a LoRA adapter trained in the test session, compared and evaluated."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench import demo_data
from workbench.answers.evaluate import split_turns

from .test_generate import count_loads

pytestmark = pytest.mark.slow

PROMPT = "Write this in capital letters: quiet river stone"


def test_base_and_adapter_differ_and_share_one_base_model(trained_run, monkeypatch):
    session, run = trained_run
    with wb.Session.open(session.path, read_only=True) as viewer:
        loads = count_loads(monkeypatch)
        seeded = {"max_new_tokens": 16, "temperature": 0.7, "seed": 3}
        base = viewer.generate(PROMPT, **seeded)
        tuned = viewer.generate(PROMPT, model=run.name, **seeded)
        assert tuned != base
        assert viewer.generate(PROMPT, model=run.name, **seeded) == tuned  # the seed reproduces
        assert viewer.generate(PROMPT, **seeded) == base
        assert len(loads) == 1  # no second copy of the model for the adapter
        generator = viewer.generator
        assert generator._hosts["base"].peft.get_base_model() is generator.model


def test_the_adapter_trained_on_change_case_scores_higher_than_base(trained_run):
    session, run = trained_run
    ds = session.dataset
    trained = {split_turns(r)[0][-1]["content"] for r in ds.rows(range(len(ds)))}
    fresh = demo_data.generate(60, seed=11, tasks=["change_case"], handwritten=False)
    held_out = [r for r in fresh if split_turns(r)[0][-1]["content"] not in trained][:12]
    assert len(held_out) == 12
    verified = session.evaluate(
        ["base", run.name], dataset=held_out, scorer=demo_data.verify, max_new_tokens=24
    )
    assert verified.scores[run.name] > verified.scores["base"]
    exact = session.evaluate(["base", run.name], dataset=held_out, max_new_tokens=24)
    assert exact.scores[run.name] > exact.scores["base"]
    table = session.compare([r["messages"][:-1] for r in held_out[:3]], max_new_tokens=24)
    assert table.models == ["base", run.name]
    assert table.answers[run.name] == [r.answer for r in exact.results[run.name][:3]]
