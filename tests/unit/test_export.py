"""Exports: merged, GGUF, Ollama and adapter, each parity-checked; the refusals; atomic writes."""

from __future__ import annotations

import json
import re

import pytest

import workbench as wb
from workbench import models
from workbench.answers.adapters import write_random_adapter
from workbench.export import ExportConfig, ExportError
from workbench.export import merged as merged_module
from workbench.export.ollama import modelfile
from workbench.export.turns import end_of_turn
from workbench.train import TrainConfig
from workbench.train.folder import RunFolder, RunInfo, RunStatus

SHORT = 8  # probe answer tokens: the random tiny model's logits are near ties further on


def add_run(session, name="run-1", state="finished", seed=1, method="qlora", base=None):
    """A run folder as the runner leaves it: config.json, status.json and a random adapter."""
    folder = RunFolder(session.workspace.runs_dir / name)
    folder.root.mkdir(parents=True)
    train = TrainConfig(method=method, max_steps=2)
    folder.write_info(RunInfo(name, train, session.model, data={"train": {"rows": 12}}))
    folder.write_status(RunStatus(state, message="boom" if state == "failed" else ""))
    model = models.load_model(session.model)
    adapter = write_random_adapter(
        model, folder.adapter_dir, base or session.model, session.template, seed=seed
    )
    (adapter / "train_config.json").write_text(json.dumps(train.to_json()))
    return adapter


def leftovers(path):
    """Anything an export left beside its target: the target itself or staging folders."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith((path.name, ".")))


# -- merged ---------------------------------------------------------------------------------
def test_merged_export_answers_as_the_adapter_in_full_weights(tuned, tmp_path, monkeypatch):
    from safetensors import safe_open
    from transformers import AutoTokenizer, GenerationConfig

    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(k) or real(*a, **k))
    out = tmp_path / "merged"
    export = tuned.export_model("run-1", out, shard_size="2MB", max_new_tokens=SHORT)

    assert export.parity.passed and export.parity.agree == export.parity.probes == 4
    assert export.parity.max_logit_diff <= export.parity.tolerance
    assert not any(k.get("quantize_4bit") for k in loads)  # the QLoRA adapter merged into full
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()
    for shard in shards:
        with safe_open(str(shard), "pt") as f:
            assert all(f.get_tensor(k).is_floating_point() for k in f.keys())  # noqa: SIM118
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == wb.Template.preset("chatml").jinja
    stops = GenerationConfig.from_pretrained(out).eos_token_id
    assert stops[0] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    card = (out / "README.md").read_text()
    for fact in ("rows trained: 12", "`chatml`", '"method": "qlora"', "4/4 greedy answers"):
        assert fact in card
    assert export.files["README.md"] > 0 and leftovers(out) == ["merged"]
    probes = json.loads((out / "export.json").read_text())["probes"]
    answers = tuned.generate([p["prompt"] for p in probes], model="run-1", max_new_tokens=SHORT)
    assert [p["answer"] for p in probes] == answers  # the reference is the workbench's answer


def test_a_failure_midway_leaves_nothing_and_keeps_an_old_export(tuned, tmp_path, monkeypatch):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "old.txt").write_text("the export before")

    def full_disk(model, tokenizer, template, folder, *args):
        (folder / "model.safetensors").write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(merged_module, "save_merged", full_disk)
    with pytest.raises(OSError, match="No space left"):
        tuned.export_model("run-1", out, overwrite=True, max_new_tokens=SHORT)
    assert leftovers(out) == ["merged"]
    assert [p.name for p in out.iterdir()] == ["old.txt"]


# -- GGUF and Ollama ------------------------------------------------------------------------
def read_gguf(path) -> tuple[dict, list[str]]:
    """A GGUF file's header values and tensor names, as the gguf package (llama.cpp's) reads."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    metadata = {name: field.contents() for name, field in reader.fields.items()}
    return metadata, [tensor.name for tensor in reader.tensors]


def test_gguf_f16_reads_back_with_its_template_and_stops(tuned, tmp_path):
    out = tmp_path / "gguf"
    export = tuned.export_model("run-1", out, format="gguf", max_new_tokens=SHORT)
    assert export.parity.passed and export.parity.required
    assert export.parity.problems == []  # template, tokens and stop tokens alike
    file = out / "run-1.F16.gguf"
    metadata, names = read_gguf(file)
    assert metadata["general.architecture"] == "llama"
    assert metadata["tokenizer.chat_template"] == wb.Template.preset("chatml").jinja
    im_end = tuned.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert metadata["tokenizer.ggml.eot_token_id"] == im_end
    assert metadata["tokenizer.ggml.add_bos_token"] is False
    assert "output.weight" not in names  # tied embeddings stay tied
    params = sum(p.numel() for p in models.load_model(tuned.model).parameters())
    vocabulary = 3_000_000  # tokens and merges of a 49k vocabulary: under 3 MB
    assert 2 * params < file.stat().st_size < 2 * params + vocabulary  # 2 bytes a weight


def test_ollama_q8_0_reports_agreement_and_carries_the_stop_strings(tuned, tmp_path):
    out = tmp_path / "ollama"
    export = tuned.export_model(
        "run-1", out, format="ollama", quantization="q8_0", max_new_tokens=SHORT
    )
    assert not export.parity.required
    assert re.search(r"GGUF Q8_0: \d/4 greedy answers", export.parity.line())
    text = (out / "Modelfile").read_text()
    assert "FROM ./run-1.Q8_0.gguf" in text
    assert 'PARAMETER stop "<|im_end|>"' in text and 'PARAMETER stop "<|im_start|>"' in text
    assert "TEMPLATE" in text and "SYSTEM" not in text
    assert f"ollama create run-1 -f {out}/Modelfile" in export.commands


def test_the_models_own_template_maps_to_chatml_with_its_system_line(tiny_model_dir):
    tokenizer = models.load_tokenizer(models.ModelSpec(str(tiny_model_dir)))
    own = wb.Template.preset("model").with_tokenizer(tokenizer)  # SmolLM2's: chatml + a system
    text, note = modelfile("m.gguf", own, tokenizer)
    assert note is None
    assert 'SYSTEM "You are a helpful AI assistant named SmolLM' in text
    custom = wb.Template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}", name="bare")
    text, note = modelfile("m.gguf", custom, tokenizer)
    assert not any(line.startswith("TEMPLATE") for line in text.splitlines())
    assert "llama-server --jinja" in note


def test_each_template_ends_its_turn_on_its_own_token(tiny_model_dir):
    tokenizer = models.load_tokenizer(models.ModelSpec(str(tiny_model_dir)))
    assert end_of_turn(wb.Template.preset("chatml"), tokenizer) == "<|im_end|>"
    assert end_of_turn(wb.Template.preset("alpaca"), tokenizer) == tokenizer.eos_token
    bare = wb.Template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    assert end_of_turn(bare, tokenizer) is None


def test_llama_rotary_layout_is_what_transformers_gguf_loader_undoes():
    import numpy as np
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from workbench.export.gguf import interleave_rotary_halves

    weights = np.random.default_rng(0).normal(size=(6 * 8, 5)).astype(np.float32)
    stored = interleave_rotary_halves(weights, heads=6)
    assert not np.array_equal(stored, weights)
    undone = LlamaTensorProcessor()._reverse_permute_weights(stored, 6, 6)
    assert np.array_equal(undone, weights)


# -- adapter --------------------------------------------------------------------------------
def test_adapter_export_replaces_an_old_folder_only_when_asked(tuned, tmp_path):
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty.*overwrite=True"):
        tuned.export_model("run-1", out, format="adapter")
    assert (out / "notes.txt").is_file()
    export = tuned.export_model("run-1", out, format="adapter", overwrite=True, max_new_tokens=4)
    assert export.parity.passed and export.parity.max_logit_diff == 0
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= names
    assert "notes.txt" not in names and leftovers(out) == ["adapter"]


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "says"),
    [("queued", "still queued"), ("failed", "failed: boom"), ("running", "died")],  # no runner
)
def test_unfinished_or_failed_runs_are_refused(session, tmp_path, state, says):
    add_run(session, "run-2", state=state)
    with pytest.raises(ExportError, match=says):
        session.export_model("run-2", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_base_model_that_is_gone_is_refused(session, tmp_path):
    gone = models.ModelSpec(str(tmp_path / "deleted-model"))
    add_run(session, "run-3", base=gone)
    with pytest.raises(ExportError, match="no longer available"):
        session.export_model("run-3", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_architecture_the_gguf_writer_does_not_know_is_refused_first(session, tmp_path):
    from transformers import GPT2Config

    other = tmp_path / "gpt2-model"
    GPT2Config(n_layer=1).save_pretrained(other)
    add_run(session, "run-4", base=models.ModelSpec(str(other)))
    with pytest.raises(ExportError, match=r"'gpt2' architecture.*\['llama', 'qwen2'\]"):
        session.export_model("run-4", tmp_path / "out", format="gguf")


def test_export_config_fields_have_help_round_trip_and_refuse_bad_values():
    import dataclasses

    assert all(f.metadata.get("help") for f in dataclasses.fields(ExportConfig))
    config = ExportConfig(format="gguf", quantization="q8_0", probes=3)
    assert ExportConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert not config.parity_required and ExportConfig(format="gguf").parity_required
    with pytest.raises(ExportError, match="quantization"):
        ExportConfig(quantization="q4_k_m")
    with pytest.raises(ExportError, match="shard_size"):
        ExportConfig(shard_size="big")
    with pytest.raises(ValueError, match="formt"):
        ExportConfig.from_json({"formt": "gguf"})


def test_push_to_hub_offline_says_so_and_changes_nothing(session, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "export.json").write_text("{}")
    with pytest.raises(ExportError, match="HF_HUB_OFFLINE.*nothing was uploaded"):
        session.push_to_hub(folder, "me/my-model")
    assert [p.name for p in folder.iterdir()] == ["export.json"]
    with pytest.raises(ExportError, match="not a workbench export"):
        session.push_to_hub(tmp_path, "me/my-model")


# -- a real run -----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_real_run_exports_merged_and_as_gguf_with_parity(trained_run, tmp_path):
    session, run = trained_run
    short = dict(probes=4, max_new_tokens=24)  # parity as users get it, on fewer probes (CI time)
    merged = session.export_model(run.name, tmp_path / "merged", **short)
    assert merged.parity.passed, merged.parity.line()
    f16 = session.export_model(run.name, tmp_path / "f16", format="gguf", **short)
    assert f16.parity.passed, f16.parity.line()
    q8 = session.export_model(
        run.name, tmp_path / "q8", format="ollama", quantization="q8_0", **short
    )
    assert q8.parity.probes == 4 and "GGUF Q8_0" in q8.parity.line()  # reported, not required
    metadata, _ = read_gguf(tmp_path / "f16" / f"{run.name}.F16.gguf")
    template = session.generator.template_of(session.load_contestant(run.name))
    assert metadata["tokenizer.chat_template"] == template.jinja
    assert metadata["tokenizer.ggml.eot_token_id"] == session.tokenizer.convert_tokens_to_ids(
        "<|im_end|>"
    )
    modelfile_text = (tmp_path / "q8" / "Modelfile").read_text()
    assert 'PARAMETER stop "<|im_end|>"' in modelfile_text and "TEMPLATE" in modelfile_text


MARKED = (  # chatml whose answers are marked for training, as transformers' assistant masks use
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{%- if m['role'] == 'assistant' %}\n{% generation -%}\n{{ m['content'] }}<|im_end|>"
    "{%- endgeneration %}\n{% else %}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_an_exported_template_carries_no_training_only_marks(tiny_model_dir, tmp_path):
    import jinja2
    from transformers import AutoTokenizer

    from workbench.export.adapter import save_adapter

    tokenizer = models.load_tokenizer(models.ModelSpec(str(tiny_model_dir)))
    marked = wb.Template(MARKED, name="marked").with_tokenizer(tokenizer)
    plain = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # no generation extension
    with pytest.raises(jinja2.TemplateSyntaxError, match="generation"):
        plain.from_string(MARKED)  # what a server's Jinja made of the training template
    save_adapter(tmp_path / "no-adapter", tokenizer, marked, tmp_path)
    exported = AutoTokenizer.from_pretrained(str(tmp_path)).chat_template
    assert not re.search(r"\{%-?\s*(end)?generation", exported)
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "A?"},
            {"role": "assistant", "content": "B."},
            {"role": "user", "content": "C?"},
        ],
    ]
    for conversation in conversations:  # the same text as training renders
        served = plain.from_string(exported).render(
            messages=conversation, add_generation_prompt=True
        )
        assert served == marked.render_prompt(conversation)


@pytest.fixture
def hub(monkeypatch):
    """The Hub's HTTP API stood in on a loopback port, and huggingface_hub pointed at it."""
    from huggingface_hub import constants

    from tests.hub_standin import TOKEN, serve

    state, server = serve()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", state.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield state
    server.shutdown()


def export_folder(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "export.json").write_text('{"format": "adapter"}')
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "README.md").write_text("# A model card\n")
    return folder


def test_push_to_hub_uploads_every_file_to_a_new_private_repo(session, tmp_path, hub):
    folder = export_folder(tmp_path)
    url = session.push_to_hub(folder, "me/tuned")
    repo = hub.repos["me/tuned"]
    assert url == f"{hub.url}/me/tuned" and repo.private
    assert repo.files == {p.name: p.read_bytes() for p in folder.iterdir()}  # byte for byte


def test_push_to_hub_refuses_to_upload_privately_into_a_public_repo(session, tmp_path, hub):
    from tests.hub_standin import Repo

    hub.repos["me/shared"] = Repo(private=False)
    folder = export_folder(tmp_path)
    with pytest.raises(ExportError, match="already exists and is public.*nothing was uploaded"):
        session.push_to_hub(folder, "me/shared")  # private unless asked
    assert hub.repos["me/shared"].files == {} and not hub.repos["me/shared"].private
    session.push_to_hub(folder, "me/shared", private=False)  # asked: published there
    assert "export.json" in hub.repos["me/shared"].files


def test_push_to_hub_says_when_the_hub_refuses_and_keeps_the_folder(session, tmp_path, hub):
    folder = export_folder(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    hub.refuse_commits = True
    with pytest.raises(ExportError, match="The Hub refused or could not be reached"):
        session.push_to_hub(folder, "me/tuned")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
