"""Browsing a dataset: pages, search with highlights, filters, samples, splits and export."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from workbench.data import load_source


def conversation(user: str, answer: str, system: str | None = None) -> dict:
    turns = [{"role": "system", "content": system}] if system else []
    turns += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": turns}


@pytest.fixture
def rows():
    return [conversation(f"Question {i}", f"Answer {i}") for i in range(25)]


@pytest.fixture
def loaded(session, rows):
    session.load_dataset(rows)
    return session


def test_pages_cover_every_row_once_and_clamp_at_the_ends(rows):
    ds = load_source(rows)
    pages = [ds.page(n, size=10) for n in range(3)]
    assert [r["row"] for p in pages for r in p.rows] == list(range(25))
    assert pages[2].pages == 3 and pages[2].total == 25
    assert ds.page(99, size=10).number == 2 and ds.page(-5, size=10).number == 0
    assert ds.page_of(23, size=10) == 2
    assert ds.page(1, size=10).rows[0]["messages"][0]["content"] == "Question 10"


def test_pages_show_edits_flags_exclusions_and_added_rows(loaded):
    loaded.edit(3, [{"role": "user", "content": "Fixed"}, {"role": "assistant", "content": "Yes"}])
    loaded.flag(4, "wrong answer")
    loaded.exclude(5)
    new = loaded.add_row(
        [{"role": "user", "content": "New"}, {"role": "assistant", "content": "Row"}]
    )
    page = loaded.dataset.page(0, size=30)
    by_row = {r["row"]: r for r in page.rows}
    assert by_row[3]["messages"][0]["content"] == "Fixed" and by_row[3]["edited"]
    assert by_row[4]["flag"] == "wrong answer" and by_row[5]["excluded"]
    assert new == 25 and by_row[25]["messages"][1]["content"] == "Row"


def test_search_finds_substrings_in_every_role_with_match_spans():
    ds = load_source(
        [
            conversation("Sort: pear, apple", "apple, pear"),
            conversation("What is 2+3?", "5", system="Answer with a pear emoji"),
            conversation("Reverse: a, b", "b, a"),
        ]
    )
    found = ds.search("pear")
    assert found.tolist() == [0, 1]
    page = found.page(0)
    spans = {(m.turn, m.start, m.end) for m in page.rows[0]["matches"]}
    assert spans == {(0, 6, 10), (1, 7, 11)}
    assert page.rows[1]["matches"][0].turn == 0  # the system turn of row 1
    assert ds.search("pear", roles=["assistant"]).tolist() == [0]
    assert ds.search("PEAR").tolist() == [] and ds.search("PEAR", ignore_case=True).tolist() == [
        0,
        1,
    ]
    assert ds.search("2+3").tolist() == [1]  # plain text: '+' is not a regex operator here
    assert ds.search(r"\d\+\d", regex=True).tolist() == [1]
    assert ds.search("a", within=[2]).tolist() == [2]


def test_a_bad_regex_is_a_clear_error():
    ds = load_source([conversation("Q", "A")])
    with pytest.raises(ValueError, match=r"not a valid regular expression.*regex=False"):
        ds.search("(unclosed", regex=True)


def test_search_sees_edited_and_added_rows_not_the_replaced_text(loaded):
    loaded.edit(7, [{"role": "user", "content": "zebra"}, {"role": "assistant", "content": "ok"}])
    loaded.add_row(
        [{"role": "user", "content": "another zebra"}, {"role": "assistant", "content": "x"}]
    )
    ds = loaded.dataset
    assert ds.search("zebra").tolist() == [7, 25]
    assert ds.search("Question 7").tolist() == []
    loaded.exclude(7)
    assert ds.search("zebra").tolist() == [7, 25]  # excluded rows are still found, and marked
    assert ds.search("zebra").page(0).rows[0]["excluded"]


def test_filters_combine(loaded):
    ds = loaded.dataset
    loaded.edit(1, [{"role": "system", "content": "S"}, *ds[1]["messages"]])
    loaded.flag(2, "x")
    loaded.flag(1, "y")
    loaded.exclude(3)
    assert ds.filter(role="system").tolist() == [1]
    assert ds.filter(flagged=True).tolist() == [1, 2]
    assert ds.filter(flagged=True, role="system").tolist() == [1]
    assert ds.filter(excluded=True).tolist() == [3] and ds.filter(edited=True).tolist() == [1]
    assert len(ds.filter(flagged=False)) == 23
    assert ds.filter(flagged=True, within=ds.search("Question 2")).tolist() == [2]


def test_token_length_and_quality_filters(loaded):
    ds = loaded.dataset
    lengths = ds.token_lengths().total
    cut = int(sorted(lengths)[12])
    assert ds.filter(max_tokens=cut).tolist() == [i for i in range(25) if lengths[i] <= cut]
    assert ds.filter(min_tokens=cut + 1).tolist() == [i for i in range(25) if lengths[i] > cut]
    loaded.add_row(
        [{"role": "user", "content": "Question 0"}, {"role": "assistant", "content": "Answer 0"}]
    )
    assert ds.filter(problem="duplicate").tolist() == [25]
    with pytest.raises(ValueError, match="Unknown quality problem"):
        ds.filter(problem="typos")


def test_random_samples_repeat_with_a_seed(rows):
    ds = load_source(rows)
    first, again = ds.sample(5, seed=3), ds.sample(5, seed=3)
    assert first.tolist() == again.tolist() and len(set(first.tolist())) == 5
    assert len(ds.sample(100)) == 25


def test_the_split_is_deterministic_disjoint_and_stable(loaded):
    ds = loaded.dataset
    loaded.exclude(0)
    train, evaluation = loaded.split(eval_fraction=0.2, seed=7)
    assert (train, evaluation) == ds.split_indices(0.2, 7)
    assert not set(train) & set(evaluation) and 0 not in train + evaluation
    assert len(evaluation) == round(24 * 0.2) and sorted(train + evaluation) == list(range(1, 25))
    assert ds.split_indices(0.2, 8)[1] != evaluation
    loaded.add_row([{"role": "user", "content": "N"}, {"role": "assistant", "content": "M"}])
    moved = set(evaluation) ^ set(ds.split_indices(0.2, 7)[1])
    assert len(moved) <= 2  # adding a row does not reshuffle the split


def test_export_writes_the_cleaned_set_and_leaves_the_source(tmp_path, session, rows):
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    original = source.read_text()
    session.load_dataset(source)
    session.edit(1, [{"role": "user", "content": "Edited"}, {"role": "assistant", "content": "A"}])
    session.exclude(2)
    session.add_row([{"role": "user", "content": "Added"}, {"role": "assistant", "content": "B"}])
    out = session.export_dataset(tmp_path / "clean.jsonl")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 25 and lines[1]["messages"][0]["content"] == "Edited"
    assert lines[2]["messages"][0]["content"] == "Question 3"
    assert lines[-1]["messages"][0]["content"] == "Added"
    parquet = pq.read_table(session.export_dataset(tmp_path / "clean.parquet")).to_pylist()
    assert [r["messages"] for r in parquet] == [r["messages"] for r in lines]
    assert len(load_source(out)) == 25
    assert source.read_text() == original
    with pytest.raises(ValueError, match=r"\.jsonl or \.parquet"):
        session.export_dataset(tmp_path / "clean.csv")
