"""What trains is what the row says: templates that rewrite earlier turns, per-turn training flags.

Issue 18, kinds 2 and 5. Each trained text is decoded from the labelled tokens of the default
model's tokenizer, so these are the tokens training would see.
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from workbench.templates import IGNORE_INDEX, Template, TemplateError, tokenize_with_labels
from workbench.templates.checks import check_template
from workbench.templates.jinja import template_variables
from workbench.templates.presets import PRESETS
from workbench.templates.preview import preview
from workbench.templates.spans import spans_for


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    return AutoTokenizer.from_pretrained(default_model_dir)


def trained_texts(tok, example) -> list[str]:
    """The trained tokens of an example, decoded run by run."""
    runs, current = [], []
    for token, label in [*zip(example.input_ids, example.labels), (None, IGNORE_INDEX)]:
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    return runs


def user(text: str, **flags) -> dict:
    return {"role": "user", "content": text, **flags}


def assistant(text: str, **flags) -> dict:
    return {"role": "assistant", "content": text, **flags}


# ---- kind 2: templates that rewrite earlier assistant turns ----------------------------------

THINKING_ROW = [
    user("What is 2+2?"),
    assistant("<think>add two and two</think>\n4"),
    user("And 3+3?"),
    assistant("<think>add three and three</think>\n6"),
]
QWEN3_EARLIER = r"content.split('</think>')[-1].lstrip('\n')"


def chatml_rewriting(earlier: str | None, generation: bool = False) -> str:
    """Chatml that writes the assistant turns before the last user turn as `earlier` (a Jinja
    expression of `content`; None drops them), as Qwen3's template drops their <think> part.
    With `generation`, answers are marked with {% generation %} blocks."""
    answer = r"{{- content + '<|im_end|>\n' -}}"
    if generation:
        answer = "{%- generation -%}" + answer + "{%- endgeneration -%}"
    rewrite = "{%- continue -%}" if earlier is None else "{%- set content = " + earlier + " -%}"
    return (
        "{%- set ns = namespace(last_query=-1) -%}"
        "{%- for m in messages -%}{%- if m['role'] == 'user' -%}"
        "{%- set ns.last_query = loop.index0 -%}{%- endif -%}{%- endfor -%}"
        "{%- for m in messages -%}{%- set content = m['content'] -%}"
        "{%- if m['role'] == 'assistant' and loop.index0 < ns.last_query -%}"
        + rewrite
        + "{%- endif -%}"
        r"{{- '<|im_start|>' + m['role'] + '\n' -}}"
        "{%- if m['role'] == 'assistant' -%}" + answer + "{%- else -%}"
        r"{{- content + '<|im_end|>\n' -}}{%- endif -%}{%- endfor -%}"
        r"{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
    )


def test_a_template_that_drops_earlier_thinking_trains_every_answer_as_written(tokenizer):
    template = Template(chatml_rewriting(QWEN3_EARLIER)).with_tokenizer(tokenizer)
    assert "add two and two" not in template.render(THINKING_ROW)  # it does rewrite the turn
    tokenized = template.tokenize(THINKING_ROW)
    assert trained_texts(tokenizer, tokenized) == [
        "4<|im_end|>\n",
        "<think>add three and three</think>\n6<|im_end|>\n",
    ]
    assert tokenized.unlocated_turns == ()
    last = template.with_train_on("last_assistant").tokenize(THINKING_ROW)
    assert trained_texts(tokenizer, last) == ["<think>add three and three</think>\n6<|im_end|>\n"]


SHAPES = {  # other shapes of the kind: (earlier answers written as, the row's first answer)
    "drops thinking": (QWEN3_EARLIER, "<think>add two and two</think>\n4"),
    "trims": ("content | trim", "  4 \n"),
    "adds text inside": ("'(earlier answer) ' + content", "4"),
    "keeps only thinking-free lines": (QWEN3_EARLIER, "<think>add two and two</think>4"),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train_on", ["all_assistant", "last_assistant"])
def test_rewritten_turns_train_as_the_same_template_with_generation_blocks(
    tokenizer, shape, train_on
):
    earlier, first_answer = SHAPES[shape]
    row = [user("What is 2+2?"), assistant(first_answer), *THINKING_ROW[2:]]
    plain = Template(chatml_rewriting(earlier), train_on=train_on).with_tokenizer(tokenizer)
    blocks = Template(chatml_rewriting(earlier, True), train_on=train_on).with_tokenizer(tokenizer)
    assert plain.render(row) == blocks.render(row)
    got, expected = plain.tokenize(row), blocks.tokenize(row)
    assert got.labels == expected.labels, trained_texts(tokenizer, got)
    assert got.unlocated_turns == ()
    if train_on == "all_assistant":
        assert len(trained_texts(tokenizer, got)) == 2


REASONING = r"""{%- set ns = namespace(last_query=-1) -%}
{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.last_query = loop.index0 -%}
{%- endif -%}{%- endfor -%}
{%- for m in messages -%}
{{- '<|im_start|>' + m['role'] + '\n' -}}
{%- if m['role'] == 'assistant' and loop.index0 > ns.last_query and m.reasoning_content -%}
{{- '<think>\n' + m.reasoning_content + '\n</think>\n\n' -}}
{%- endif -%}
{{- m['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"""


def test_reasoning_written_only_for_the_last_answer_trains_where_it_is_written(tokenizer):
    row = [
        user("What is 2+2?"),
        assistant("4", reasoning_content="add two and two"),
        user("And 3+3?"),
        assistant("6", reasoning_content="add three and three"),
    ]
    tokenized = Template(REASONING).with_tokenizer(tokenizer).tokenize(row)
    assert trained_texts(tokenizer, tokenized) == [
        "4<|im_end|>\n",
        "<think>\nadd three and three\n</think>\n\n6<|im_end|>\n",
    ]


REORDERED = r"""{%- for m in messages if m['role'] != 'assistant' -%}
{{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- for m in messages if m['role'] == 'assistant' -%}
{{- '<|im_start|>assistant\n' -}}{%- generation -%}{{- m['content'] + '<|im_end|>\n' -}}
{%- endgeneration -%}{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"""


def test_answers_moved_elsewhere_train_where_the_template_writes_them(tokenizer):
    row = [user("What is 2+2?"), assistant("4"), user("And 3+3?"), assistant("6")]
    blocks = Template(REORDERED).with_tokenizer(tokenizer)
    plain = Template(
        REORDERED.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    )
    got = plain.with_tokenizer(tokenizer).tokenize(row)
    assert trained_texts(tokenizer, got) == ["4<|im_end|>\n", "6<|im_end|>\n"]
    assert got.labels == blocks.tokenize(row).labels


SUMMARY = r"""{%- set ns = namespace(last_query=-1) -%}
{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.last_query = loop.index0 -%}
{%- endif -%}{%- endfor -%}
{{- '<|im_start|>system\nEarlier answers: ' -}}
{%- for m in messages[:ns.last_query] if m['role'] == 'assistant' -%}{{- m['content'] + '; ' -}}
{%- endfor -%}{{- '<|im_end|>\n' -}}
{%- for m in messages -%}
{%- if KEEP or m['role'] != 'assistant' or loop.index0 > ns.last_query -%}
{{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}
{%- endif -%}{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"""
PLAIN_ROW = [user("What is 2+2?"), assistant("4"), user("And 3+3?"), assistant("6")]


def test_an_answer_also_quoted_in_a_summary_trains_in_its_turn_only(tokenizer):
    template = Template(SUMMARY.replace("KEEP", "true")).with_tokenizer(tokenizer)
    assert template.render(PLAIN_ROW).count("4") == 2
    got = template.tokenize(PLAIN_ROW)
    assert trained_texts(tokenizer, got) == ["4<|im_end|>\n", "6<|im_end|>\n"]
    assert got.unlocated_turns == ()


@pytest.mark.parametrize(
    ("source", "row"),
    [
        (chatml_rewriting(None), THINKING_ROW),  # drops earlier answers
        (chatml_rewriting("content | upper"), PLAIN_ROW[:1] + [assistant("four")] + PLAIN_ROW[2:]),
        (SUMMARY.replace("KEEP", "false"), PLAIN_ROW),  # earlier answers only in a summary
    ],
    ids=["dropped", "rewritten beyond recognition", "only in a summary"],
)
def test_an_answer_that_cannot_be_located_does_not_train_and_is_reported(tokenizer, source, row):
    template = Template(source).with_tokenizer(tokenizer)
    tokenized = template.tokenize(row)
    assert tokenized.unlocated_turns == (1,)
    assert trained_texts(tokenizer, tokenized) == [f"{row[3]['content']}<|im_end|>\n"]
    fast = spans_for(source, row, "all_assistant", template_variables(tokenizer))
    assert fast == spans_for(source, row, "all_assistant", template_variables(tokenizer), False)


def test_the_check_names_the_turn_and_the_rows_that_do_not_train(tokenizer):
    template = Template(chatml_rewriting(None)).with_tokenizer(tokenizer)
    rows = [THINKING_ROW, PLAIN_ROW[:2], PLAIN_ROW]
    found = [
        w for w in check_template(template, rows, rows=[0, 3, 5]) if w.check == "answer_not_found"
    ]
    assert len(found) == 1
    warning = found[0]
    assert warning.rows == (0, 5)
    assert warning.message.startswith("Message 1 (assistant) of rows 0, 5 is not written as given")
    assert "does not train" in warning.message and warning.fix
    qwen3_like = Template(chatml_rewriting(QWEN3_EARLIER)).with_tokenizer(tokenizer)
    assert not [w for w in check_template(qwen3_like, rows) if w.check == "answer_not_found"]


def test_every_preset_trains_the_same_on_its_fast_path_with_flags(tokenizer):
    variables = template_variables(tokenizer)
    rows = [FLAGGED, [*FLAGGED[:2], *FLAGGED[2:3], assistant("Sure.", train=True)]]
    for name in ["model", *PRESETS]:
        source = Template.preset(name).with_tokenizer(tokenizer).jinja
        for train_on in ("all_assistant", "last_assistant", "all"):
            for row in rows:
                fast = spans_for(source, row, train_on, variables)
                assert fast == spans_for(source, row, train_on, variables, fast=False), name


# ---- kind 5: per-turn training flags -----------------------------------------------------------

RUDE = "Whatever. What do you want?"
SORRY = "Of course, sorry. How can I help?"
FLAGGED = [user("Hi"), assistant(RUDE, weight=0), user("That was rude."), assistant(SORRY)]


def with_flag(key: str, value) -> list[dict]:
    return [FLAGGED[0], assistant(RUDE, **{key: value}), *FLAGGED[2:]]


@pytest.mark.parametrize(
    ("key", "value"), [("weight", 0), ("loss", False), ("train", False), ("training", False)]
)
@pytest.mark.parametrize("preset", ["chatml", "model"])
def test_a_turn_flagged_not_to_train_does_not_train(tokenizer, key, value, preset):
    template = Template.preset(preset).with_tokenizer(tokenizer)
    tokenized = template.tokenize(with_flag(key, value))
    assert trained_texts(tokenizer, tokenized) == [f"{SORRY}<|im_end|>\n"]


@pytest.mark.parametrize(
    ("key", "value"), [("weight", 1), ("loss", True), ("train", True), ("training", True)]
)
def test_a_turn_flagged_to_train_trains_even_when_only_the_last_answer_would(tokenizer, key, value):
    both = [f"{RUDE}<|im_end|>\n", f"{SORRY}<|im_end|>\n"]
    for train_on in ("all_assistant", "last_assistant"):
        template = Template.preset("chatml", train_on=train_on).with_tokenizer(tokenizer)
        assert trained_texts(tokenizer, template.tokenize(with_flag(key, value))) == both


def test_the_last_answer_flagged_not_to_train_leaves_nothing_under_last_assistant(tokenizer):
    row = [*FLAGGED[:3], assistant(SORRY, loss=False)]
    template = Template.preset("chatml", train_on="last_assistant").with_tokenizer(tokenizer)
    assert template.tokenize(row).num_trained == 0


def test_flags_mask_their_turn_when_everything_trains(tokenizer):
    template = Template.preset("chatml", train_on="all").with_tokenizer(tokenizer)
    got = trained_texts(tokenizer, template.tokenize(FLAGGED))
    assert len(got) == 2 and RUDE not in "".join(got)
    assert got[0].endswith("<|im_start|>assistant\n") and SORRY in got[1]


def test_under_all_a_flag_the_template_cannot_apply_is_reported(tokenizer):
    dropped = Template(chatml_rewriting(None), train_on="all").with_tokenizer(tokenizer)
    nothing_to_mask = dropped.tokenize(FLAGGED)  # the template never writes the flagged answer
    assert nothing_to_mask.unlocated_turns == () and nothing_to_mask.num_trained > 0
    upper = Template(chatml_rewriting("content | upper"), train_on="all").with_tokenizer(tokenizer)
    still_trains = upper.tokenize(FLAGGED)
    assert still_trains.unlocated_turns == (1,)
    assert RUDE.upper() in "".join(trained_texts(tokenizer, still_trains))
    found = [w for w in check_template(upper, [FLAGGED]) if w.check == "answer_not_found"]
    assert "flag not to train cannot be applied" in found[0].message


def test_a_user_turn_flagged_to_train_trains_its_text_and_end_token(tokenizer):
    row = [FLAGGED[0], assistant(RUDE), user("That was rude.", train=True), assistant(SORRY)]
    template = Template.preset("chatml", train_on="last_assistant").with_tokenizer(tokenizer)
    got = trained_texts(tokenizer, template.tokenize(row))
    assert got == ["That was rude.<|im_end|>\n", f"{SORRY}<|im_end|>\n"]


def test_flags_follow_generation_blocks_too(tokenizer):
    blocks = Template(chatml_rewriting(QWEN3_EARLIER, generation=True)).with_tokenizer(tokenizer)
    assert trained_texts(tokenizer, blocks.tokenize(FLAGGED)) == [f"{SORRY}<|im_end|>\n"]


def test_flags_never_reach_the_template(tokenizer):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    plain = [{k: v for k, v in m.items() if k != "weight"} for m in FLAGGED]
    assert template.render(FLAGGED) == template.render(plain)
    dumps = Template("{{ messages | tojson }}").with_tokenizer(tokenizer)
    assert "weight" not in dumps.render(FLAGGED)


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ({"weight": 0.5}, r"Message 1 has weight=0\.5"),
        ({"loss": "false"}, r"Message 1 has loss='false'"),
        ({"weight": 1, "loss": False}, "Message 1 has training flags that disagree"),
    ],
)
def test_a_bad_flag_is_refused_naming_the_message(tokenizer, flags, error):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    with pytest.raises(TemplateError, match=error):
        template.tokenize([FLAGGED[0], assistant(RUDE, **flags)])


def test_the_preview_shows_the_flagged_answer_as_masked(tokenizer):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    shown = preview(template, {"messages": FLAGGED})
    trained = [text for text, is_trained in shown.segments() if is_trained]
    assert trained == [f"{SORRY}<|im_end|>\n"]
    masked = "".join(text for text, is_trained in shown.segments() if not is_trained)
    assert RUDE in masked and shown.text == template.render(FLAGGED)


def test_flags_in_a_batch_match_one_row_at_a_time(tokenizer):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    rows = [FLAGGED, with_flag("train", True), THINKING_ROW, PLAIN_ROW]
    assert tokenize_with_labels(template, rows) == [template.tokenize(r) for r in rows]


def test_a_row_whose_answers_are_all_flagged_off_is_said_to_be_so(tokenizer):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    found = check_template(template, [FLAGGED[:2], FLAGGED], rows=[4, 7])
    masked = [w for w in found if w.check == "all_masked"]
    assert len(masked) == 1 and masked[0].rows == (4,)
    assert "flagged not to train" in masked[0].explanation


def test_a_template_that_looks_into_answers_never_takes_the_fast_path_wrongly(tokenizer):
    # the sentinels of the fast path would defeat startswith() and keep the <think> part
    looks = chatml_rewriting(
        r"content.split('</think>')[-1].lstrip('\n') if content.startswith('<think>') else content"
    )
    template = Template(looks).with_tokenizer(tokenizer)
    variables = template_variables(tokenizer)
    batch = tokenize_with_labels(template, [PLAIN_ROW, THINKING_ROW])  # row 0 checks the fast path
    assert spans_for(looks, THINKING_ROW, "all_assistant", variables).text == template.render(
        THINKING_ROW
    )
    assert trained_texts(tokenizer, batch[1]) == [
        "4<|im_end|>\n",
        "<think>add three and three</think>\n6<|im_end|>\n",
    ]
