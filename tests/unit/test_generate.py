"""Contestants on one base model: adapters by run name, their templates, batching, streaming, stop."""

from __future__ import annotations

import json
import os
import threading

import pytest

import workbench as wb
from workbench import models
from workbench.answers.adapters import write_random_adapter
from workbench.answers.generate import GenerationSettings

HASH_TEMPLATE = wb.Template(
    "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}### assistant:{% endif %}",
    name="hashes",
)


def add_adapter_run(session, name="run-1", seed=1, template=None):
    """A finished run folder holding a random LoRA adapter, laid out as the runner writes it."""
    run_dir = session.workspace.runs_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"model": session.model.to_json()}))
    (run_dir / "status.json").write_text(json.dumps({"state": "finished"}))
    base = models.load_model(session.model)
    template = (template or session.template).with_tokenizer(session.tokenizer)
    return write_random_adapter(base, run_dir / "adapter", session.model, template, seed=seed)


def count_loads(monkeypatch) -> list:
    calls = []
    real = models.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    return calls


def test_settings_round_trip_to_json_and_refuse_bad_values():
    settings = GenerationSettings(max_new_tokens=9, temperature=0.7, seed=4, system_prompt="Hi")
    assert GenerationSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings
    with pytest.raises(TypeError, match="max_tokens"):
        GenerationSettings.from_json({"max_tokens": 5})
    with pytest.raises(ValueError, match="top_p"):
        GenerationSettings(top_p=0)
    with pytest.raises(ValueError, match="temperature"):
        GenerationSettings(temperature=-1)


def test_adapter_answers_differ_and_one_base_model_serves_both(session, monkeypatch):
    add_adapter_run(session)
    loads = count_loads(monkeypatch)
    base = session.generate("Hello there", max_new_tokens=8)
    tuned = session.generate("Hello there", model="run-1", max_new_tokens=8)
    assert tuned != base
    assert session.generate("Hello there", max_new_tokens=8) == base  # adapter off again
    assert len(loads) == 1
    generator = session.generator
    peft = generator._hosts["base"].peft
    assert peft.get_base_model() is generator.model  # adapters live inside the one instance


def test_a_batch_answers_as_one_prompt_at_a_time(session):
    add_adapter_run(session)
    prompts = ["Hi", "Tell me a long story about the sea", "2+2?"]
    batch = session.generate(prompts, model="run-1", max_new_tokens=6)
    assert isinstance(batch, list)
    assert batch == [session.generate(p, model="run-1", max_new_tokens=6) for p in prompts]


def test_contestants_answer_together_as_they_would_alone(session):
    add_adapter_run(session, "run-1", seed=1)
    add_adapter_run(session, "run-2", seed=2)
    for name in ("run-1", "run-2"):
        session.load_contestant(name)
    settings = GenerationSettings(max_new_tokens=6)
    jobs = [("base", "Hi"), ("run-1", "Hi"), ("run-2", "Hi")]
    together = session.generator.answer_each(jobs, settings)
    alone = [session.generator.generate(p, m, settings) for m, p in jobs]
    assert together == alone
    assert together[1] != together[2]


def test_seeded_sampling_is_reproducible(session):
    add_adapter_run(session)
    first = session.generate("Hi", model="run-1", max_new_tokens=10, temperature=1.0, seed=1)
    again = session.generate("Hi", model="run-1", max_new_tokens=10, temperature=1.0, seed=1)
    other = session.generate("Hi", model="run-1", max_new_tokens=10, temperature=1.0, seed=2)
    assert first == again
    assert other != first


def test_tokens_stream_as_they_come_and_stop_ends_the_answer(session):
    add_adapter_run(session)
    name = session.load_contestant("run-1")
    generator, settings = session.generator, GenerationSettings(max_new_tokens=20)
    seen: list[str] = []
    full = generator.generate("Hi", name, settings, on_text=lambda i, t: seen.append(t))
    assert len(seen) > 3
    assert all(later.startswith(earlier) for earlier, later in zip(seen, seen[1:]))
    assert seen[-1].strip() == full

    stop, partial = threading.Event(), []

    def stop_at_the_second_token(i, text):
        partial.append(text)
        if len(partial) == 2:
            stop.set()

    short = generator.generate("Hi", name, settings, on_text=stop_at_the_second_token, stop=stop)
    assert len(partial) <= 3
    assert full.startswith(short) and len(short) < len(full)


def test_each_row_ends_once_done_says_its_answer_is_whole(session):
    import torch

    from workbench.answers.model_host import StopWhenDone

    tokenizer = session.tokenizer
    prompt = tokenizer(["Q: one", "Q: two"], add_special_tokens=False)["input_ids"]
    answers = tokenizer(["A whole answer", "Not yet"], add_special_tokens=False)["input_ids"]
    width = max(len(a) for a in answers)
    rows = [p + a + [tokenizer.pad_token_id] * (width - len(a)) for p, a in zip(prompt, answers)]
    criterion = StopWhenDone(tokenizer, len(prompt[0]), lambda text: text.startswith("A whole"))
    assert criterion(torch.tensor(rows), None).tolist() == [True, False]

    settings = GenerationSettings(max_new_tokens=24)
    full = session.generator.generate("Hi", "base", settings)
    assert len(tokenizer(full, add_special_tokens=False)["input_ids"]) >= 4
    cut = session.generator.generate_batch(["Hi"], "base", settings, done=lambda text: bool(text))
    assert full.startswith(cut[0]) and len(tokenizer(cut[0])["input_ids"]) <= 2


def test_a_document_is_continued_as_it_is_and_top_k_1_samples_greedily(session):
    import torch

    greedy = GenerationSettings(max_new_tokens=8)
    document = "Examples of tasks.\n\n### Instruction:\n"
    (ours,) = session.generator.complete_batch([document], "base", greedy)
    model, tokenizer = models.load_model(session.model), session.tokenizer
    ids = tokenizer(document, return_tensors="pt").input_ids  # no chat template around it
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=[])
    assert ours.text == tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
    assert ours.ran_out  # 8 tokens and no end: cut
    (ended,) = session.generator.complete_batch([document], "base", greedy, done=bool)
    assert not ended.ran_out and ours.text.startswith(ended.text)

    generate = session.generator.generate
    hot = dict(max_new_tokens=24, temperature=1.5, seed=3)
    likeliest = generate("Hi", "base", GenerationSettings(max_new_tokens=24))
    one = GenerationSettings(top_k=1, **hot)  # only the likeliest token is left to sample
    assert likeliest and generate("Hi", "base", one) == likeliest
    assert generate("Hi", "base", GenerationSettings(**hot)) != likeliest
    with pytest.raises(ValueError, match="top_k"):
        GenerationSettings(top_k=-1)


def test_an_adapter_answers_with_the_template_stored_beside_it(session):
    add_adapter_run(session, template=HASH_TEMPLATE)
    name = session.load_contestant("run-1")
    settings = GenerationSettings(system_prompt="Be brief.")
    assert "### user: Hi" in session.generator.render(name, "Hi", settings)
    assert "### system: Be brief." in session.generator.render(name, "Hi", settings)
    assert "###" not in session.generator.render("base", "Hi", settings)
    session.set_template("chatml")
    assert session.generator.template_of("base").name == "chatml"
    assert session.generator.template_of(name).name == "hashes"


def test_contestants_follow_the_runs_of_the_workspace(session):
    assert session.contestants == ["base"]
    add_adapter_run(session, "run-1")
    add_adapter_run(session, "run-2")
    assert session.contestants == ["base", "run-1", "run-2"]


def test_a_rewritten_adapter_is_loaded_again(session):
    folder = add_adapter_run(session, seed=1)
    before = session.generate("Hi", model="run-1", max_new_tokens=8)
    add_adapter_run(session, seed=5)
    weights = folder / "adapter_model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = session.generate("Hi", model="run-1", max_new_tokens=8)
    assert after != before
    assert len(session.generator._hosts["base"].peft.peft_config) == 1  # the old one left


def test_a_second_base_model_is_its_own_contestant(session, tiny_model_dir, monkeypatch):
    session.generate("Hi", max_new_tokens=2)
    loads = count_loads(monkeypatch)
    name = session.add_base_model(str(tiny_model_dir), name="other copy")
    assert name in session.contestants
    assert len(loads) == 1
    assert session.generator._hosts[name].model is not session.generator.model
    same_weights = session.generate("Hi", model=name, max_new_tokens=5)
    assert same_weights == session.generate("Hi", max_new_tokens=5)


def test_an_unknown_contestant_is_refused_with_the_known_ones(session):
    add_adapter_run(session)
    with pytest.raises(KeyError, match="run-7.*base, run-1"):
        session.generate("Hi", model="run-7")
