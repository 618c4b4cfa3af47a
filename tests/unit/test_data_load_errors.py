"""Every load error names its source and place, and preference rows become
the pair TRL builds from them (kind 1), for every source type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.data import DatasetLoadError, load_source

from .test_data_sources import write_jsonl


def write_source(kind: str, rows: list[dict], folder: Path):
    """`rows` as a source of `kind`, and the name its errors must start with."""
    import datasets
    import pandas as pd

    if kind == "list":
        return rows, "the list"
    frame = pd.DataFrame(rows)
    if kind == "DataFrame":
        return frame, "the DataFrame"
    if kind in ("Dataset", "DatasetDict", "saved"):
        hf = datasets.Dataset.from_list(rows)
        if kind == "saved":
            hf.save_to_disk(str(folder / "saved"))
            return folder / "saved", "saved (a saved dataset)"
        return (hf if kind == "Dataset" else datasets.DatasetDict({"train": hf})), "the Dataset"
    path = folder / f"data.{kind}"
    if kind == "jsonl":
        write_jsonl(path, rows)
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "parquet":
        frame.to_parquet(path)
    else:
        cells = frame.map(lambda v: v if isinstance(v, str) else json.dumps(v))
        cells.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
    return path, path.name


SOURCE_KINDS = [
    "jsonl",
    "json",
    "csv",
    "tsv",
    "parquet",
    "list",
    "DataFrame",
    "Dataset",
    "DatasetDict",
    "saved",
]


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_a_layout_error_names_the_source_and_what_the_layout_lacks(tmp_path, kind):
    source, name = write_source(kind, [{"instruction": "Add 2 and 3", "input": "2, 3"}], tmp_path)
    with pytest.raises(DatasetLoadError) as caught:
        load_source(source, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"{name}: columns instruction, input found; "), message
    assert "the Alpaca layout (instruction + output) needs an output column" in message
    assert "mapping={'output': '<column>'}" in message and caught.value.option == "mapping"
    with pytest.raises(DatasetLoadError, match=f"^{re.escape(name)}: format='chat' needs .*mess"):
        load_source(source, cache_dir=tmp_path / "cache", format="chat")
    with pytest.raises(DatasetLoadError, match=f"^{re.escape(name)}: mapping maps 'output' to "):
        load_source(source, cache_dir=tmp_path / "cache", mapping={"output": "answer"})


PRIMARY = {
    "prompt": "Name a primary colour.",
    "chosen": [
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Red."},
    ],
    "rejected": [
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Purple."},
    ],
}
SECOND_ROW = {
    "jsonl": "line 2",
    "json": "item 2",
    "csv": "data row 2",
    "tsv": "data row 2",
    "parquet": "row 2",
    "list": "row 1",
    "DataFrame": "row 1",
    "Dataset": "row 1",
    "DatasetDict": "row 1",
    "saved": "row 1",
}


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_a_row_error_names_the_source_and_the_row(tmp_path, kind):
    bad = {**PRIMARY, "prompt": "Name a colour."}
    source, name = write_source(kind, [PRIMARY, bad], tmp_path)
    with pytest.raises(DatasetLoadError) as caught:
        load_source(source, cache_dir=tmp_path / "cache")
    assert str(caught.value).startswith(
        f"{name}, {SECOND_ROW[kind]}: the 'prompt' field is [user 'Name a colour.'], but chosen "
        "and rejected begin with [user 'Name a primary colour.']"
    ), str(caught.value)


def test_bad_in_memory_rows_name_the_row():
    with pytest.raises(
        DatasetLoadError, match=r"^the list, row 1: a str \('oops'\); expected a dict"
    ):
        load_source([{"prompt": "P", "completion": "C"}, "oops"])
    with pytest.raises(DatasetLoadError, match=r"^the list, row 0: completion is a number \(5\)"):
        load_source([{"prompt": "P", "completion": 5}])


# -- preference rows: the pair TRL builds -------------------------------------------------
def pair_of(row: dict) -> tuple[list, list, list]:
    """(prompt, chosen, rejected) of a loaded preference row: the answer is the final run of
    assistant turns of messages."""
    messages = row["messages"]
    start = len(messages)
    while start and messages[start - 1]["role"] == "assistant":
        start -= 1
    return messages[:start], messages[start:], row["rejected"]


def turns(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in pairs]


def test_a_prompt_repeated_inside_chosen_and_rejected_is_not_duplicated(tmp_path):
    row = load_source(write_jsonl(tmp_path / "pairs.jsonl", [PRIMARY]))[0]
    assert row["messages"] == turns(("user", "Name a primary colour."), ("assistant", "Red."))
    assert row["rejected"] == turns(("assistant", "Purple."))
    as_list = {**PRIMARY, "prompt": PRIMARY["chosen"][:1]}
    assert pair_of(load_source([as_list])[0]) == pair_of(row)
    answer_alone = {**PRIMARY, "rejected": "Purple."}  # only chosen repeats the prompt
    assert pair_of(load_source([answer_alone])[0]) == pair_of(row)
    with_system = {
        **PRIMARY,
        "chosen": turns(("system", "Be brief.")) + PRIMARY["chosen"],
        "rejected": turns(("system", "Be brief.")) + PRIMARY["rejected"],
    }
    prompt, chosen, rejected = pair_of(load_source([with_system])[0])
    assert prompt == turns(("system", "Be brief."), ("user", "Name a primary colour."))
    assert (chosen, rejected) == (turns(("assistant", "Red.")), turns(("assistant", "Purple.")))


def test_preference_rows_give_the_pair_trl_builds():
    trl = pytest.importorskip("trl.data_utils")
    shared = turns(("user", "Hi"), ("assistant", "Hello"), ("user", "Colour?"))
    rows = [
        PRIMARY,  # explicit text prompt, conversational answers repeating it
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"},  # text
        {
            "prompt": turns(("user", "2+2?")),
            "chosen": turns(("assistant", "4")),
            "rejected": turns(("assistant", "5")),
        },  # conversational, answers alone
        {
            "chosen": shared + turns(("assistant", "Red.")),
            "rejected": shared + turns(("assistant", "Purple.")),
        },  # implicit prompt, several turns
        {"chosen": "Human: hi Assistant: hello", "rejected": "Human: hi Assistant: go away"},
    ]
    for row in rows:
        expected = trl.maybe_extract_prompt(dict(row))
        as_turns = {
            k: (turns(("user" if k == "prompt" else "assistant", v)) if isinstance(v, str) else v)
            for k, v in expected.items()
        }
        got = pair_of(load_source([row])[0])
        assert got == (as_turns["prompt"], as_turns["chosen"], as_turns["rejected"]), row


@pytest.mark.parametrize(
    "row, expected",
    [
        (
            {"chosen": turns(("user", "Q"), ("assistant", "A")), "rejected": turns(("user", "Q"))},
            r"the list, row 0: chosen and rejected share no prompt turns",
        ),
        (
            {
                "prompt": turns(("user", "Q"), ("assistant", "Sure,")),
                "chosen": " yes",
                "rejected": " no",
            },
            r"the prompt ends with an assistant turn",
        ),
        (
            {
                "prompt": "Q",
                "chosen": turns(("user", "Q"), ("assistant", "A")),
                "rejected": turns(("user", "Other"), ("assistant", "B")),
            },
            r"chosen must start and end with an assistant turn after the prompt; its turns are "
            r"\['user', 'assistant'\]",
        ),
    ],
)
def test_a_pair_that_cannot_be_read_without_doubt_is_refused_by_row(row, expected):
    with pytest.raises(DatasetLoadError, match=expected):
        load_source([row])


def test_an_exported_preference_dataset_loads_back_as_the_same_pairs(tmp_path):
    ds = load_source(write_jsonl(tmp_path / "pairs.jsonl", [PRIMARY] * 2))
    for suffix in ("jsonl", "parquet"):
        again = load_source(ds.export(tmp_path / f"out.{suffix}"))
        assert again.is_preference and again.load_report.format == "preference"
        assert [pair_of(r) for r in again.rows([0, 1])] == [pair_of(r) for r in ds.rows([0, 1])]
