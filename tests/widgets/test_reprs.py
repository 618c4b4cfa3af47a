"""What a notebook shows for the core's results: a readable, escaped HTML view and a short
text repr, instead of a dataclass dump."""

from __future__ import annotations

import json

from workbench.answers.compare import Comparison
from workbench.answers.evaluate import Evaluation, RowResult
from workbench.data.excerpt import TABLE_ROWS
from workbench.train import RunStatus, TrainConfig
from workbench.train.run_view import run_html

ATTACK = "<img src=x onerror=alert(1)>"


def test_the_quality_report_lists_each_problem_with_its_rows(session):
    rows = [
        {"messages": [{"role": "user", "content": ATTACK}, {"role": "assistant", "content": "x"}]}
    ] * 3
    rows.append(
        {"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "y"}]}
    )
    report = session.load_dataset(rows).quality(lengths=False)
    shown = report._repr_html_()
    assert "<b>Exact duplicates</b>: 2 rows." in shown and "row 1: same as row 0" in shown
    assert "<b>Empty or whitespace-only turns</b>: 1 row." in shown and "<li>row 3</li>" in shown
    assert "<img" not in shown
    text = repr(report)
    assert (
        text
        == "QualityReport(4 rows checked; Exact duplicates: 2; Empty or whitespace-only turns: 1)"
    )


def test_a_report_with_many_rows_shows_the_first_and_counts_the_rest(session):
    rows = [
        {"messages": [{"role": "user", "content": "same"}, {"role": "assistant", "content": "x"}]}
    ]
    shown = session.load_dataset(rows * 40).quality(lengths=False)._repr_html_()
    assert shown.count("same as row 0") == 10 and "… and 29 more" in shown
    assert len(repr(session.dataset.quality(lengths=False))) < 120


def test_stats_show_a_table_of_lengths_and_a_one_line_repr(session, chat_rows):
    stats = session.load_dataset(chat_rows).stats()
    shown = stats._repr_html_()
    assert "<th>total tokens</th>" in shown and "<th>median</th>" in shown
    assert "3 rows that train" in shown and "Turns by role: system 1, user 3, assistant 3" in shown
    assert repr(stats).startswith("DatasetStats(3 rows, total tokens median ") and "\n" not in repr(
        stats
    )


def comparison(n: int) -> Comparison:
    return Comparison(
        prompts=[[{"role": "user", "content": f"{ATTACK} {k}"}] for k in range(n)],
        answers={"base": ["a"] * n, "run-1": ["<script>b</script>"] * n},
        contestants={},
        settings={},
        references=["a"] * n,
        scores={"base": [1.0] * n, "run-1": [0.0] * n},
        scorer="exact_match",
    )


def test_a_comparison_shows_its_scores_and_at_most_a_page_of_answers():
    shown = comparison(TABLE_ROWS + 5)._repr_html_()
    assert "Scores (exact_match): base 100.0%, run-1 0.0%." in shown
    assert f"The first {TABLE_ROWS} are shown" in shown
    assert shown.count("<tr>") == TABLE_ROWS + 1  # a header and a page of prompts
    assert "<script>" not in shown and "<img" not in shown
    assert (
        repr(comparison(3))
        == "Comparison(3 prompts × base, run-1; exact_match: base 100%, run-1 0%)"
    )


def test_an_evaluation_shows_a_line_per_contestant():
    result = RowResult(
        row=0, prompt=[{"role": "user", "content": "q"}], reference="a", answer="a", score=1.0
    )
    evaluation = Evaluation(
        scorer="exact_match",
        settings={},
        contestants={"<b>base</b>": {"template_sha": "t1"}},
        results={"<b>base</b>": [result]},
        skipped=[4],
    )
    shown = evaluation._repr_html_()
    assert "&lt;b&gt;base&lt;/b&gt;" in shown and "<b>base</b>" not in shown
    assert "1 row skipped" in shown and "100.0%" in shown
    assert repr(evaluation) == "Evaluation(exact_match on 1 row: <b>base</b> 100%)"


def test_a_run_shows_its_state_losses_and_what_went_wrong(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    run = session.prepare(TrainConfig(method="lora", max_steps=9, batch_size=2))
    with open(run.folder.metrics_file, "w") as f:
        for record in ({"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.25, "eval_loss": 2.4}):
            f.write(json.dumps(record) + "\n")
    run.folder.write_status(
        RunStatus(
            "failed", step=2, max_steps=9, message=f"Out of memory {ATTACK}: lower batch_size"
        )
    )
    shown = run_html(run)
    assert (
        f"<b>{run.name}</b>: failed · step 2/9 · method lora · loss 2.25 · eval loss 2.4" in shown
    )
    assert "lower batch_size" in shown and "<img" not in shown and "&lt;img" in shown
