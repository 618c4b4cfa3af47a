"""The launcher's insight views: probe answers by evaluation, and runs side by side."""

from __future__ import annotations

import pytest

import workbench as wb
from widgets.train.run_insight import ProbeTable, RunDiff, probe_table_html
from workbench.persist import append_jsonl
from workbench.train import TrainConfig


def test_probe_answers_show_by_evaluation_also_after_a_restart(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    session.split(eval_fraction=0.25, seed=0)
    run = session.train(
        TrainConfig(
            method="lora", batch_size=2, max_steps=4, eval_steps=2, probes=2, probe_max_new_tokens=6
        )
    )
    assert run.wait(timeout=240).state == "finished"
    table = ProbeTable()
    table.show(run)
    shown = table.table.value
    assert shown.index("Step 4") < shown.index("Step 2")  # newest first
    assert shown.count("#0") == 2 and shown.count("#1") == 2
    with wb.Session.open(session.path, read_only=True) as fresh:  # as after a kernel restart
        again = ProbeTable()
        again.show(fresh.run(run.name))
        assert again.table.value == shown
    diff = RunDiff(session)
    diff.show([run.name])
    assert "Select two or more runs" in diff.table.value


def test_a_changed_answer_is_marked_and_every_answer_is_escaped():
    history = [
        {
            "step": 4,
            "score": 0.5,
            "answers": [
                {"probe": 0, "answer": "<script>x</script>", "correct": False, "changed": True},
                {"probe": 1, "answer": "5", "correct": True, "changed": False},
            ],
        },
    ]
    shown = probe_table_html(history)
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "exact match 50%" in shown and "wrong changed" in shown and "<td>right</td>" in shown


def _two_finished_runs(session, chat_rows) -> list:
    """Two one-step runs that differ in lora_r only (8, then 4)."""
    session.load_dataset(chat_rows * 8)
    runs = [
        session.train(TrainConfig(method="lora", max_steps=1, lora_r=r, probes=0)) for r in (8, 4)
    ]
    for run in runs:
        assert run.wait(timeout=240).state == "finished"
    return runs


def test_the_run_diff_shows_only_the_settings_that_differ(session, chat_rows):
    runs = _two_finished_runs(session, chat_rows)
    append_jsonl(runs[0].folder.metrics_file, {"step": 1, "probe_score": 0.25})
    diff = RunDiff(session)
    diff.show([r.name for r in runs])
    shown = diff.table.value
    assert "1 setting differs" in shown and "<td>lora_r</td><td>8</td><td>4</td>" in shown
    assert "<td>probe_score</td><td>0.25</td><td>-</td>" in shown


def test_the_launcher_raises_the_overfitting_alarm_and_compares_selected_runs(session, chat_rows):
    from widgets.train.training import TrainingLauncher

    runs = _two_finished_runs(session, chat_rows)
    for step, (train, evaluated) in enumerate([(2.0, 1.9), (1.6, 1.8), (1.2, 2.0), (0.9, 2.3)]):
        append_jsonl(runs[1].folder.metrics_file, {"step": 10 + step, "loss": train})
        append_jsonl(runs[1].folder.metrics_file, {"step": 10 + step, "eval_loss": evaluated})
    launcher = TrainingLauncher(session)
    launcher.runs_table.value = (runs[1].name,)
    assert (
        "Overfitting" in launcher.alarms.overfitting.text
        and "at step 11" in launcher.alarms.overfitting.text
    )
    launcher.runs_table.value = (runs[0].name, runs[1].name)
    assert "<td>lora_r</td><td>8</td><td>4</td>" in launcher.diff.table.value
    assert launcher.insight.selected_index == 1  # the comparison opens by itself
    assert not launcher.alarms.overfitting.text  # run-1 is followed now: its record is clean


def test_the_launcher_draws_keep_drift_on_its_own_axis_and_raises_the_forgetting_alarm(
    session, chat_rows
):
    from widgets.train.live_plot import svg_chart
    from widgets.train.training import TrainingLauncher

    run = _two_finished_runs(session, chat_rows)[0]
    for step in range(2, 12, 2):
        append_jsonl(run.folder.metrics_file, {"step": step, "loss": 3.0 - 0.2 * step})
        append_jsonl(run.folder.metrics_file, {"step": step, "keep_drift": 0.07 * step})
    launcher = TrainingLauncher(session)
    launcher.runs_table.value = (run.name,)
    assert (
        "Forgetting" in launcher.alarms.forgetting.text
        and "0.70 nats" in launcher.alarms.forgetting.text
    )
    drift = next(t for t in launcher.plot.figure.data if t.name == "keep drift")
    assert drift.visible and drift.yaxis == "y5" and drift.y[-1] == pytest.approx(0.7)
    assert launcher.plot.figure.layout.yaxis5.visible
    svg = svg_chart(launcher.plot.curves, run.name)
    assert "keep drift (dashed) 0–0.7 nats/token" in svg
