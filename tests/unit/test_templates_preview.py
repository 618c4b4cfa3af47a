"""The editor's preview data: the training ids and labels, with each token's text for display."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from workbench.templates import IGNORE_INDEX, Template
from workbench.templates.preview import preview

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
