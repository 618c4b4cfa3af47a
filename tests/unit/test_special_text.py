"""Text that spells a special token is text, in training, the mask view, answers and the
quality report; only the template writes control tokens (transformers #29279)."""

from __future__ import annotations

import pytest

from workbench.templates.preview import preview
from workbench.templates.special_text import encode_prompts
from workbench.templates.template import IGNORE_INDEX, Template

ANSWER = "Each turn ends with the marker <|im_end|> and the next starts with <|im_start|>."
ISSUE_ROW = {
    "messages": [
        {"role": "user", "content": "How does a chatml turn end?"},
        {"role": "assistant", "content": ANSWER},
    ]
}


@pytest.fixture
def chatml(session):
    session.set_template("chatml")
    return session.template


def trained_ids(example) -> list[int]:
    return [i for i, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]


def test_the_issue_answer_trains_its_markers_as_text_and_stops_once(chatml):
    tokenizer = chatml.tokenizer
    end, start = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|im_start|>"])
    example = chatml.tokenize(ISSUE_ROW)
    trained = trained_ids(example)
    assert trained.count(end) == 1 and trained[-2] == end  # the answer's own end of turn only
    assert start not in trained
    assert tokenizer.decode(trained) == ANSWER + "<|im_end|>\n"
    assert example.input_ids.count(start) == 2 and example.input_ids.count(end) == 2  # template's


def turns(*pairs) -> list[dict]:
    return [{"role": role, "content": content} for role, content in pairs]


@pytest.mark.parametrize(
    "messages, token",
    [
        (turns(("user", "End with <|im_start|>assistant"), ("assistant", "Done.")), "<|im_start|>"),
        (
            turns(("system", "Never write <|endoftext|>."), ("user", "Hi"), ("assistant", "Hi.")),
            "<|endoftext|>",
        ),
        (turns(("user", "Hi"), ("assistant", "The file token is <repo_name>.")), "<repo_name>"),
    ],
)
def test_every_role_and_special_token_stays_text(chatml, messages, token):
    example = chatml.tokenize({"messages": messages})
    token_id = chatml.tokenizer.convert_tokens_to_ids(token)
    spelled = sum(m["content"].count(token) for m in messages)
    written = chatml.render({"messages": messages}).count(token) - spelled
    assert example.input_ids.count(token_id) == written  # only where the template wrote it


def test_a_row_without_special_text_tokenises_as_the_tokenizer_does(chatml):
    row = {
        "messages": [
            {"role": "user", "content": "Sort: b, a"},
            {"role": "assistant", "content": "a, b"},
        ]
    }
    text = chatml.render(row)
    assert (
        chatml.tokenize(row).input_ids
        == chatml.tokenizer(text, add_special_tokens=False)["input_ids"]
    )


def test_the_mask_view_shows_the_markers_as_text(chatml):
    shown = preview(chatml, ISSUE_ROW)
    marked = [t for t in shown.tokens if t.special]
    assert len(marked) == 4  # two turns, each opened and closed by the template
    assert "<|im_end|>" in "".join(t.text for t in shown.tokens if t.trained and not t.special)


def test_a_prompt_that_spells_a_marker_is_read_as_text(chatml):
    tokenizer = chatml.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    text = chatml.render_prompt([{"role": "user", "content": "Repeat: <|im_end|>"}])
    ids = encode_prompts(tokenizer, [text])["input_ids"][0].tolist()
    assert ids.count(end) == 1  # the user turn's end, written by the template


def test_the_quality_report_names_the_turn_and_token(session):
    session.load_dataset(
        [
            ISSUE_ROW,
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hi."},
                ]
            },
        ]
    )
    report = session.dataset.quality(lengths=False)
    assert report.rows("special_token_text") == [0]
    assert report["special_token_text"].notes[0] == (
        "the assistant turn spells <|im_start|>; it is read as text, not as the token"
    )


def test_another_template_keeps_the_text_too(session):
    session.set_template(Template.preset("alpaca"))
    example = session.template.tokenize(ISSUE_ROW)
    end = session.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert trained_ids(example).count(end) == 1  # the eos alpaca writes after the answer
    assert "<|im_end|>" in session.tokenizer.decode(trained_ids(example))
