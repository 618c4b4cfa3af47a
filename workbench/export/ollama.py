"""Ollama: a Modelfile beside the GGUF, with the training template in Ollama's template language.

Ollama renders prompts with Go templates, not Jinja, so each preset has a hand-written Go
equivalent here. A template is mapped only when it renders exactly as one of the presets on a
set of probe conversations (a "model" template that is a preset plus a default system message,
like SmolLM2's, maps with that message as SYSTEM). Stop strings are the end-of-turn token and
the next turn's header. A custom template with no mapping gets no TEMPLATE and a clear note:
the GGUF still carries the Jinja, which llama.cpp uses (llama-server --jinja).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..templates.template import Template
from .config import ExportError
from .modelfile_values import ModelfileValueError, quoted
from .turns import end_of_turn

SENTINEL = "\x00system\x00"

# Go templates (Ollama's .Messages form). {bos}/{eos} become the tokenizer's own tokens. Ollama
# keeps system messages in .Messages and also joins them in .System; it inserts the Modelfile's
# SYSTEM as a system message when a request has none.
GO_TEMPLATES = {
    "chatml": "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n",
    "phi3": "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
    "zephyr": "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}{eos}\n{{ end }}<|assistant|>\n",
    "llama3": "{{ if .Messages }}{bos}{{ end }}{{ range .Messages }}<|start_header_id|>"
    "{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "alpaca": "{{ if .System }}{{ .System }}\n\n{{ end }}{{ range .Messages }}"
    '{{ if eq .Role "user" }}### Instruction:\n{{ .Content }}\n\n'
    '{{ else if eq .Role "assistant" }}### Response:\n{{ .Content }}{eos}\n\n{{ end }}'
    "{{ end }}### Response:\n",
    "vicuna": "{{ if .System }}{{ .System }} {{ end }}{{ range .Messages }}"
    '{{ if eq .Role "user" }}USER: {{ .Content }} '
    '{{ else if eq .Role "assistant" }}ASSISTANT: {{ .Content }}{eos}{{ end }}{{ end }}ASSISTANT:',
    "mistral": "{bos}{{ $first := true }}{{ range .Messages }}"
    '{{ if eq .Role "user" }}[INST] {{ if and $first $.System }}{{ $.System }}\n\n{{ end }}'
    "{{ .Content }} [/INST]{{ $first = false }}"
    '{{ else if eq .Role "assistant" }}{{ .Content }}{eos}{{ $first = false }}{{ end }}{{ end }}',
    "gemma": '{bos}{{ $first := true }}{{ range .Messages }}{{ if ne .Role "system" }}'
    '<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n'
    "{{ if and $first $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}<end_of_turn>\n"
    "{{ $first = false }}{{ end }}{{ end }}<start_of_turn>model\n",
}
# The header of the next turn: a model that runs on past its end of turn stops there too.
NEXT_TURN = {
    "chatml": ["<|im_start|>"],
    "phi3": ["<|user|>", "<|assistant|>"],
    "zephyr": ["<|user|>"],
    "llama3": ["<|start_header_id|>"],
    "alpaca": ["### Instruction:"],
    "vicuna": ["USER:"],
    "mistral": ["[INST]"],
    "gemma": ["<start_of_turn>"],
}
PROBE_CONVERSATIONS = (
    [{"role": "user", "content": "Hi there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
    [
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": "Three?"},
    ],
    [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Deux."},
        {"role": "user", "content": "Three?"},
    ],
)


@dataclass(frozen=True)
class OllamaTemplate:
    """A training template as Ollama serves it: the preset it matches, Go text, default system."""

    preset: str
    go: str
    system: str | None


def ollama_template(template: Template, tokenizer) -> OllamaTemplate | None:
    """The Go template that renders exactly as `template`, or None when no preset matches."""
    target = template.with_tokenizer(tokenizer)
    for name, go in GO_TEMPLATES.items():
        preset = Template.preset(name).with_tokenizer(tokenizer)
        try:
            system = default_system(target, preset)
            same = all(
                target.render_prompt(c) == preset.render_prompt(with_system(c, system))
                for c in PROBE_CONVERSATIONS
            )
        except Exception:  # a template that cannot render a probe matches nothing
            continue
        if same:
            go = go.replace("{bos}", tokenizer.bos_token or "").replace(
                "{eos}", tokenizer.eos_token or ""
            )
            return OllamaTemplate(name, go, system)
    return None


def default_system(target: Template, preset: Template) -> str | None:
    """The system message `target` writes when a conversation has none, read against `preset`."""
    user = PROBE_CONVERSATIONS[0]
    text = target.render_prompt(user)
    marked = preset.render_prompt([{"role": "system", "content": SENTINEL}, *user])
    if SENTINEL not in marked:
        return None
    before, after = marked.split(SENTINEL, 1)
    if text.startswith(before) and text.endswith(after) and len(text) > len(before + after):
        return text[len(before) : len(text) - len(after)]
    return None


def with_system(conversation: list[dict], system: str | None) -> list[dict]:
    """The conversation as Ollama sees it: SYSTEM first when it has no system message."""
    if system is None or any(m["role"] == "system" for m in conversation):
        return conversation
    return [{"role": "system", "content": system}, *conversation]


def stop_strings(template: Template, tokenizer, preset: str | None) -> list[str]:
    """PARAMETER stop values: the end-of-turn token, then the next turn's header."""
    stops = []
    token = end_of_turn(template, tokenizer)
    if token:
        stops.append(token)
    elif tokenizer.eos_token:
        stops.append(tokenizer.eos_token)
    stops += [s for s in NEXT_TURN.get(preset or "", []) if s not in stops]
    return stops


def modelfile(
    gguf_name: str, template: Template, tokenizer, system_prompt: str | None = None
) -> tuple[str, str | None]:
    """The Modelfile's text, and a note for a person when the template has no Ollama mapping.
    Every value is written so that Ollama reads it back as given (modelfile_values); ExportError
    names the command and line of one that cannot be."""
    mapped = ollama_template(template, tokenizer)
    lines = [
        f"# Written by the tuning workbench: template {template.name!r}, stops as trained.",
        f"FROM ./{gguf_name}",
    ]
    note = None
    if mapped is not None:
        lines.append(f"TEMPLATE {_value('TEMPLATE', mapped.go)}")
    else:
        note = (
            f"The template {template.name!r} matches none of the presets this export has an "
            f"Ollama template for ({', '.join(GO_TEMPLATES)}), so the Modelfile has no TEMPLATE "
            "and Ollama picks a template of its own (the nearest of its built-in ones to the "
            "GGUF's Jinja, else the bare prompt), which may not write the turns as trained. "
            "Write a TEMPLATE in Go's template language (github.com/ollama/ollama/blob/main/"
            "docs/template.md; the presets' templates in workbench.export.ollama are examples), "
            "or serve the GGUF with llama.cpp (llama-server --jinja), which uses the Jinja "
            "template the GGUF carries."
        )
        lines.append("# No TEMPLATE: " + note)
    system = system_prompt if system_prompt is not None else (mapped and mapped.system)
    if system:
        lines.append(f"SYSTEM {_value('SYSTEM', system)}")
    for stop in stop_strings(template, tokenizer, mapped and mapped.preset):
        lines.append(f"PARAMETER stop {_value('PARAMETER stop', stop)}")
    return "\n".join(lines) + "\n", note


def _value(command: str, text: str) -> str:
    try:
        return quoted(text)
    except ModelfileValueError as e:
        raise ExportError(f"The Modelfile's {command} cannot be written as given: {e}.") from None


def ollama_name(name: str) -> str:
    """A model name Ollama accepts, from a run or adapter name."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return cleaned or "tuned-model"


def commands(folder: str, name: str) -> list[str]:
    """The commands that make the model known to Ollama and chat with it."""
    modelfile_path = shlex.quote(f"{folder}/Modelfile")
    return [
        f"ollama create {ollama_name(name)} -f {modelfile_path}",
        f"ollama run {ollama_name(name)}",
    ]
