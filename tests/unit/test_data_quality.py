"""The quality report and token-length statistics, measured with the session's template."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data import lengths as lengths_module
from workbench.data import load_source
from workbench.templates import tokenize_with_labels


def turns(*pairs) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


GOOD = turns(("user", "What is 2+3?"), ("assistant", "5"))
ROWS = [
    GOOD,  # 0
    turns(("user", "   "), ("assistant", "Nothing was asked.")),  # 1 empty turn
    turns(("user", "Hello?")),  # 2 no assistant
    turns(("assistant", "I start."), ("user", "Odd.")),  # 3 order
    turns(("user", "What is 2+3?"), ("assistant", "5")),  # 4 exact duplicate of 0
    turns(("user", "what is 2 + 3"), ("assistant", "5!")),  # 5 near duplicate of 0
    turns(("user", "Bad\x07bell"), ("assistant", "cafÃ© and \ufffd")),  # 6 characters
    turns(("user", "Q"), ("assistant", None)),  # 7 null content
    turns(("system", "S"), ("user", "A"), ("user", "B"), ("assistant", "C")),  # 8 two users
    turns(("user", "Q"), ("system", "late"), ("assistant", "A")),  # 9 system not first
]


def test_each_problem_lists_its_rows():
    report = load_source(ROWS).quality(lengths=False)
    expected = {
        "empty_turn": [1],
        "missing_assistant": [2],
        "role_order": [3, 8, 9],
        "duplicate": [4],
        "near_duplicate": [5],
        "bad_characters": [6],
        "non_text": [7],
    }
    for name, rows in expected.items():
        assert report.rows(name) == rows, name
    assert report["duplicate"].notes[4] == "same as row 0"
    assert report["near_duplicate"].notes[5] == "nearly the same as row 0"
    assert report.problems_of(3) == ["role_order"]
    assert report.checked_rows == len(ROWS) and not report.lengths_checked
    assert {p.name for p in report.found()} == set(expected)


def test_excluding_or_editing_a_row_fixes_its_problems(session):
    session.load_dataset(ROWS)
    ds = session.dataset
    session.exclude(4)
    session.edit(2, GOOD["messages"][:1] + [{"role": "assistant", "content": "Hi!"}])
    report = ds.quality(lengths=False)
    assert report.rows("duplicate") == [] and report.rows("missing_assistant") == []
    session.edit(
        1, [{"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "5"}]
    )
    assert ds.quality(lengths=False).rows("duplicate") == [1]  # an edit can make a duplicate


def test_eval_prompts_seen_in_train_are_reported(session):
    rows = [turns(("user", f"Task {i}"), ("assistant", f"A{i}")) for i in range(20)]
    rows += [turns(("user", "task 3!"), ("assistant", "different answer"))]
    session.load_dataset(rows)
    ds = session.dataset
    report = ds.quality(lengths=False, eval_rows=[20, 5])
    assert report.rows("eval_overlap") == [20]
    assert report["eval_overlap"].notes[20] == "same prompt as train row 3"
    for seed in range(4):  # the session's split keeps the two on one side: no overlap
        train, evaluation = session.split(eval_fraction=0.3, seed=seed)
        assert (3 in evaluation) == (20 in evaluation)
        assert ds.quality(lengths=False).rows("eval_overlap") == []


def test_long_rows_report_the_trained_tokens_truncation_cuts(session):
    long_answer = " ".join(f"word{i}" for i in range(120))
    session.load_dataset([GOOD, turns(("user", "Write a lot."), ("assistant", long_answer))])
    session.set_max_length(64)
    ds = session.dataset
    report = ds.quality()
    assert report.lengths_checked and report.rows("too_long") == [1]
    full = tokenize_with_labels(session.template, [ds[1]])[0]
    cut = tokenize_with_labels(session.template, [ds[1]], max_length=64)[0].truncated_trained
    assert cut > 0
    assert (
        report["too_long"].notes[1]
        == f"{len(full.input_ids)} tokens > 64; truncation cuts {cut} trained tokens"
    )
    session.set_max_length(4096)
    assert ds.quality().rows("too_long") == []


def test_stats_split_prompt_and_response_tokens_as_training_does(session, chat_rows):
    session.load_dataset(chat_rows)
    ds = session.dataset
    stats = ds.stats()
    examples = tokenize_with_labels(session.template, [ds[i] for i in range(3)])
    assert stats.total_tokens.tolist() == [len(e.input_ids) for e in examples]
    assert stats.response_tokens.tolist() == [e.num_trained for e in examples]
    assert (stats.prompt_tokens + stats.response_tokens == stats.total_tokens).all()
    assert stats.turns.tolist() == [2, 2, 3]
    assert stats.role_counts == {"system": 1, "user": 3, "assistant": 3}
    edges, counts = stats.histograms(bins=5)
    assert len(edges) == 6 and edges[-1] == stats.total_tokens.max()
    assert [sum(counts[k]) for k in ("prompt", "response", "total")] == [3, 3, 3]
    summary = stats.summary()
    assert summary["rows"] == 3 and summary["max_length"] == session.max_length
    session.exclude(2)
    assert ds.stats().turns.tolist() == [2, 2]


def test_rows_the_template_cannot_render_are_counted_not_fatal(session):
    session.load_dataset([GOOD, turns(("user", "Q"), ("assistant", None))])
    ds = session.dataset
    assert ds.token_lengths().total[1] == -1
    assert ds.quality().rows("template_error") == [1]
    assert ds.stats().template_errors == 1


def test_token_lengths_are_cached_by_dataset_and_template(session, tmp_path, monkeypatch):
    import json

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [GOOD] * 30))
    calls = []
    real = lengths_module.tokenize_with_labels

    def counting(template, batch, *args, **kwargs):
        calls.append(len(batch))
        return real(template, batch, *args, **kwargs)

    monkeypatch.setattr(lengths_module, "tokenize_with_labels", counting)
    session.load_dataset(data)
    first = session.dataset.token_lengths().total
    assert sum(calls) == 30
    session.load_dataset(data)  # reopened: the counts come from the cache on disk
    assert np.array_equal(session.dataset.token_lengths().total, first) and sum(calls) == 30
    session.set_template("chatml")  # another template: measured again
    session.dataset.token_lengths()
    assert sum(calls) == 60


def test_lengths_need_a_bound_template():
    with pytest.raises(RuntimeError, match="session.load_dataset"):
        load_source([GOOD]).stats()


@pytest.mark.slow
def test_the_default_models_template_measures_lengths(session, default_model_dir, chat_rows):
    session.set_model(str(default_model_dir))
    session.load_dataset(chat_rows * 20)
    stats = session.dataset.stats()
    example = session.template.tokenize(chat_rows[2])
    assert stats.total_tokens[2] == len(example.input_ids)
    assert stats.response_tokens[2] == example.num_trained > 0
    assert session.dataset.quality().rows("duplicate") == list(range(3, 60))


@pytest.mark.parametrize(
    "first, second, told",
    [
        ("café", "cafe\u0301", "in another Unicode form"),  # NFC and NFD
        ("naïve", "na\u200bïve", "but for invisible U+200B ZERO WIDTH SPACE"),
        ("naïve", "\ufeffnaïve", "but for invisible U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("co-op", "co\u00ad-op", "but for invisible U+00AD SOFT HYPHEN"),
        ("left", "\u200eleft", "but for invisible U+200E LEFT-TO-RIGHT MARK"),
    ],
)
def test_rows_that_read_the_same_are_duplicates_naming_what_differs(first, second, told):
    """Tatoeba #2139's kind: the same text in another Unicode form or with characters no one
    sees is a duplicate, and the note says which."""
    rows = [turns(("user", f"Spell {w}"), ("assistant", w)) for w in (first, second)]
    report = load_source(rows).quality(lengths=False)
    assert report.rows("duplicate") == [1]
    assert report["duplicate"].notes[1].startswith(f"same as row 0 {told}")
    assert report.rows("near_duplicate") == []


def test_compatibility_forms_make_near_duplicates():
    rows = [
        turns(("user", "Define fine"), ("assistant", "ok")),
        turns(("user", "Define ﬁne"), ("assistant", "ok")),
    ]
    report = load_source(rows).quality(lengths=False)
    assert report.rows("near_duplicate") == [1] and report.rows("duplicate") == []
