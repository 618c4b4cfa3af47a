"""TemplateEditor: its controls change the Session, its preview follows the Session, bad Jinja
is refused with a message while the Session keeps its last valid template."""

from __future__ import annotations

import re

import pytest

from widgets.template.template_editor import TemplateEditor
from workbench.templates import Template
from workbench.templates.presets import PRESETS


@pytest.fixture
def editor(session, chat_rows):
    session.load_dataset(chat_rows)
    view = TemplateEditor(session)
    yield view
    view.close()


def shown_html(view: TemplateEditor) -> str:
    parts = [view.counts, view.text_view, view.token_view, view.warnings]
    return "".join(w.value for w in [*parts, view.message.message, view.message.details])


def counts(view: TemplateEditor) -> tuple[int, int]:
    trained, total = re.findall(r"<b>(\d+)</b>", view.counts.value)
    return int(trained), int(total)


def test_choosing_a_preset_sets_the_sessions_template_and_shows_its_jinja(editor, session):
    editor.preset.value = "alpaca"
    assert session.template.name == "alpaca"
    assert editor.jinja.value == PRESETS["alpaca"]
    assert "### Response:" in editor.text_view.value


def test_train_on_follows_into_the_session(editor, session):
    editor.preset.value = "model"
    editor.train_on.value = "last_assistant"
    assert session.template.name == "model" and session.template.source is None
    editor.preset.value = "chatml"
    editor.train_on.value = "last_assistant"
    assert (session.template.name, session.template.train_on) == ("chatml", "last_assistant")
    editor.train_on.value = "all"
    trained, total = counts(editor)
    assert trained == total


def test_editing_the_jinja_sets_a_custom_template(editor, session):
    source = PRESETS["chatml"].replace("'\\n'", "'\\n\\n'")
    editor.jinja.value = source
    assert session.template.source == source and session.template.name == "custom"
    assert editor.preset.value == "custom"
    assert editor.message.text == ""


@pytest.mark.parametrize(
    ("jinja", "message"),
    [
        ("{% for m in messages %}\n{{ m.content }\n", "line 2"),
        ("{{ raise_exception('roles must alternate') }}", "roles must alternate"),
        ("{# renders nothing #}", "empty"),
        ("{% for m in messages if m.role == 'user' %}{{ m.content }}{% endfor %}", "never writes"),
        ("{{ ''.__class__.__mro__ }}", "sandbox"),
    ],
)
def test_bad_jinja_is_refused_and_the_session_keeps_its_template(editor, session, jinja, message):
    editor.preset.value = "chatml"
    editor.jinja.value = jinja
    assert session.template.name == "chatml" and session.template.source == PRESETS["chatml"]
    assert message in editor.message.text and "keeps its last valid template" in editor.message.text
    assert editor.message.level == "error"
    assert editor.message.details_box.layout.display != "none"  # details one click away
    assert "Traceback" in editor.message.details.value
    assert editor.jinja.value == jinja  # the draft stays, to be fixed
    editor.jinja.value = PRESETS["zephyr"]  # fixing it applies and clears the message
    assert session.template.name == "zephyr" and editor.message.text == ""


def test_the_preview_shows_exactly_what_trains(editor, session):
    editor.preset.value = "chatml"
    session.select(2)
    row = session.dataset[2]
    tokenized = session.template.tokenize(row, max_length=session.max_length)
    assert counts(editor) == (tokenized.num_trained, len(tokenized.input_ids))
    assert "Row 2." in editor.counts.value
    assert editor.token_view.value.count("tw-tok tw-trained") == tokenized.num_trained
    trained = re.findall(r"<span class='tw-trained'>(.*?)</span>", editor.text_view.value, re.S)
    assert trained == ["c, b, a&lt;|im_end|&gt;\n"]
    assert "tw-special" in editor.token_view.value  # <|im_start|> and <|im_end|> stand out


def test_the_preview_follows_selection_edits_and_new_data(editor, session):
    session.select(1)
    assert "What is 2+3?" in editor.text_view.value
    session.edit(
        1, [{"role": "user", "content": "Edited?"}, {"role": "assistant", "content": "Yes"}]
    )
    assert "Edited?" in editor.text_view.value
    session.load_dataset([{"messages": [{"role": "user", "content": "Fresh"}]}])
    assert "Fresh" in editor.text_view.value
    assert "train nothing" in editor.warnings.value


def test_row_and_template_text_is_escaped(editor, session):
    attack = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    session.edit(0, [{"role": "user", "content": attack}, {"role": "assistant", "content": attack}])
    session.select(0)
    editor.jinja.value = "{{ '<b>' }}" + PRESETS["chatml"]
    bad = "{{ raise_exception('<script>x</script>') }}"
    editor.jinja.value = bad
    page = shown_html(editor)
    assert "&lt;script&gt;" in page and "&lt;img" in page
    assert "<script" not in page and "<img" not in page and "<b>&lt;" not in page


def test_warnings_explain_the_problem_and_the_fix(editor, session):
    editor.jinja.value = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    assert "do not end with a token generation stops on" in editor.warnings.value
    assert "Fix:" in editor.warnings.value and "<details>" in editor.warnings.value
    editor.preset.value = "chatml"
    assert "do not end with a token" not in editor.warnings.value


def test_an_informational_note_is_not_a_warning():
    from widgets.template.template_editor import _warnings_html
    from workbench.templates.checks import TemplateWarning

    note = TemplateWarning(
        "pad_is_eos", "EOS stays trained.", "Why.", "Nothing to do.", severity="info"
    )
    shown = _warnings_html([note])
    assert shown.startswith("<div class='tw-ok'>✓ No problems found")
    assert "tw-warning" not in shown and "Fix:" not in shown and "Note: EOS stays trained." in shown


def test_the_editor_follows_template_changes_made_elsewhere(editor, session):
    session.set_template("phi3", train_on="last_assistant")
    assert (editor.preset.value, editor.train_on.value) == ("phi3", "last_assistant")
    assert editor.jinja.value == PRESETS["phi3"]
    session.set_template(Template("{% for m in messages %}{{ m.content }}\n{% endfor %}"))
    assert editor.preset.value == "custom"


def test_without_a_dataset_an_example_is_previewed(session):
    view = TemplateEditor(session)
    assert "example conversation" in view.counts.value
    assert counts(view)[0] > 0
    view.close()


def test_a_closed_editor_stops_listening(editor, session):
    editor.close()
    before = editor.text_view.value
    session.set_template("alpaca")
    assert editor.text_view.value == before


def test_a_10_mb_row_shows_what_training_sees_and_says_what_was_left_out(session, chat_rows):
    huge = "The keeper logged the storm again. " * 290_000  # 10 MB in one user turn
    answer = {"role": "assistant", "content": "Noted."}
    session.load_dataset([*chat_rows, {"messages": [{"role": "user", "content": huge}, answer]}])
    view = TemplateEditor(session)
    view.preset.value = "chatml"
    session.select(3)
    page = shown_html(view)
    assert len(page.encode()) < 100_000 and "The keeper logged" in view.text_view.value
    assert counts(view) == (0, session.max_length)  # the answer lies past max_length
    left_out = int(
        re.search(r"left out: ([\d,]+) characters of message 0", page)[1].replace(",", "")
    )
    assert 9_900_000 < left_out < len(huge)
    view.close()
