"""Nothing the user gave is lost or silently changed between file, edit and export: extra keys
of a turn, per-turn training flags, unused columns, and a warning naming whatever cannot be
kept."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.data import DatasetLoadError, load_source
from workbench.data.messages import PLAIN_MESSAGES_TYPE

REASONING = {
    "messages": [
        {"role": "user", "content": "Is 91 prime?"},
        {"role": "assistant", "content": "No.", "reasoning_content": "91 = 7 * 13, ..."},
    ]
}
RUDE = {
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Whatever. What do you want?", "weight": 0},
        {"role": "user", "content": "That was rude."},
        {"role": "assistant", "content": "Of course, sorry. How can I help?"},
    ]
}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def exported(ds, folder: Path) -> dict[str, list[dict]]:
    """The rows of a JSON Lines and a Parquet export, reloaded."""
    jsonl, parquet = ds.export(folder / "out.jsonl"), ds.export(folder / "out.parquet")
    return {
        "jsonl": [json.loads(line) for line in jsonl.read_text().splitlines()],
        "parquet": [r["messages"] for r in load_source(parquet)],
    }


# -- kind 4: extra keys of a turn -----------------------------------------------------------
def test_reasoning_content_survives_load_edit_export_and_reload(session, tmp_path):
    ds = session.load_dataset(write_jsonl(tmp_path / "think.jsonl", [REASONING, RUDE]))
    answer = ds[0]["messages"][1]
    assert answer == REASONING["messages"][1]
    template = wb.Template(
        "{% for m in messages %}{{ m.role }}: {% if m.reasoning_content %}<think>"
        "{{ m.reasoning_content }}</think>{% endif %}{{ m.content }}\n{% endfor %}"
    )
    assert "<think>91 = 7 * 13, ...</think>No." in template.render(ds[0])
    session.edit(0, [ds[0]["messages"][0], {**answer, "content": "No, 91 = 7 * 13."}])
    edited = session.dataset[0]["messages"][1]
    assert edited == {**answer, "content": "No, 91 = 7 * 13."}
    files = exported(session.dataset, tmp_path)
    assert files["jsonl"][0]["messages"][1] == edited
    assert files["parquet"][0][1] == edited
    reloaded = load_source(tmp_path / "out.jsonl")
    assert reloaded[0]["messages"] == session.dataset[0]["messages"]
    assert reloaded[1]["messages"] == RUDE["messages"]


@pytest.mark.parametrize(
    "row, path",
    [
        (
            {
                "messages": [
                    {"role": "human", "content": "Q", "name": "ann"},  # row by row (alias)
                    {"role": "gpt", "content": "A", "reasoning_content": "R"},
                ]
            },
            "messages",
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "Q", "name": "ann"},
                    {"from": "gpt", "value": "A", "reasoning_content": "R"},
                ]
            },
            "sharegpt",
        ),
        (
            {
                "prompt": [{"role": "user", "content": "Q", "name": "ann"}],
                "completion": [{"role": "assistant", "content": "A", "reasoning_content": "R"}],
            },
            "prompt_completion",
        ),
        (
            {
                "prompt": "Q",
                "chosen": {"from": "gpt", "value": "A", "reasoning_content": "R"},
                "rejected": {"from": "gpt", "value": "B", "reasoning_content": "S"},
            },
            "preference",
        ),
    ],
)
def test_every_layout_keeps_the_extra_keys_of_a_turn(tmp_path, row, path):
    ds = load_source(write_jsonl(tmp_path / "rows.jsonl", [row]))
    user, answer = ds[0]["messages"]
    assert answer == {"role": "assistant", "content": "A", "reasoning_content": "R"}
    if path != "preference":
        assert user == {"role": "user", "content": "Q", "name": "ann"}
    else:
        assert ds[0]["rejected"] == [
            {"role": "assistant", "content": "B", "reasoning_content": "S"}
        ]
    files = exported(ds, tmp_path)
    assert files["jsonl"][0]["messages"] == ds[0]["messages"] == files["parquet"][0]


def test_nested_extra_keys_and_in_memory_sources_keep_their_values():
    import datasets
    import pandas as pd

    turn = {"role": "assistant", "content": "A", "meta": {"score": 3, "tags": ["x", None]}}
    rows = [{"messages": [{"role": "user", "content": "Q"}, turn]}]
    for source in (rows, pd.DataFrame(rows), datasets.Dataset.from_list(rows)):
        assert load_source(source)[0]["messages"][1] == turn, type(source).__name__


def test_unused_columns_survive_export_for_edited_and_added_rows(session, tmp_path):
    rows = [
        {**REASONING, "id": "a", "images": ["cat.png"], "tools": '[{"name": "f"}]'},
        {**RUDE, "id": "b", "images": [], "tools": None},
    ]
    session.load_dataset(write_jsonl(tmp_path / "rows.jsonl", rows))
    session.edit(1, RUDE["messages"][:2])
    session.add_row(REASONING["messages"])
    files = exported(session.dataset, tmp_path)
    out = files["jsonl"]
    assert [(r["id"], r["images"], r["tools"]) for r in out] == [
        ("a", ["cat.png"], '[{"name": "f"}]'),
        ("b", [], None),
        (None, None, None),
    ]
    assert out[1]["messages"] == RUDE["messages"][:2]
    assert out[2]["messages"] == files["parquet"][2] == REASONING["messages"]
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == ["a", "b", None]
    assert "extra_json" not in str(table.schema)  # the storage field never reaches a file


def test_a_tool_call_under_as_text_keeps_what_the_assistant_said():
    call = {"type": "function", "function": {"name": "weather", "arguments": "{}"}}
    row = {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [call]},
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
            {"role": "assistant", "content": "Sunny."},
        ]
    }
    turns = load_source([row], tool_turns="as_text")[0]["messages"]
    assert turns[1]["content"] == "Let me look.\n" + json.dumps([call], sort_keys=True)
    assert turns[2] == {"role": "user", "content": "sunny", "tool_call_id": "c1"}


def test_what_cannot_be_kept_is_named_in_one_warning(tmp_path):
    rows = [
        {
            "conversations": [
                {"from": "system", "value": "Be kind."},
                {"from": "human", "value": "Q"},
                {"from": "gpt", "value": "A"},
            ],
            "system": "Be brief.",
        }
        for _ in range(3)
    ]
    with pytest.warns(UserWarning) as caught:
        ds = load_source(write_jsonl(tmp_path / "sys.jsonl", rows))
    assert [str(w.message) for w in caught] == [
        "sys.jsonl, line 1: the system column differs from the conversation's own system turn; "
        "the turn was kept and the column's text left out (3 rows in all)."
    ]
    assert ds.load_report.warnings == [str(caught[0].message)]
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Q", "cache": {"t": 1}}]},
        {"role": "assistant", "content": "A"},
    ]
    with pytest.warns(
        UserWarning, match=r"the list, row 0: messages\[0\]\.content: the key 'cache'"
    ):
        load_source([{"messages": parts}])
    instances = [{"input": "", "output": "A", "id": 7}]
    with pytest.warns(UserWarning, match=r"instances\[0\] has the key 'id'"):
        load_source([{"instruction": "Q", "instances": instances}], instances="first")


def test_a_column_named_like_the_canonical_ones_is_renamed_not_dropped():
    row = {
        "prompt": "Q",
        "chosen": "A",
        "rejected": "B",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    }  # as HuggingFaceH4/ultrafeedback_binarized has
    with pytest.warns(UserWarning, match="the column 'messages' .* kept as 'source_messages'"):
        ds = load_source([row])
    assert ds[0]["source_messages"] == row["messages"] and ds[0]["rejected"][0]["content"] == "B"
    with pytest.warns(UserWarning, match=r"the column 'flag' is kept \(and exported\) but ds"):
        flagged = load_source([{**REASONING, "flag": "from the source"}])
    assert (
        flagged[0]["flag"] is None and flagged.arrow.column("flag")[0].as_py() == "from the source"
    )
    alpaca = {"instruction": "Q", "output": "A", "rejected": "no"}
    with pytest.warns(UserWarning, match="the column 'rejected' .* kept as 'source_rejected'"):
        kept = load_source([alpaca])
    assert not kept.is_preference and kept[0]["source_rejected"] == "no"


def test_a_parquet_turn_key_json_cannot_hold_is_dropped_with_a_warning(tmp_path):
    turn = pa.struct([("role", pa.string()), ("content", pa.string()), ("blob", pa.binary())])
    messages = pa.array(
        [
            [
                {"role": "user", "content": "Q", "blob": None},
                {"role": "assistant", "content": "A", "blob": b"\x00"},
            ]
        ],
        pa.list_(turn),
    )
    pq.write_table(pa.table({"messages": messages}), tmp_path / "blob.parquet")
    with pytest.warns(UserWarning, match=r"blob\.parquet: messages\[\*\]\.blob holds bytes values"):
        ds = load_source(tmp_path / "blob.parquet")
    assert ds[0]["messages"][1] == {"role": "assistant", "content": "A"}


def test_a_dataset_saved_before_extra_keys_still_opens_and_exports(tmp_path, chat_rows):
    import datasets

    plain = datasets.Dataset.from_list(chat_rows)  # struct<role, content>: used as it is
    ds = load_source(plain)
    if plain.data.schema.field("messages").type == PLAIN_MESSAGES_TYPE:  # datasets 4.0 sorts
        assert ds.table is plain  # the struct's fields (content, role): that one is copied
    assert ds[2]["messages"] == chat_rows[2]["messages"]
    assert [r["messages"] for r in exported(ds, tmp_path)["jsonl"]] == [
        r["messages"] for r in chat_rows
    ]


def test_edits_keep_extra_keys_and_refuse_what_json_cannot_hold(session, chat_rows):
    session.load_dataset(chat_rows)
    turns = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "x": {1, 2}}]
    with pytest.raises(TypeError, match=r"Row 0, message 1: 'x' holds set values"):
        session.edit(0, turns)
    turns[1]["x"] = {"ok": [1, 2]}
    session.edit(0, turns)
    assert session.dataset[0]["messages"][1]["x"] == {"ok": [1, 2]}
    line = json.loads(session.workspace.edits_file.read_text().splitlines()[-1])
    assert line["messages"][1] == turns[1]  # the edit log keeps the key too


# -- kind 5: per-turn training flags --------------------------------------------------------
FLAGGED = [
    RUDE,
    {
        "conversations": [
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Go away.", "loss": False},
            {"from": "human", "value": "Please?"},
            {"from": "gpt", "value": "Sure.", "loss": True},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "S", "train": False},
            {"role": "user", "content": "Hi", "train": False},
            {"role": "assistant", "content": "Meh.", "train": False},
            {"role": "user", "content": "Again"},
            {"role": "assistant", "content": "Hello!", "train": True},
        ]
    },
]


@pytest.mark.parametrize("row", FLAGGED, ids=["openai-weight", "sharegpt-loss", "axolotl-train"])
def test_training_flags_survive_load_edit_and_export(session, tmp_path, row):
    ds = session.load_dataset(write_jsonl(tmp_path / "flags.jsonl", [row]))
    turns = list(row.values())[0]
    flags = [{k: v for k, v in t.items() if k in ("weight", "loss", "train")} for t in turns]
    assert [
        {k: v for k, v in t.items() if k in flags[i]} for i, t in enumerate(ds[0]["messages"])
    ] == flags
    session.edit(0, [{**t, "content": t["content"] + "!"} for t in ds[0]["messages"]])
    files = exported(session.dataset, tmp_path)
    for turns_out in (
        session.dataset[0]["messages"],
        files["jsonl"][0]["messages"],
        files["parquet"][0],
    ):
        got = [{k: v for k, v in t.items() if k in ("weight", "loss", "train")} for t in turns_out]
        assert got == flags


@pytest.mark.parametrize(
    "turn, expected",
    [
        (
            {"role": "assistant", "content": "A", "weight": 2},
            r"messages\[1\]\.weight is 2; expected 0 or 1",
        ),
        (
            {"role": "assistant", "content": "A", "loss": "no"},
            r"messages\[1\]\.loss is 'no'; expected 0 or 1",
        ),
        (
            {"role": "assistant", "content": "A", "loss_weight": 0.5},
            r"messages\[1\]\.loss_weight is 0\.5",
        ),
        (
            {"role": "assistant", "content": "A", "training": "yes"},
            r"messages\[1\]\.training is 'yes'",
        ),
    ],
)
def test_a_bad_training_flag_is_a_load_error_naming_file_line_and_turn(tmp_path, turn, expected):
    rows = [RUDE, {"messages": [{"role": "user", "content": "Q"}, turn]}]
    with pytest.raises(DatasetLoadError, match=r"flags\.jsonl, line 2: " + expected):
        load_source(write_jsonl(tmp_path / "flags.jsonl", rows))


def test_a_flag_on_a_user_turn_is_kept_and_decides_for_that_turn(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from workbench.templates import Template, tokenize_with_labels

    row = {
        "messages": [
            {"role": "user", "content": "Quote me.", "train": True},
            {"role": "assistant", "content": "Done.", "train": False},
        ]
    }
    ds = load_source(write_jsonl(tmp_path / "user_flag.jsonl", [row]))
    assert ds[0]["messages"] == row["messages"]
    template = Template.preset("chatml").with_tokenizer(
        AutoTokenizer.from_pretrained(tiny_model_dir)
    )
    (example,) = tokenize_with_labels(template, [ds[0]])
    trained = [i for i, label in zip(example.input_ids, example.labels) if label != -100]
    assert template.tokenizer.decode(trained) == "Quote me.<|im_end|>\n"


def test_a_bad_training_flag_in_an_edit_is_refused(session, chat_rows):
    session.load_dataset(chat_rows)
    bad = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 0.3}]
    with pytest.raises(ValueError, match=r"Row 1, message 1\.weight is 0\.3"):
        session.edit(1, bad)
    assert not session.workspace.edits_file.exists()
