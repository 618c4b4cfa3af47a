"""Every LoRA that PEFT saves for the session's base loads and answers as PEFT itself answers;
adapters made for another base are refused, naming the layer and both shapes."""

from __future__ import annotations

import json
import warnings

import pytest

from workbench import models
from workbench.answers.adapters import AdapterBaseWarning, AdapterError
from workbench.answers.generate import GenerationSettings

PROMPT = "Name a primary colour."
TOKENS = 6

SHAPES = {
    "lm_head in modules_to_save": dict(
        r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"]
    ),
    "embedding LoRA": dict(r=4, target_modules=["embed_tokens", "q_proj"]),
    "DoRA": dict(r=4, target_modules=["q_proj", "v_proj"], use_dora=True),
    "rank and alpha patterns": dict(
        r=4,
        target_modules=["q_proj", "v_proj", "o_proj"],
        rank_pattern={"o_proj": 8},
        alpha_pattern={"v_proj": 16},
    ),
    "regex target_modules": dict(r=4, target_modules=r".*\.(q_proj|k_proj)"),
    "layers_to_transform": dict(r=4, target_modules=["q_proj", "up_proj"], layers_to_transform=[1]),
    "embed_tokens in modules_to_save": dict(
        r=4, target_modules=["q_proj"], modules_to_save=["embed_tokens"]
    ),
    "trainable tokens": dict(
        r=4, target_modules=["q_proj", "v_proj"], trainable_token_indices=[4093, 5820]
    ),
    'bias="all"': dict(r=4, target_modules=["q_proj", "v_proj"], bias="all"),
}


def make_adapter(base, folder, seed: int = 0, **lora):
    """Save a PEFT LoRA of `base` whose trainable tensors are random, so its answers differ."""
    import torch
    from peft import LoraConfig, get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT's notes on tied embeddings
        peft_model = get_peft_model(base, LoraConfig(**lora))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if param.requires_grad:
                scale = 0.05 if "modules_to_save" in name else 0.5
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    peft_model.save_pretrained(str(folder))
    return folder


def peft_answer(session, folder, prompt: str = PROMPT) -> str:
    """What PEFT answers with the adapter on a fresh base: greedy, on the same rendered prompt."""
    import torch
    from peft import PeftModel

    generator = session.generator
    text = generator.render("base", prompt, GenerationSettings(max_new_tokens=TOKENS))
    tokenizer = generator.tokenizer
    model = PeftModel.from_pretrained(models.load_model(session.model), str(folder)).eval()
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(
            **ids,
            max_new_tokens=TOKENS,
            do_sample=False,
            eos_token_id=generator.stop_token_ids(),
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def fresh_base(session):
    return models.load_model(session.model)


@pytest.mark.parametrize("lora", SHAPES.values(), ids=SHAPES.keys())
def test_every_lora_peft_saves_loads_and_answers_as_peft_does(session, tmp_path, lora):
    folder = make_adapter(fresh_base(session), tmp_path / "adapter", **lora)
    base_answer = session.generate(PROMPT, max_new_tokens=TOKENS)
    answer = session.generate(PROMPT, model=str(folder), max_new_tokens=TOKENS)
    assert answer == peft_answer(session, folder)
    assert answer and answer != base_answer, "the adapter changes the answer"
    assert session.generate(PROMPT, max_new_tokens=TOKENS) == base_answer, "base is untouched"


def test_an_adapter_saving_lm_head_answers_on_the_default_model_as_peft_without_a_warning(
    session, tmp_path, default_model_dir
):
    session.set_model(models.DEFAULT)
    folder = make_adapter(
        fresh_base(session), tmp_path / "adapter", **SHAPES["lm_head in modules_to_save"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterBaseWarning)  # PEFT wrote the converted folder
        answer = session.generate(PROMPT, model=str(folder), max_new_tokens=TOKENS)
    assert answer and answer == peft_answer(session, folder)


@pytest.fixture
def biased_session(session, tmp_path):
    """The session on a tiny Llama whose layers have biases (as Qwen2's attention has)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tiny = models.resolve(session.model)
    config = LlamaConfig.from_pretrained(tiny)
    config.attention_bias = config.mlp_bias = True
    torch.manual_seed(0)
    folder = tmp_path / "biased-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(folder)
    session.set_model(str(folder))
    return session


@pytest.mark.parametrize("bias", ["all", "lora_only"])
def test_adapters_that_train_biases_keep_the_base_and_each_other_intact(
    biased_session, tmp_path, bias
):
    s = biased_session
    base_answer = s.generate(PROMPT, max_new_tokens=TOKENS)
    first = make_adapter(
        fresh_base(s), tmp_path / "first", seed=1, r=4, target_modules=["q_proj"], bias=bias
    )
    second = make_adapter(
        fresh_base(s), tmp_path / "second", seed=2, r=4, target_modules=["q_proj"], bias=bias
    )
    assert s.generate(PROMPT, model=str(first), max_new_tokens=TOKENS) == peft_answer(s, first)
    # PEFT alone holds one adapter with biases; here a second one loads next to it
    assert s.generate(PROMPT, model=str(second), max_new_tokens=TOKENS) == peft_answer(s, second)
    assert s.generate(PROMPT, max_new_tokens=TOKENS) == base_answer
    assert s.generate(PROMPT, model="first", max_new_tokens=TOKENS) == peft_answer(s, first)


def test_a_batch_mixing_dora_with_other_adapters_answers_as_each_alone(session, tmp_path):
    dora = make_adapter(fresh_base(session), tmp_path / "dora", seed=1, **SHAPES["DoRA"])
    plain = make_adapter(
        fresh_base(session), tmp_path / "plain", seed=2, r=4, target_modules=["q_proj"]
    )
    alone = {
        name: session.generate(
            PROMPT, model=name if name == "base" else str(folder), max_new_tokens=TOKENS
        )
        for name, folder in (("dora", dora), ("plain", plain), ("base", None))
    }
    jobs = [("dora", PROMPT), ("plain", PROMPT), ("base", PROMPT)]
    together = session.generator.answer_each(jobs, GenerationSettings(max_new_tokens=TOKENS))
    assert together == [alone["dora"], alone["plain"], alone["base"]]


@pytest.fixture
def other_base(session):
    """Build a random Llama like the session's model but with some of its sizes changed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    def build(**changes):
        config = LlamaConfig.from_pretrained(models.resolve(session.model))
        for key, value in changes.items():
            setattr(config, key, value)
        torch.manual_seed(0)
        return LlamaForCausalLM(config)

    return build


def refused(session, folder, *fragments) -> str:
    with pytest.raises(AdapterError) as caught:
        session.generate(PROMPT, model=str(folder), max_new_tokens=2)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    assert session.contestants == ["base"]
    return message


def test_an_adapter_for_a_wider_llama_is_refused_naming_layer_and_shapes(
    session, tmp_path, other_base
):
    wide = other_base(hidden_size=48, intermediate_size=96, num_attention_heads=2)
    folder = make_adapter(wide, tmp_path / "adapter", r=4, target_modules=["q_proj", "v_proj"])
    message = refused(session, folder, "model.layers.0.self_attn.q_proj", "[4, 48]", "has 32")
    assert "another model" in message and "adapter_model.safetensors" in message


def test_a_deeper_llamas_adapter_is_refused_naming_the_missing_layer(session, tmp_path, other_base):
    deep = other_base(num_hidden_layers=3)
    folder = make_adapter(deep, tmp_path / "adapter", r=4, target_modules=["q_proj"])
    refused(session, folder, "model.layers.2.self_attn.q_proj", "does not have")


def test_a_whole_lm_head_for_another_vocabulary_is_refused(session, tmp_path, other_base):
    smaller = other_base(vocab_size=1000, tie_word_embeddings=False)
    folder = make_adapter(
        smaller, tmp_path / "adapter", r=4, target_modules=["q_proj"], modules_to_save=["lm_head"]
    )
    refused(session, folder, "lm_head.weight", "[1000, 32]", "[49152, 32]")


def test_weights_whose_rank_disagrees_with_the_config_are_refused(session, tmp_path):
    folder = make_adapter(
        fresh_base(session), tmp_path / "adapter", **SHAPES["rank and alpha patterns"]
    )
    config = json.loads((folder / "adapter_config.json").read_text())
    config["rank_pattern"] = {}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    refused(session, folder, "o_proj", "rank [8]", "r=4")


def test_a_config_naming_another_base_warns_naming_both_and_loads(session, tmp_path):
    folder = make_adapter(fresh_base(session), tmp_path / "adapter", **SHAPES["DoRA"])
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "someone/another-model"
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.warns(AdapterBaseWarning) as caught:
        answer = session.generate(PROMPT, model=str(folder), max_new_tokens=TOKENS)
    message = str(caught[0].message)
    assert "someone/another-model" in message and session.model.display_name in message
    assert answer == peft_answer(session, folder)


def test_an_adapter_made_on_this_base_loads_without_a_warning(session, tmp_path):
    folder = make_adapter(fresh_base(session), tmp_path / "adapter", **SHAPES["DoRA"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterBaseWarning)
        session.generate(PROMPT, model=str(folder), max_new_tokens=2)


def test_adapters_that_cannot_share_a_layer_are_refused_and_leave_the_others_working(
    session, tmp_path
):
    lora = make_adapter(fresh_base(session), tmp_path / "lora", seed=1, **SHAPES["embedding LoRA"])
    copy = make_adapter(
        fresh_base(session), tmp_path / "copy", seed=2, **SHAPES["embed_tokens in modules_to_save"]
    )
    base_answer = session.generate(PROMPT, max_new_tokens=TOKENS)
    lora_answer = session.generate(PROMPT, model=str(lora), max_new_tokens=TOKENS)
    with pytest.raises(AdapterError, match="copy.*next to the adapters already attached"):
        session.generate(PROMPT, model=str(copy), max_new_tokens=TOKENS)
    assert session.generate(PROMPT, model="lora", max_new_tokens=TOKENS) == lora_answer
    assert session.generate(PROMPT, max_new_tokens=TOKENS) == base_answer
