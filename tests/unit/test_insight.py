"""What a run's record says: the overfitting alarm, the best evaluation kept, the run diff."""

from __future__ import annotations

import json

import pytest

from workbench import demo_data
from workbench.train import TrainConfig
from workbench.train.insight import overfitting_warning


def _metrics(evals, train):
    """Metrics records: eval losses at steps 2, 4, ...; train losses at steps 1, 2, ..."""
    records = [{"step": i + 1, "loss": v} for i, v in enumerate(train)]
    return records + [{"step": 2 * (i + 1), "eval_loss": v} for i, v in enumerate(evals)]


@pytest.mark.parametrize(
    "evals, train, warned",
    [
        ([2.0, 1.8, 1.9, 2.1], [2.2, 2.0, 1.9, 1.8, 1.6, 1.5, 1.3, 1.2], True),
        ([2.0, 1.8, 1.9, 2.1], [2.2, 2.0, 1.9, 1.8, 1.9, 2.0, 2.2, 2.4], False),
        ([2.0, 1.8, 1.7, 1.6], [2.2, 2.0, 1.9, 1.8, 1.6, 1.5, 1.3, 1.2], False),
        ([2.0, 1.8, 1.9, 1.85], [2.2, 2.0, 1.9, 1.8, 1.6, 1.5, 1.3, 1.2], False),
        ([2.0, 2.1], [2.2, 2.0, 1.9, 1.8], False),
    ],
    ids=["eval rises, train falls", "both rise", "eval falls", "rose once", "too few evals"],
)
def test_the_overfitting_alarm_needs_a_rising_eval_and_a_falling_train_loss(evals, train, warned):
    message = overfitting_warning(_metrics(evals, train), patience=2)
    assert bool(message) == warned
    if warned:
        assert "lowest eval loss was 1.800 at step 4" in message and "keep_best=True" in message


def test_early_stopping_stops_and_keep_best_keeps_the_best_evaluations_adapter(session):
    from safetensors.torch import load_file

    session.load_dataset(demo_data.generate(24, seed=1))
    session.set_max_length(128)
    session.split(eval_fraction=0.34, seed=0)
    config = TrainConfig(
        method="lora",
        batch_size=4,
        max_steps=40,
        eval_steps=2,
        probes=0,
        learning_rate=0.01,
        lora_dropout=0.0,
        early_stopping_patience=2,
        keep_best=True,
        keep_set="off",  # best by eval loss alone (test_keep covers the drift limit's part)
    )
    run = session.train(config)
    status = run.wait(timeout=300)
    assert status.state == "finished", status.message + status.traceback_tail
    evals = [(m["step"], m["eval_loss"]) for m in run.metrics if "eval_loss" in m]
    best_step = min(evals, key=lambda e: e[1])[0]
    assert evals[-1][0] < 40 and evals[-1][0] == best_step + 2 * 2  # two evaluations past it
    assert status.message.startswith(f"Stopped early at step {evals[-1][0]}")
    assert status.progress.adapter_step == status.progress.best_step == best_step
    record = json.loads((run.adapter_path / "adapter_step.json").read_text())
    assert record["step"] == best_step and record["last_step"] == evals[-1][0]
    kept = load_file(run.adapter_path / "adapter_model.safetensors")
    best = load_file(
        run.folder.checkpoints_dir / f"checkpoint-{best_step}" / "adapter_model.safetensors"
    )  # noqa: E501
    assert kept.keys() == best.keys() and all((kept[k] == best[k]).all() for k in kept)


def test_the_run_diff_lists_exactly_the_settings_that_differ(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    base = dict(method="lora", batch_size=2, max_steps=2, probes=0)
    first = session.train(TrainConfig(**base))
    first.wait(timeout=240)
    second = session.train(TrainConfig(**base, lora_r=4, learning_rate=3e-4))
    assert second.wait(timeout=240).state == "finished"
    comparison = session.compare_runs([first.name, second.name])
    assert set(comparison.differing) == {"lora_r", "learning_rate"}
    assert comparison.differing["lora_r"] == [16, 4]
    for summary in comparison.summaries:
        assert summary["steps"] == 2 and summary["train_loss"] > 0 and summary["wall_s"] > 0
        assert summary["eval_loss"] is None  # no split: "-" in the table
    html = comparison._repr_html_()
    assert "<td>lora_r</td><td>16</td><td>4</td>" in html and "<td>eval_loss</td><td>-</td>" in html
    with pytest.raises(ValueError, match="two or more"):
        session.compare_runs([first.name])
