"""The Modelfile's TEMPLATE as Ollama renders it: Go's own text/template (tests/ollama_go), fed
each conversation in the shape Ollama's server gives its templates, against the Jinja render
the model was trained with. Needs Go (Debian's golang-go; `make go` installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import workbench as wb
from workbench import models
from workbench.export.ollama import GO_TEMPLATES, modelfile, ollama_template, with_system

RENDERER = Path(__file__).resolve().parents[1] / "ollama_go"

CONVERSATIONS = {
    "one turn": [{"role": "user", "content": "Name a colour."}],
    "system": [{"role": "system", "content": "Be short."}, {"role": "user", "content": "One?"}],
    "turns": [
        {"role": "user", "content": "A?"},
        {"role": "assistant", "content": "B."},
        {"role": "user", "content": "C?"},
    ],
    "system and turns": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Deux."},
        {"role": "user", "content": "Three?"},
    ],
    "tool result": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me look."},
        {"role": "tool", "content": '{"temperature": 18}'},
        {"role": "user", "content": "So?"},
    ],
}


@pytest.fixture(scope="module")
def go_render(tmp_path_factory):
    """A function rendering (template, messages) pairs with the Go program, built once."""
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain: `make go` installs Debian's golang-go")
    binary = tmp_path_factory.mktemp("go") / "ollama_go"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    built = subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=RENDERER, env=env, capture_output=True
    )
    assert built.returncode == 0, built.stderr.decode()

    def render(cases: list[tuple[str, list[dict]]]) -> list[str]:
        given = [{"template": t, "messages": m, "tools": []} for t, m in cases]
        ran = subprocess.run([str(binary)], input=json.dumps(given).encode(), capture_output=True)
        assert ran.returncode == 0, ran.stderr.decode()
        results = json.loads(ran.stdout)
        errors = [r["error"] for r in results if r.get("error")]
        assert not errors, errors
        return [r["text"] for r in results]

    return render


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return models.load_tokenizer(models.ModelSpec(str(tiny_model_dir)))


def renders_alike(go_render, template: wb.Template, tokenizer) -> dict[str, tuple[str, str]]:
    """For each conversation the Jinja template renders: (Jinja's prompt, Go's prompt) of the
    Modelfile TEMPLATE the export writes, with its SYSTEM inserted as Ollama does."""
    mapped = ollama_template(template, tokenizer)
    assert mapped is not None, template.name
    jinja = template.with_tokenizer(tokenizer)
    expected = {}
    for name, conversation in CONVERSATIONS.items():
        try:
            expected[name] = jinja.render_prompt(conversation)
        except Exception:  # a template that refuses a role (a tool turn): nothing to compare
            continue
    cases = [(mapped.go, with_system(CONVERSATIONS[n], mapped.system)) for n in expected]
    return dict(zip(expected, zip(expected.values(), go_render(cases))))


@pytest.mark.parametrize("preset", list(GO_TEMPLATES))
def test_each_presets_modelfile_template_renders_in_go_as_jinja_does(go_render, tokenizer, preset):
    pairs = renders_alike(go_render, wb.Template.preset(preset), tokenizer)
    assert {"one turn", "system", "turns", "system and turns"} <= set(pairs)
    for name, (jinja, go) in pairs.items():
        assert go == jinja, f"{preset}, {name}"


def test_tool_results_reach_ollama_as_they_trained(go_render, tokenizer):
    for preset in ("chatml", "llama3"):
        pairs = renders_alike(go_render, wb.Template.preset(preset), tokenizer)
        assert pairs["tool result"][1] == pairs["tool result"][0], preset


def test_the_models_own_template_renders_in_go_with_its_system_line(go_render, tokenizer):
    own = wb.Template.preset("model")  # SmolLM2's: chatml with a default system message
    pairs = renders_alike(go_render, own, tokenizer)
    assert "You are a helpful AI assistant named SmolLM" in pairs["one turn"][1]
    for name, (jinja, go) in pairs.items():
        assert go == jinja, name


def test_a_template_that_drops_the_system_turn_is_caught(go_render, tokenizer):
    mapped = ollama_template(wb.Template.preset("chatml"), tokenizer)
    faulty = mapped.go.replace(
        "{{ range .Messages }}", '{{ range .Messages }}{{ if ne .Role "system" }}'
    )
    faulty = faulty.replace(
        "{{ end }}<|im_start|>assistant", "{{ end }}{{ end }}<|im_start|>assistant"
    )
    jinja = wb.Template.preset("chatml").with_tokenizer(tokenizer)
    conversation = CONVERSATIONS["system"]
    (go,) = go_render([(faulty, conversation)])
    assert go != jinja.render_prompt(conversation) and "Be short." not in go


def test_a_custom_template_says_ollama_uses_its_own_and_how_to_write_one(tokenizer):
    custom = wb.Template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}", name="bare")
    text, note = modelfile("m.gguf", custom, tokenizer)
    assert not any(line.startswith("TEMPLATE") for line in text.splitlines())
    assert "Ollama picks a template of its own" in note and "docs/template.md" in note
    assert "llama-server --jinja" in note and note in text
