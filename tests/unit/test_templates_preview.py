"""The editor's preview data: the training ids and labels, with each token's text for display;
a huge row is previewed only as far as training sees it, and exactly as training sees it."""

from __future__ import annotations

import random

import datasets
import pytest
from transformers import AutoTokenizer

from workbench.templates import IGNORE_INDEX, Template, tokenize_with_labels
from workbench.templates.preview import preview, trim_to_length
from workbench.train.launch import snapshot

ROW = {
    "messages": [
        {"role": "user", "content": "Café, naïve: sort them"},
        {"role": "assistant", "content": "café, naïve"},
    ]
}


@pytest.fixture(scope="module")
def template(default_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    return Template.preset("chatml").with_tokenizer(tokenizer)


def test_the_preview_is_the_training_sequence(template):
    shown = preview(template, ROW)
    tokenized = template.tokenize(ROW)
    assert [t.id for t in shown.tokens] == tokenized.input_ids
    assert [t.trained for t in shown.tokens] == [x != IGNORE_INDEX for x in tokenized.labels]
    assert shown.num_trained == tokenized.num_trained
    assert "".join(t.text for t in shown.tokens) == shown.text == template.render(ROW)


def test_trained_text_and_special_tokens_are_marked(template):
    shown = preview(template, ROW)
    assert [text for text, trained in shown.segments() if trained] == ["café, naïve<|im_end|>\n"]
    specials = {t.text for t in shown.tokens if t.special}
    assert specials == {"<|im_start|>", "<|im_end|>"}


def test_the_preview_stops_where_max_length_cuts(template):
    full = preview(template, ROW)
    cut = preview(template, ROW, max_length=full.num_tokens - 3)
    assert cut.num_tokens == full.num_tokens - 3
    assert cut.truncated_trained == full.num_trained - cut.num_trained > 0


def words(chars: int, seed: int = 0) -> str:
    """`chars` characters of varied English-like text (repeats of a few thousand words)."""
    rng = random.Random(seed)
    vocabulary = [
        "the",
        "lighthouse",
        "keeper",
        "wrote",
        "of",
        "storms",
        "and",
        "3.14",
        "ships",
        "at",
        "night;",
        "(again)",
        "Über",
        "café",
        "—",
        "naïve",
        "42",
    ]
    block = " ".join(rng.choice(vocabulary) for _ in range(4_000))
    return (block * (chars // len(block) + 1))[:chars]


def test_a_10_mb_answer_previews_exactly_what_the_training_snapshot_holds(template, tmp_path):
    huge = words(10_000_000)
    row = {
        "messages": [
            {"role": "system", "content": "Answer at length."},
            {"role": "user", "content": "Tell me everything."},
            {"role": "assistant", "content": huge},
        ]
    }
    shown = preview(template, row, max_length=256)
    snapshot(template, [row], 256, tmp_path / "snapshot")
    trained = datasets.load_from_disk(str(tmp_path / "snapshot"))[0]
    assert [t.id for t in shown.tokens] == trained["input_ids"]
    assert [t.trained for t in shown.tokens] == [x != IGNORE_INDEX for x in trained["labels"]]
    assert 0 < shown.num_trained < shown.num_tokens == 256
    left_out = shown.left_out[2]
    assert 9_900_000 < left_out < 10_000_000 and list(shown.left_out) == [2]
    assert len(shown.text) == len(template.render(row)) - left_out


@pytest.mark.parametrize("kind", ["words", "no spaces", "CJK", "spaces", "digits"])
@pytest.mark.parametrize("huge_turn", [1, 3])
def test_a_cut_row_keeps_the_ids_and_labels_of_the_whole_row(template, kind, huge_turn):
    rng = random.Random(kind)
    alphabet = {
        "words": None,
        "no spaces": "abcdefghij",
        "CJK": "漢字仮名交じり文",
        "spaces": " ",
        "digits": "0123456789",
    }[kind]
    long = (
        words(120_000)
        if alphabet is None
        else "".join(rng.choice(alphabet) for _ in range(120_000))
    )
    messages = [
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "A."},
        {"role": "user", "content": "And?"},
        {"role": "assistant", "content": "B."},
    ]
    messages[huge_turn] = {**messages[huge_turn], "content": long}
    whole = tokenize_with_labels(template, [messages], 200)[0]
    shown = preview(template, messages, max_length=200)
    assert shown.left_out and [t.id for t in shown.tokens] == whole.input_ids
    assert [t.trained for t in shown.tokens] == [x != IGNORE_INDEX for x in whole.labels]


def test_a_template_that_looks_into_the_cut_part_keeps_the_message_whole(template):
    looks = Template(
        "{% for m in messages %}{% if '</think>' in m.content %}[thought]{% endif %}"
        "{{ m.role }}: {{ m.content }}<|im_end|>\n{% endfor %}",
        train_on="all_assistant",
    ).with_tokenizer(template.tokenizer)
    long = words(60_000) + "</think>" + words(60_000)
    messages = [{"role": "user", "content": long}, {"role": "assistant", "content": "A."}]
    assert trim_to_length(looks, messages, 100).left_out == {}
    assert trim_to_length(template, messages, 100).left_out  # chatml does not look: cut
