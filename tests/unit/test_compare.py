"""Batch comparisons: every contestant answers every prompt; JSONL, CSV and HTML exports."""

from __future__ import annotations

import csv
import re
import threading

import pytest

from workbench.answers.compare import Comparison, ComparisonStopped

from .test_generate import add_adapter_run

EVIL = "<script>alert(1)</script> <img src=x onerror=alert(2)>"


def small_comparison() -> Comparison:
    return Comparison(
        prompts=[[{"role": "user", "content": "Say hi"}], [{"role": "user", "content": EVIL}]],
        answers={"base": ["hi", EVIL], "run-1": ["Hello,\nworld", "ok"]},
        contestants={
            "base": {"base_model": "m", "adapter_sha256": None, "template_sha": "t1"},
            "run-1": {"base_model": "m", "adapter_sha256": "abc123", "template_sha": "t2"},
        },
        settings={"max_new_tokens": 7, "temperature": 0.0},
        references=["hi", "x"],
        scores={"base": [1.0, 0.0], "run-1": [0.0, 0.0]},
        scorer="exact_match",
    )


def test_every_contestant_answers_every_prompt_as_generate_would(session):
    add_adapter_run(session)
    prompts = ["Hi", [{"role": "user", "content": "Name a colour."}]]
    table = session.compare(prompts, models=["base", "run-1"], max_new_tokens=5)
    assert table.models == ["base", "run-1"] and len(table) == 2
    for name in table.models:
        assert table.answers[name] == session.generate(prompts, model=name, max_new_tokens=5)
    assert table.settings["max_new_tokens"] == 5
    assert table.contestants["run-1"]["adapter_sha256"]


PROMPTS = ["Hi", "Name a colour.", "Count to three."]


def test_progress_counts_every_answer_up_to_prompts_times_contestants(session):
    add_adapter_run(session)
    seen = []
    session.compare(PROMPTS, models=["base", "run-1"], max_new_tokens=3, progress=_record(seen))
    assert seen[-1] == (6, 6) and {total for _, total in seen} == {6}
    done = [d for d, _ in seen]
    assert done == sorted(done) and 3 in done  # one step per contestant's batch
    seen.clear()
    session.compare(PROMPTS, models=["base", "run-1"], max_new_tokens=3, progress=_record(seen))
    assert seen == [(3, 6), (6, 6)]  # cache hits count as answers done


def test_stop_ends_the_batch_in_flight_and_a_rerun_keeps_the_finished_answers(session, monkeypatch):
    add_adapter_run(session)
    stop, calls = threading.Event(), []
    real = session.generator.generate_batch

    def stop_during_the_second_batch(prompts, name, settings, on_text=None, stop=None):
        calls.append((name, stop))
        if len(calls) == 2:
            stop.set()  # as a click on Stop while run-1 generates
        return real(prompts, name, settings, on_text, stop)

    monkeypatch.setattr(session.generator, "generate_batch", stop_during_the_second_batch)
    with pytest.raises(ComparisonStopped, match="Stopped after 3 of 6 answers") as stopped:
        session.compare(PROMPTS, models=["base", "run-1"], max_new_tokens=5, stop=stop)
    assert (stopped.value.done, stopped.value.total) == (3, 6)
    assert all(event is stop for _, event in calls)  # generation itself hears the stop
    calls.clear()
    table = session.compare(PROMPTS, models=["base", "run-1"], max_new_tokens=5)
    assert [name for name, _ in calls] == ["run-1"]  # base's answers came from the cache
    monkeypatch.undo()
    for name in ("base", "run-1"):  # whole answers, never the ones cut short
        assert table.answers[name] == session.generate(PROMPTS, model=name, max_new_tokens=5)


def _record(seen: list):
    return lambda done, total: seen.append((done, total))


def test_the_eval_split_is_compared_with_references_and_scores(session):
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(10)
    ]
    session.load_dataset(rows)
    session.split(eval_fraction=0.3, seed=0)
    table = session.compare(max_new_tokens=3)
    assert table.references and all(r.startswith("a") for r in table.references)
    assert table.scorer == "exact_match" and set(table.summary) == {"base"}


def test_jsonl_export_reads_back_whole(tmp_path):
    table = small_comparison()
    back = Comparison.from_jsonl(table.export(tmp_path / "c.jsonl"))
    assert back.to_json() == table.to_json()


def test_csv_export_has_a_column_per_contestant(tmp_path):
    path = small_comparison().export(tmp_path / "c.csv")
    with open(path, newline="", encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == [
        "index",
        "prompt",
        "reference",
        "base",
        "base score",
        "run-1",
        "run-1 score",
    ]
    assert lines[0]["run-1"] == "Hello,\nworld"
    assert lines[1]["base"] == EVIL


def test_html_report_is_self_contained_escaped_and_shows_settings_and_hashes(tmp_path):
    text = small_comparison().export(tmp_path / "c.html").read_text()
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", text)  # nothing fetched from outside
    assert "max_new_tokens" in text and "abc123" in text and "t2" in text
    assert "50.0%" in text  # base's score


def test_an_unknown_export_format_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match=".jsonl, .csv, .html"):
        small_comparison().export(tmp_path / "c.xlsx")
