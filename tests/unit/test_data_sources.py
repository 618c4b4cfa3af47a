"""Loading instruction data: every source kind, every layout, real files, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import workbench as wb
from workbench.data import DatasetLoadError, blocks, load_source, sources

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="the shared real-data folder (../shared/data) is absent"
)
ROLES = {"system", "user", "assistant"}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def assert_canonical(ds) -> None:
    for i in range(len(ds)):
        messages = ds[i]["messages"]
        assert messages and all(m["role"] in ROLES for m in messages), (i, messages)
        assert all(isinstance(m["content"], str) for m in messages), (i, messages)
        assert any(m["role"] == "assistant" for m in messages), (i, messages)


# -- real files written by others -----------------------------------------------------------
@needs_shared
@pytest.mark.parametrize(
    "name, options, rows, layout",
    [
        ("fastchat_dummy_conversation.json", {}, 500, "sharegpt"),
        ("llamafactory_alpaca_en_demo.json", {}, 999, "alpaca"),
        ("llamafactory_identity.json", {}, 91, "alpaca"),
        ("llamafactory_dpo_en_demo.json", {}, 300, "preference"),
        ("llamafactory_glaive_toolcall_en_demo.json", {"tool_turns": "as_text"}, 300, "sharegpt"),
        ("llamafactory_glaive_toolcall_en_demo.json", {"tool_turns": "drop_rows"}, 147, "sharegpt"),
        ("llamafactory_v1_sft_demo.jsonl", {}, 500, "chat"),
        ("selfinstruct_seed_tasks.jsonl", {"instances": "expand"}, 175, "self_instruct"),
        ("selfinstruct_seed_tasks.jsonl", {"instances": "first"}, 175, "self_instruct"),
    ],
)
def test_every_real_file_loads_into_canonical_messages(tmp_path, name, options, rows, layout):
    ds = load_source(SHARED_DATA / name, cache_dir=tmp_path, **options)
    assert (len(ds), ds.load_report.format) == (rows, layout)
    assert_canonical(ds)


@needs_shared
def test_real_files_keep_their_text(tmp_path):
    sharegpt = load_source(SHARED_DATA / "fastchat_dummy_conversation.json", cache_dir=tmp_path)
    assert sharegpt[0]["messages"][0] == {"role": "user", "content": "Who are you?"}
    assert sharegpt[0]["id"] == "identity_0"  # columns a layout does not use are kept
    parts = load_source(SHARED_DATA / "llamafactory_v1_sft_demo.jsonl", cache_dir=tmp_path)
    assert parts[0]["messages"] == [  # typed parts joined; the per-turn loss_weight kept
        {"role": "user", "content": "hi", "loss_weight": 0.0},
        {"role": "assistant", "content": parts[0]["messages"][1]["content"], "loss_weight": 1.0},
    ]
    assert parts[0]["messages"][1]["content"].startswith("Hello! I am {{name}}")
    dpo = load_source(SHARED_DATA / "llamafactory_dpo_en_demo.json", cache_dir=tmp_path)
    assert dpo.is_preference
    row = dpo[0]
    assert row["messages"][-1]["role"] == "assistant"
    assert row["rejected"][0]["role"] == "assistant"
    assert row["messages"][-1]["content"] != row["rejected"][0]["content"]
    tools = load_source(
        SHARED_DATA / "llamafactory_glaive_toolcall_en_demo.json",
        cache_dir=tmp_path,
        tool_turns="as_text",
    )
    call = tools[0]["messages"][3]
    assert call["role"] == "assistant" and '"search_recipes"' in call["content"]


@needs_shared
@pytest.mark.parametrize(
    "name, option, hint",
    [
        ("llamafactory_glaive_toolcall_en_demo.json", "tool_turns", "tool_turns='as_text'"),
        ("selfinstruct_seed_tasks.jsonl", "instances", "instances='expand'"),
    ],
)
def test_a_file_that_needs_a_choice_names_the_option(tmp_path, name, option, hint):
    with pytest.raises(DatasetLoadError) as caught:
        load_source(SHARED_DATA / name, cache_dir=tmp_path)
    assert hint in str(caught.value) and name in str(caught.value)
    assert caught.value.option == option and caught.value.choices


# -- layouts --------------------------------------------------------------------------------
def test_each_layout_converts_to_chat_messages():
    def first(rows, **options):
        return load_source(rows, **options)[0]["messages"]

    alpaca = {
        "instruction": "Add",
        "input": "2 and 3",
        "output": "5",
        "system": "Be brief.",
        "history": [["Hi", "Hello"]],
    }
    assert first([alpaca]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Add\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    sharegpt = {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}
    assert first([sharegpt]) == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]
    openai = {"messages": [{"role": "human", "content": "Q"}, {"role": "model", "content": "A"}]}
    assert [m["role"] for m in first([openai])] == ["user", "assistant"]
    assert first([{"prompt": "P", "completion": "C"}])[1] == {"role": "assistant", "content": "C"}
    assert first([{"question": "Q", "answer": "A"}])[0] == {"role": "user", "content": "Q"}


def test_preference_pairs_are_recognised():
    ds = load_source([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}])
    assert ds.is_preference and ds.load_report.format == "preference"
    assert ds[0]["messages"] == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    assert ds[0]["rejected"] == [{"role": "assistant", "content": "5"}]
    implicit = {
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go"}],
    }
    pair = load_source([implicit])[0]
    assert pair["messages"][0]["content"] == "Hi" and pair["rejected"][0]["content"] == "Go"


def test_ambiguous_columns_ask_for_a_format_and_the_format_decides():
    rows = [{"prompt": "P", "completion": "C", "question": "Q", "answer": "A"}]
    with pytest.raises(DatasetLoadError, match="format=") as caught:
        load_source(rows)
    assert caught.value.option == "format"
    assert set(caught.value.choices) == {"prompt_completion", "question_answer"}
    assert load_source(rows, format="question_answer")[0]["messages"][0]["content"] == "Q"


def test_a_mapping_names_the_columns_of_an_unknown_layout():
    rows = [{"query": "Q", "reply": "A", "topic": "math"}]
    with pytest.raises(DatasetLoadError, match=r"mapping=.*\['query', 'reply', 'topic'\]|query"):
        load_source(rows)
    ds = load_source(rows, mapping={"prompt": "query", "completion": "reply"})
    assert ds[0]["messages"][1]["content"] == "A" and ds[0]["topic"] == "math"
    with pytest.raises(DatasetLoadError, match="'answer_text', which the data lacks"):
        load_source(rows, mapping={"completion": "answer_text", "prompt": "query"})


def test_unknown_options_and_values_are_refused_by_name():
    with pytest.raises(DatasetLoadError, match="instance_mode"):
        load_source([{"prompt": "P", "completion": "C"}], instance_mode="expand")
    with pytest.raises(DatasetLoadError, match="on_error='ignore'"):
        load_source([{"prompt": "P", "completion": "C"}], on_error="ignore")


# -- source kinds ---------------------------------------------------------------------------
def test_in_memory_objects_load(tmp_path, chat_rows):
    import datasets
    import pandas as pd

    frame = pd.DataFrame({"instruction": ["Add 2 and 3"], "output": ["5"]})
    assert load_source(frame)[0]["messages"][1]["content"] == "5"
    hf = datasets.Dataset.from_list(chat_rows)
    assert len(load_source(hf)) == 3
    both = datasets.DatasetDict({"train": hf, "test": hf.select([0])})
    assert len(load_source(both)) == 3 and len(load_source(both, split="test")) == 1
    only_test = datasets.DatasetDict({"test": hf, "validation": hf})
    with pytest.raises(DatasetLoadError, match=r"split= one of them") as caught:
        load_source(only_test)
    assert caught.value.choices == ["test", "validation"]
    hf.save_to_disk(str(tmp_path / "saved"))
    saved = load_source(tmp_path / "saved")
    assert len(saved) == 3 and saved.source_ref["kind"] == "file"


def test_json_array_csv_tsv_and_parquet_files_load(tmp_path):
    import pandas as pd

    rows = [{"instruction": f"Say {i}", "output": str(i)} for i in range(5)]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    for name in ("a.json", "a.csv", "a.tsv", "a.parquet"):
        ds = load_source(tmp_path / name, cache_dir=tmp_path / "cache")
        assert len(ds) == 5 and ds[4]["messages"][1]["content"] == "4", name


def test_a_hub_name_while_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetLoadError, match="hub is offline"):
        load_source("someone/some-dataset")


# -- bad input ------------------------------------------------------------------------------
def test_a_malformed_line_is_named_and_skip_loads_the_rest(tmp_path, chat_rows):
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps(r) for r in chat_rows]
    lines.insert(1, '{"messages": [{"role": "user", "content": "cut off')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetLoadError, match=r"rows\.jsonl, line 2: not valid JSON") as caught:
        load_source(path, cache_dir=tmp_path / "cache")
    assert "on_error='skip'" in str(caught.value) and caught.value.option == "on_error"
    with pytest.warns(UserWarning, match=r"skipped 1 malformed line\(s\) \(2\)"):
        ds = load_source(path, cache_dir=tmp_path / "cache", on_error="skip")
    assert len(ds) == 3 and ds.load_report.skipped[0]["line"] == 2
    assert ds[1]["messages"][0]["content"] == "What is 2+3?"


def test_line_numbers_hold_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 256)  # many blocks of a few lines each
    rows = [{"prompt": f"P{i}", "completion": f"C{i}"} for i in range(60)]
    rows[20]["completion"] = "long " * 300  # one line longer than a block
    rows[45]["completion"] = 7
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    with pytest.raises(DatasetLoadError, match=r"line 46: completion is a number \(7\)"):
        load_source(path)
    rows[45]["completion"] = "C45"
    rows[50]["extra"] = "only here"  # a column that appears in a later block
    ds = load_source(write_jsonl(path, rows))
    assert len(ds) == 60 and ds[50]["extra"] == "only here" and ds[0]["extra"] is None
    assert (
        ds[20]["messages"][1]["content"] == "long " * 300
        and ds[0]["messages"][0]["content"] == "P0"
    )


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            b'{"messages": [{"role": "user", "content": "Hi"}]}\n'
            b'{"messages": [{"role": "user", "content": 5}]}\n',
            r"bad\.jsonl, line 2: messages\[0\]\.content is a number \(5\); expected text",
        ),
        (
            b'{"messages": [{"role": "user", "content": "Hi"}]}\n{"messages": "Hi"}\n',
            r"bad\.jsonl, line 2: messages is a string .*expected a list",
        ),
        (
            b'{"messages": [{"role": "user", "content": 5}]}\n',
            r"bad\.jsonl, line 1: messages\[0\]\.content is a number \(5\); expected text",
        ),
        (
            b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n',
            r"bad\.jsonl, line 1: byte b'\\xe9' is not UTF-8 text; expected UTF-8",
        ),
        (b"", r"bad\.jsonl is empty"),
        (b"\xff\xfe{\x00}\x00", r"UTF-16 text; expected UTF-8"),
        (b'{"q": "x", "a": "y"}\n', r"bad\.jsonl: columns q, a found\. No known layout uses"),
    ],
)
def test_bad_files_say_what_was_found_and_what_was_expected(tmp_path, content, expected):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DatasetLoadError, match=expected):
        load_source(path, cache_dir=tmp_path / "cache")


def test_a_missing_file_and_a_csv_without_usable_columns(tmp_path):
    with pytest.raises(DatasetLoadError, match=r"No data file at .*nowhere\.jsonl"):
        load_source(tmp_path / "nowhere.jsonl")
    (tmp_path / "sales.csv").write_text("region,amount\nnorth,3\n")
    with pytest.raises(
        DatasetLoadError, match=r"sales\.csv: columns region, amount found.*mapping="
    ):
        load_source(tmp_path / "sales.csv")


def test_a_free_column_of_mixed_types_is_kept_as_text(tmp_path):
    rows = [{"prompt": "P", "completion": "C", "score": 5}, {"prompt": "P", "completion": "D"}]
    rows[1]["score"] = "high"
    with pytest.warns(UserWarning, match=r"rows\.jsonl: the column 'score' holds number and str"):
        ds = load_source(write_jsonl(tmp_path / "rows.jsonl", rows))
    assert [ds[0]["score"], ds[1]["score"]] == ["5", "high"]


# -- sessions and caching -------------------------------------------------------------------
def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def test_a_failed_load_changes_nothing_in_the_workspace(session, tmp_path, chat_rows):
    session.load_dataset(chat_rows)
    before, state = tree(session.path), session.workspace.session_file.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(chat_rows[0]) + "\n{broken\n")
    for source, options in ((bad, {}), (tmp_path / "none.jsonl", {}), (bad, {"format": "x"})):
        with pytest.raises(DatasetLoadError):
            session.load_dataset(source, **options)
    assert tree(session.path) == before
    assert session.workspace.session_file.read_text() == state
    assert len(session.dataset) == 3


def test_reopening_reads_the_cache_without_parsing_again(tmp_path, chat_rows, monkeypatch):
    data = write_jsonl(tmp_path / "rows.jsonl", chat_rows)
    with wb.Session.open(tmp_path / "ws") as s:
        s.load_dataset(data, on_error="skip")
        s.flag(1, "check")

    def no_parsing(*args, **kwargs):
        raise AssertionError("the file was parsed again")

    monkeypatch.setattr(sources, "read_blocks", no_parsing)
    with wb.Session.open(tmp_path / "ws") as s:
        assert len(s.dataset) == 3 and s.dataset[1]["flag"] == "check"
        assert s.dataset.load_report.format == "chat"
    data.write_text(data.read_text() + json.dumps(chat_rows[0]) + "\n")
    with pytest.raises(AssertionError, match="parsed again"):  # a changed file is read anew
        load_source(data, cache_dir=tmp_path / "ws" / "cache" / "datasets", on_error="skip")


def test_openai_tool_calls_need_the_tool_turns_option():
    call = {"type": "function", "function": {"name": "weather", "arguments": "{}"}}
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Weather?", "tool_calls": None},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "content": "sunny", "tool_calls": None},
                {"role": "assistant", "content": "Sunny.", "tool_calls": None},
            ]
        },
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
    ]
    with pytest.raises(DatasetLoadError, match=r"row 0: messages\[1\] is a 'function_call'"):
        load_source(rows)
    kept = load_source(rows, tool_turns="as_text")[0]["messages"]
    assert [m["role"] for m in kept] == ["user", "assistant", "user", "assistant"]
    assert '"weather"' in kept[1]["content"] and kept[2]["content"] == "sunny"
    assert len(load_source(rows, tool_turns="drop_rows")) == 1


# -- every load error names its source ----------------------------------------------------
