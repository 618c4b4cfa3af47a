"""A real QLoRA run of the embedded model on the demo data, on the CPU."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_loss_goes_down_and_an_adapter_appears(trained_run):
    session, run = trained_run
    losses = [m["loss"] for m in run.metrics if "loss" in m]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    evals = [m["eval_loss"] for m in run.metrics if "eval_loss" in m]
    assert evals[-1] < evals[0]
    adapter = run.adapter_path
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "template.json"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    assert json.loads((adapter / "template.json").read_text())["source"]  # resolved Jinja
    assert session.adapters == {run.name: adapter}


def test_the_adapter_changes_the_answers(trained_run):
    import torch
    from peft import PeftModel

    from workbench import models

    session, run = trained_run
    tokenizer = models.load_tokenizer(models.DEFAULT)
    prompt = session.template.render_prompt(
        [{"role": "user", "content": "Write this in capital letters: quiet river stone"}]
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    base = models.load_model(models.DEFAULT)
    with torch.no_grad():
        before = base.generate(**ids, max_new_tokens=12, do_sample=False)
    tuned = PeftModel.from_pretrained(base, str(run.adapter_path))
    with torch.no_grad():
        after = tuned.generate(**ids, max_new_tokens=12, do_sample=False)
    n = ids["input_ids"].shape[1]
    assert tokenizer.decode(before[0, n:]) != tokenizer.decode(after[0, n:])
