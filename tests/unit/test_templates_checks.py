"""Template checks: each silent template failure is reported, with rows; good templates pass."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from workbench.templates import Template
from workbench.templates.checks import EXAMPLE, check_template, rows_to_check, stop_token_ids
from workbench.templates.presets import CHATML, PRESETS

ROWS = [
    {"messages": [{"role": "user", "content": "Q one"}, {"role": "assistant", "content": "A one"}]},
    {
        "messages": [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Q two"},
            {"role": "assistant", "content": "A two"},
        ]
    },
]
NO_ANSWER = {"messages": [{"role": "user", "content": "Only a question"}]}
PLAIN = (  # no end-of-turn token, a generation prompt ending in a space, no system turn
    "{% for m in messages %}{% if m.role != 'system' %}{{ m.role }}: {{ m.content }}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    return AutoTokenizer.from_pretrained(default_model_dir)


def findings(template, tokenizer, examples=ROWS, **kwargs) -> dict:
    found = check_template(template.with_tokenizer(tokenizer), examples, **kwargs)
    return {w.check: w for w in found}


@pytest.mark.parametrize("preset", ["model", "chatml"])
def test_the_default_models_templates_raise_no_warning(tokenizer, preset):
    found = findings(Template.preset(preset), tokenizer)
    assert [w for w in found.values() if w.severity == "warning"] == []
    assert found["pad_is_eos"].severity == "info"  # SmolLM2 pads with EOS, which stays trained


def test_a_generation_prompt_that_is_not_a_token_prefix_is_reported(tokenizer):
    warning = findings(Template(PLAIN), tokenizer)["prompt_prefix"]
    assert warning.rows == (0, 1)
    assert "part at token" in warning.message and "trailing space" in warning.fix


def test_answers_without_a_stop_token_are_reported(tokenizer):
    warning = findings(Template(PLAIN), tokenizer)["stop_token"]
    assert warning.rows == (0, 1)
    assert "'<|im_end|>'" in warning.message and "never learns to stop" in warning.explanation


def test_a_stop_token_the_vocabulary_lacks_is_named(tokenizer):
    warning = findings(Template.preset("llama3"), tokenizer)["stop_token"]
    assert "'<|eot_id|>' is written as text" in warning.explanation


def test_train_on_everything_still_checks_the_answers_end(tokenizer):
    assert "stop_token" in findings(Template(PLAIN, train_on="all"), tokenizer)
    assert "stop_token" not in findings(Template.preset("chatml", train_on="all"), tokenizer)


def test_a_doubled_bos_is_reported(tokenizer):
    warning = findings(Template("{{ bos_token }}" + CHATML), tokenizer)["double_bos"]
    assert warning.rows == (0, 1)
    assert "double_bos" not in findings(Template.preset("chatml"), tokenizer)


def test_rows_that_train_nothing_are_reported_with_the_reason(tokenizer):
    rows = [*ROWS, NO_ANSWER]
    warning = findings(Template.preset("chatml"), tokenizer, rows)["all_masked"]
    assert warning.rows == (2,) and "1 of 3" in warning.message
    cut = findings(Template.preset("chatml"), tokenizer, ROWS, max_length=8)["all_masked"]
    assert cut.rows == (0, 1) and "max_length (8 tokens)" in cut.explanation


def test_a_dropped_system_turn_is_reported(tokenizer):
    warning = findings(Template(PLAIN), tokenizer)["system_dropped"]
    assert warning.rows == (1,)
    for preset in PRESETS:
        assert "system_dropped" not in findings(Template.preset(preset), tokenizer), preset


def test_pad_equal_to_eos_warns_when_eos_never_trains(tokenizer):
    warning = findings(Template(PLAIN), tokenizer)["pad_is_eos"]
    assert warning.severity == "warning" and "never trained" in warning.message


def test_rows_the_template_cannot_render_are_reported(tokenizer):
    refuses_system = (
        "{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        + CHATML
    )
    found = findings(Template(refuses_system), tokenizer, ROWS, rows=[10, 11])
    assert found["render_error"].rows == (11,)
    assert "no system role" in found["render_error"].message


def test_stop_tokens_are_those_generation_stops_on(tokenizer):
    from workbench.templates.stops import END_OF_TURN_TOKENS

    vocab = tokenizer.get_vocab()
    expected = {tokenizer.eos_token_id} | {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab}
    assert stop_token_ids(tokenizer) == expected


def test_the_checks_look_at_the_first_rows_and_the_selected_one(tokenizer):
    data = [ROWS[0]] * 50
    data[40] = NO_ANSWER
    rows, numbers = rows_to_check(data, selected_row=40, limit=5)
    assert numbers == [0, 1, 2, 3, 4, 40] and rows[-1] is NO_ANSWER
    found = findings(Template.preset("chatml"), tokenizer, rows, rows=numbers)
    assert found["all_masked"].rows == (40,)  # the selected row's problem is named by its number
    assert rows_to_check(data, selected_row=2, limit=5)[1] == [0, 1, 2, 3, 4]
    assert rows_to_check(data, selected_row=99, limit=3)[1] == [0, 1, 2, 49]  # clamped


def test_without_rows_the_checks_look_at_the_example():
    assert rows_to_check(None) == ([EXAMPLE], [0])
    assert rows_to_check([], selected_row=3) == ([EXAMPLE], [0])


def test_a_huge_row_is_checked_as_far_as_training_sees_it(tokenizer):
    huge = "The keeper logged the storm. " * 70_000  # 2 MB in one turn
    answer_at_end = {
        "messages": [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": huge + "THE END"},
        ]
    }
    cut_off = {
        "messages": [
            {"role": "system", "content": huge},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "A"},
        ]
    }
    examples = [*ROWS, answer_at_end, cut_off]
    chatml = findings(Template.preset("chatml"), tokenizer, examples, max_length=256)
    masked = chatml["all_masked"]
    assert masked.rows == (3,) and "max_length (256 tokens)" in masked.explanation
    assert "stop_token" not in chatml and "system_dropped" not in chatml
    plain = findings(Template(PLAIN), tokenizer, examples, max_length=256)
    assert plain["stop_token"].rows == (0, 1, 2, 3) and plain["system_dropped"].rows == (1, 3)
    alone = findings(Template(PLAIN), tokenizer, [answer_at_end], max_length=256)
    assert "THE END" in alone["stop_token"].message  # the huge answer's end is still seen
