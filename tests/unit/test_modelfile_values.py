"""Modelfile values read back by Ollama's rules exactly as written, or refused naming the line
(ollama #6103: a SYSTEM block ended early by a line that ends with three quotes)."""

from __future__ import annotations

import re

import pytest

from workbench.export import ExportConfig, ExportError
from workbench.export.modelfile_values import ModelfileValueError, quoted, read_value
from workbench.export.ollama import commands, modelfile
from workbench.templates.template import Template

ISSUE_SYSTEM = 'Answer in two parts:\nfirst the code, ending with """\nthen the explanation.'


@pytest.mark.parametrize(
    "text",
    [
        "Be brief.",
        'Say "hi" back.',  # quotes inside one line
        'He said "yes"',  # ending with a quote
        "Two lines,\nthe second plain.",
        'A line that ends with a quote"\nand then another.',  # not three: a block still holds
        '""starts with two quotes',
        "  spaces around  ",
        "tab\tinside",
        "",
        'ends with three """',  # the last line may: the block's own quotes follow
        "café, naïve, 日本語",
    ],
)
def test_a_value_reads_back_exactly_as_given(text):
    form = quoted(text)
    assert read_value(form + "\n") == (text, len(form))


def test_the_issue_system_prompt_is_refused_naming_its_line():
    with pytest.raises(ModelfileValueError, match='line 2 ends with """') as refused:
        quoted(ISSUE_SYSTEM)
    assert refused.value.line == 2


@pytest.mark.parametrize(
    "text, named",
    [("na\u200bive", "U+200B ZERO WIDTH SPACE"), ("bell\x07", "U+0007"), ("a\u2028b", "U+2028")],
)
def test_characters_ollama_drops_are_refused_by_name(text, named):
    with pytest.raises(ModelfileValueError, match=re.escape(named)):
        quoted(text)


def test_an_export_config_refuses_the_system_prompt_before_any_work():
    with pytest.raises(ExportError, match="system_prompt .* line 2"):
        ExportConfig(format="ollama", system_prompt=ISSUE_SYSTEM)
    assert ExportConfig(format="merged", system_prompt=ISSUE_SYSTEM)  # only Ollama reads it


def test_every_modelfile_value_reads_back(tiny_model_dir):
    """SYSTEM, TEMPLATE and each stop, read the way Ollama reads the file, are what was meant."""
    from workbench import models

    tokenizer = models.load_tokenizer(models.as_spec(str(tiny_model_dir)))
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    system = 'Reply in JSON: {"answer": "..."}\nNo prose.'
    text, _ = modelfile("model.F16.gguf", template, tokenizer, system)
    commands_read = _read_modelfile(text)
    assert ("SYSTEM", system) in commands_read
    assert any(name == "TEMPLATE" and "<|im_start|>" in value for name, value in commands_read)
    assert ("PARAMETER", "stop <|im_end|>") in commands_read
    assert ("FROM", "./model.F16.gguf") in commands_read
    with pytest.raises(ExportError, match="SYSTEM cannot be written as given: line 2"):
        modelfile("model.F16.gguf", template, tokenizer, ISSUE_SYSTEM)


def test_the_create_command_quotes_a_folder_with_spaces():
    assert commands("/tmp/my exports/run 1", "run-1")[0] == (
        "ollama create run-1 -f '/tmp/my exports/run 1/Modelfile'"
    )


def _read_modelfile(text: str) -> list[tuple[str, str]]:
    """(command, value) pairs as Ollama's parser reads them: comments skipped, each value by
    read_value; `PARAMETER name value` keeps the name in the value."""
    out, at = [], 0
    while at < len(text):
        line_end = text.find("\n", at)
        line = text[at : line_end if line_end >= 0 else len(text)]
        if not line.strip() or line.lstrip().startswith("#"):
            at = (line_end if line_end >= 0 else len(text)) + 1
            continue
        name, _, _ = line.partition(" ")
        start = at + len(name) + 1
        if name == "PARAMETER":
            parameter = text[start:].split(" ", 1)[0]
            start += len(parameter) + 1
            value, used = read_value(text[start:])
            out.append((name, f"{parameter} {value}"))
        else:
            value, used = read_value(text[start:])
            out.append((name, value))
        at = start + used + 1
    return out
