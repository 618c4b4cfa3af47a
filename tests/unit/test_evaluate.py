"""Held-out scoring: built-in and custom scorers, per-row results, one table, cached answers."""

from __future__ import annotations

import threading

import pytest

from workbench.answers.compare import ComparisonStopped
from workbench.answers.evaluate import contains, exact_match, normalise, split_turns

from .test_generate import add_adapter_run


def row(prompt, answer, **extra):
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"messages": messages, **extra}


ROWS = [row(f"Say {w}", w.upper(), word=w) for w in ("apple", "pear", "plum", "fig")]


def answer_even_rows_right(generator, monkeypatch) -> list:
    """Replace generation: right answers to even rows, wrong ones otherwise; returns the calls."""
    calls = []
    right = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in ROWS}
    order = [r["messages"][0]["content"] for r in ROWS]

    def fake(prompts, name, settings, on_text=None, stop=None):
        calls.append((name, len(prompts)))
        texts = [p[-1]["content"] for p in prompts]
        return [right[t] if order.index(t) % 2 == 0 else "no idea" for t in texts]

    monkeypatch.setattr(generator, "generate_batch", fake)
    return calls


def test_exact_match_normalises_spacing_quotes_and_final_period_but_not_case():
    assert normalise('  "Hello   world."  ') == "Hello world"
    assert exact_match(row("q", "APPLE PIE"), " APPLE  PIE. ")
    assert not exact_match(row("q", "APPLE PIE"), "apple pie")
    assert contains(row("q", "42"), "The answer is 42.")
    assert not contains(row("q", "42"), "The answer is 41.")


def test_the_reference_is_the_last_assistant_turn():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    prompt, reference = split_turns({"messages": messages})
    assert reference == "d" and prompt == messages[:3]


def test_base_and_adapters_land_in_one_table_with_per_row_results(session, monkeypatch):
    add_adapter_run(session)
    session.load_contestant("run-1")
    answer_even_rows_right(session.generator, monkeypatch)
    result = session.evaluate(["base", "run-1"], dataset=ROWS)
    assert result.scores == {"base": 0.5, "run-1": 0.5}
    assert [r.score for r in result.results["base"]] == [1.0, 0.0, 1.0, 0.0]
    assert result.results["base"][1].answer == "no idea"
    assert result.results["base"][1].reference == "PEAR"
    table = {line["model"]: line for line in result.table()}
    assert table["run-1"]["adapter_sha256"] and table["base"]["adapter_sha256"] is None
    assert "run-1" in result._repr_html_()


def test_a_python_scorer_gets_the_row_and_the_answer(session, monkeypatch):
    answer_even_rows_right(session.generator, monkeypatch)

    def says_the_word(r, answer):
        return r["word"] in answer.lower()

    result = session.evaluate("base", dataset=ROWS, scorer=says_the_word)
    assert result.score == 0.5
    assert "says_the_word" in result.scorer


def test_answers_are_cached_in_the_workspace(session, monkeypatch):
    calls = answer_even_rows_right(session.generator, monkeypatch)
    first = session.evaluate("base", dataset=ROWS, max_new_tokens=8)
    assert sum(n for _, n in calls) == 4
    again = session.evaluate("base", dataset=ROWS, scorer="contains", max_new_tokens=8)
    assert sum(n for _, n in calls) == 4  # nothing generated the second time
    assert [r.answer for r in again.results["base"]] == [r.answer for r in first.results["base"]]
    session.evaluate("base", dataset=ROWS, max_new_tokens=9)  # other settings: new answers
    assert sum(n for _, n in calls) == 8


def test_the_default_dataset_is_the_eval_split(session, monkeypatch):
    session.load_dataset(ROWS * 5)
    with pytest.raises(ValueError, match="split"):
        session.evaluate("base")
    _, eval_rows = session.split(eval_fraction=0.2, seed=0)
    answer_even_rows_right(session.generator, monkeypatch)
    result = session.evaluate("base")
    assert [r.row for r in result.results["base"]] == eval_rows


def test_rows_without_an_answer_are_skipped_and_unknown_scorers_refused(session, monkeypatch):
    answer_even_rows_right(session.generator, monkeypatch)
    rows = [*ROWS, {"messages": [{"role": "user", "content": "no answer here"}]}]
    result = session.evaluate("base", dataset=rows)
    assert result.skipped == [4] and len(result.results["base"]) == 4
    with pytest.raises(ValueError, match="exact_match"):
        session.evaluate("base", dataset=ROWS, scorer="bleu")


def test_evaluate_reports_progress_and_a_stop_keeps_the_finished_answers(session, monkeypatch):
    add_adapter_run(session)
    session.load_contestant("run-1")
    calls = answer_even_rows_right(session.generator, monkeypatch)
    stop, seen = threading.Event(), []

    def report(done, total):
        seen.append((done, total))
        if done == 4:
            stop.set()  # stop once base has answered, before run-1 starts

    with pytest.raises(ComparisonStopped, match="Stopped after 4 of 8 answers"):
        session.evaluate(["base", "run-1"], dataset=ROWS, progress=report, stop=stop)
    assert seen == [(0, 8), (4, 8)] and calls == [("base", 4)]
    seen.clear()
    result = session.evaluate(["base", "run-1"], dataset=ROWS, progress=report)
    assert seen == [(4, 8), (4, 8), (8, 8)]  # base's answers were cached, and count
    assert calls == [("base", 4), ("run-1", 4)]
    assert result.scores == {"base": 0.5, "run-1": 0.5}
