"""Bad adapter folders are refused with the file named, before PEFT opens anything; no pickle loads."""

from __future__ import annotations

import json
import pickle

import pytest

import workbench as wb
from workbench import models
from workbench.answers.adapters import AdapterError, write_random_adapter


def make_adapter(session, folder, spec=None, model_dir=None):
    base = models.load_model(models.as_spec(model_dir) if model_dir else session.model)
    template = session.template
    return write_random_adapter(base, folder, spec or session.model, template, seed=3)


def refused(session, folder, match):
    with pytest.raises(AdapterError, match=match) as caught:
        session.generate("Hi", model=str(folder), max_new_tokens=2)
    assert session.contestants == ["base"]  # nothing was attached
    assert session.generator._hosts["base"].peft is None
    return str(caught.value)


class Boom:
    """Unpickling this creates a marker file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_weight_file_is_refused_and_never_unpickled(session, tmp_path, monkeypatch):
    import torch

    folder = make_adapter(session, tmp_path / "adapter")
    (folder / "adapter_model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(Boom(marker)))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    message = refused(session, folder, "adapter_model.bin")
    assert "pickle" in message and "not opened" in message
    assert not marker.exists()


def test_an_adapter_for_another_base_model_is_refused(session, tmp_path):
    other = wb.models.ModelSpec("someone/another-model")
    folder = make_adapter(session, tmp_path / "adapter", spec=other)
    message = refused(session, folder, "base_model.json")
    assert "another-model" in message


def test_weights_that_fit_another_architecture_are_refused(session, tmp_path, default_model_dir):
    folder = make_adapter(session, tmp_path / "adapter", model_dir=default_model_dir)
    (folder / "base_model.json").unlink()  # an adapter from elsewhere: only its shapes tell
    refused(session, folder, "adapter_model.safetensors.*another model")


def test_missing_files_are_named(session, tmp_path):
    folder = make_adapter(session, tmp_path / "adapter")
    (folder / "adapter_model.safetensors").unlink()
    refused(session, folder, "adapter_model.safetensors is missing")
    folder = make_adapter(session, tmp_path / "adapter2")
    (folder / "adapter_config.json").unlink()
    refused(session, folder, "adapter_config.json is missing")


def test_corrupt_files_are_named(session, tmp_path):
    folder = make_adapter(session, tmp_path / "adapter")
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    refused(session, folder, "adapter_model.safetensors is damaged")
    folder = make_adapter(session, tmp_path / "adapter2")
    (folder / "adapter_config.json").write_text("{not json")
    refused(session, folder, "adapter_config.json is not valid JSON")


def test_a_good_adapter_next_to_a_refused_one_still_works(session, tmp_path):
    bad = make_adapter(session, tmp_path / "bad")
    (bad / "adapter_config.json").write_text(json.dumps({"peft_type": "PROMPT_TUNING"}))
    refused(session, bad, "not describe a LoRA adapter")
    good = make_adapter(session, tmp_path / "good")
    answer = session.generate("Hi", model=str(good), max_new_tokens=3)
    assert "good" in session.contestants
    assert answer == session.generate("Hi", model="good", max_new_tokens=3)  # the same adapter
    assert session.generator.describe("good")["adapter"] == str(good)
