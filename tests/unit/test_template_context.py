"""A row's `tools` and `documents` reach its chat template wherever the row is rendered, as
transformers' apply_chat_template passes them (trl PR #6259, OpenRLHF PR #1228)."""

from __future__ import annotations

import pytest

from workbench.answers.generate import GenerationSettings
from workbench.session.export import with_context
from workbench.templates import TemplateError
from workbench.templates.context import row_context
from workbench.templates.preview import preview
from workbench.templates.template import Template

TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{%- endif %}"
    "{%- if documents %}<|im_start|>system\n{% for d in documents %}[{{ d.title }}] "
    "{{ d.text }}\n{% endfor %}<|im_end|>\n{%- endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ISSUE_ROW = {
    "messages": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18 C, sunny"},
        {"role": "assistant", "content": "It is 18 C and sunny in Paris."},
    ],
    "tools": [WEATHER],
}


@pytest.fixture
def tools_session(session):
    session.load_dataset([ISSUE_ROW], tool_turns="as_text")
    session.set_template(Template(TOOL_TEMPLATE, "tool-chatml"))
    return session


def test_the_trained_text_holds_the_schema_as_transformers_renders_it(tools_session):
    s = tools_session
    row = s.dataset[0]
    trained = s.tokenizer.decode(s.template.tokenize(row).input_ids)
    expected = s.tokenizer.apply_chat_template(
        row["messages"], tools=[WEATHER], chat_template=TOOL_TEMPLATE, tokenize=False
    )
    assert "The weather of a city" in trained and trained == expected


def test_the_load_says_what_the_tools_column_is_for(tools_session):
    (use,) = tools_session.dataset.load_report.uses
    assert use.startswith("column 'tools': passed to the chat template as `tools`")


def test_the_mask_view_shows_the_schema(tools_session):
    shown = preview(tools_session.template, tools_session.dataset[0])
    assert "get_weather" in shown.text and "get_weather" in "".join(t.text for t in shown.tokens)


def test_an_answer_to_a_row_is_prompted_with_its_tools(tools_session):
    s = tools_session
    row = {"messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": [WEATHER]}
    text = s.generator.render("base", row, GenerationSettings())
    assert "The weather of a city" in text and text.endswith("<|im_start|>assistant")
    assert isinstance(s.generate(row, max_new_tokens=4), str)


def test_the_export_probes_keep_a_rows_tools():
    row = {"messages": ISSUE_ROW["messages"], "tools": [WEATHER], "id": 7}
    probe = with_context(row, row["messages"][:2])
    assert probe == {"tools": [WEATHER], "messages": row["messages"][:2]}
    assert with_context({"messages": []}, [{"role": "user", "content": "x"}]) == [
        {"role": "user", "content": "x"}
    ]


def test_documents_reach_the_template_too(session):
    docs = [{"title": "Tides", "text": "The moon pulls the sea."}]
    row = {
        "messages": [
            {"role": "user", "content": "Why tides?"},
            {"role": "assistant", "content": "The moon."},
        ]
    }
    session.load_dataset([{**row, "documents": docs}])
    session.set_template(Template(TOOL_TEMPLATE, "tool-chatml"))
    assert "[Tides] The moon pulls the sea." in session.template.render(session.dataset[0])


@pytest.mark.parametrize(
    "given, expected",
    [
        ('[{"name": "f"}]', {"tools": [{"name": "f"}]}),  # JSON text, as a CSV column holds it
        ([{"name": "f", "description": None}], {"tools": [{"name": "f"}]}),  # Arrow's filled nulls
        ([], {}),
        (None, {}),
    ],
)
def test_tools_are_read_from_text_or_lists(given, expected):
    assert row_context({"messages": [], "tools": given}) == expected


def test_tools_that_are_not_a_list_are_refused_naming_the_column():
    with pytest.raises(TemplateError, match="row's tools is dict; give a list"):
        row_context({"messages": [], "tools": {"name": "f"}})
