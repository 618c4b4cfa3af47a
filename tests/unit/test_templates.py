"""Templates: what renders and trains matches transformers, every preset trains its answers."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

import workbench.templates.template as templates
from workbench.templates import IGNORE_INDEX, Template, TemplateError, tokenize_with_labels
from workbench.templates.jinja import template_variables
from workbench.templates.presets import PRESETS, TRAINED_TEXT
from workbench.templates.spans import OPEN, spans_for

SYSTEM = {"role": "system", "content": "Be brief."}
Q1 = {"role": "user", "content": "Sort: pear, apple"}
A1 = {"role": "assistant", "content": "apple, pear"}
Q2 = {"role": "user", "content": "And reversed?"}
A2 = {"role": "assistant", "content": "pear, apple"}
CONVERSATIONS = {
    "single": [Q1, A1],
    "single+system": [SYSTEM, Q1, A1],
    "multi": [Q1, A1, Q2, A2],
    "multi+system": [SYSTEM, Q1, A1, Q2, A2],
}
# Special tokens each preset's model family has; added so each preset tokenises as it would there.
FAMILY_TOKENS = {
    "llama3": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "gemma": ["<start_of_turn>", "<end_of_turn>"],
    "phi3": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
    "zephyr": ["<|system|>", "<|user|>", "<|assistant|>"],
    "mistral": ["[INST]", "[/INST]"],
}


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    return AutoTokenizer.from_pretrained(default_model_dir)


def family_tokenizer(default_model_dir, preset: str):
    tok = AutoTokenizer.from_pretrained(default_model_dir)
    if preset in FAMILY_TOKENS:
        tok.add_special_tokens({"additional_special_tokens": FAMILY_TOKENS[preset]})
    return tok


def trained_texts(tok, example) -> list[str]:
    """The trained tokens of an example, decoded run by run."""
    runs, current = [], []
    for token, label in [*zip(example.input_ids, example.labels), (None, IGNORE_INDEX)]:
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tok.decode(current))
            current = []
    return runs


@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_model_template_matches_apply_chat_template(tokenizer, conversation):
    messages = CONVERSATIONS[conversation]
    template = Template.preset("model").with_tokenizer(tokenizer)
    expected = tokenizer.apply_chat_template(messages, tokenize=True)["input_ids"]
    assert template.tokenize(messages).input_ids == expected
    assert template.render(messages) == tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(
        messages[:-1], add_generation_prompt=True, tokenize=False
    )
    assert template.render_prompt(messages[:-1]) == prompt
    if conversation.endswith("system"):  # SmolLM2's own template injects one only when absent
        assert "SmolLM" not in template.render(messages)
    else:
        assert "You are a helpful AI assistant named SmolLM" in template.render(messages)


@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_chatml_matches_apply_chat_template_with_the_same_jinja(tokenizer, conversation):
    messages = CONVERSATIONS[conversation]
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    expected = tokenizer.apply_chat_template(
        messages, chat_template=PRESETS["chatml"], tokenize=True
    )["input_ids"]
    assert template.tokenize(messages).input_ids == expected
    assert "SmolLM" not in template.render(messages)  # chatml injects no system prompt


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_renders_as_transformers_does(tokenizer, preset):
    template = Template.preset(preset).with_tokenizer(tokenizer)
    for messages in CONVERSATIONS.values():
        for prompt in (False, True):
            shown = messages[:-1] if prompt else messages
            expected = tokenizer.apply_chat_template(
                shown, chat_template=PRESETS[preset], tokenize=False, add_generation_prompt=prompt
            )
            assert template.render(shown, add_generation_prompt=prompt) == expected


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_exactly_the_answers_and_their_end_tokens(default_model_dir, preset):
    tok = family_tokenizer(default_model_dir, preset)
    expected = TRAINED_TEXT[preset].replace("{eos}", tok.eos_token)
    template = Template.preset(preset).with_tokenizer(tok)
    for name, messages in CONVERSATIONS.items():
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        got = trained_texts(tok, template.tokenize(messages))
        assert got == [expected.format(content=a) for a in answers], name
        last = template.with_train_on("last_assistant").tokenize(messages)
        assert trained_texts(tok, last) == [expected.format(content=answers[-1])], name


def test_train_on_everything_trains_every_token(tokenizer):
    example = Template.preset("chatml", train_on="all").with_tokenizer(tokenizer)
    tokenized = example.tokenize(CONVERSATIONS["multi"])
    assert tokenized.labels == tokenized.input_ids


VARIED = [
    [Q1, {"role": "assistant", "content": "  padded answer \n"}],
    [SYSTEM, Q1, A1, Q2, {"role": "assistant", "content": "line one\nline two"}],
    [Q1, A1, Q2],  # ends with a user turn
    [Q1, {"role": "assistant", "content": f"has a sentinel {OPEN} inside"}],
    [Q1, {"role": "assistant", "content": ""}],
    [{"role": "user", "content": "apple, pear"}, A1],  # the answer also appears in the question
    [Q1, {**A1, "weight": 0}, Q2, A2],  # a turn flagged not to train (OpenAI)
    [Q1, {**A1, "train": True}, Q2, {**A2, "loss": False}],  # Axolotl, ShareGPT variants
    [Q1, {"role": "assistant", "content": "<think>sort</think>\napple, pear"}, Q2, A2],
]


@pytest.mark.parametrize("preset", ["model", *PRESETS])
@pytest.mark.parametrize("train_on", ["all_assistant", "last_assistant"])
def test_fast_path_gives_the_same_spans_as_the_prefix_method(tokenizer, preset, train_on):
    source = Template.preset(preset).with_tokenizer(tokenizer).jinja
    variables = template_variables(tokenizer)
    for messages in [*CONVERSATIONS.values(), *VARIED]:
        fast = spans_for(source, messages, train_on, variables)
        exact = spans_for(source, messages, train_on, variables, fast=False)
        assert fast == exact, messages


def test_answer_text_in_the_question_does_not_train(tokenizer):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    tokenized = template.tokenize([{"role": "user", "content": "apple, pear"}, A1])
    assert trained_texts(tokenizer, tokenized) == ["apple, pear<|im_end|>\n"]


PHI3_WITH_FINAL_EOS = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}"
    "{% else %}{{ eos_token }}{% endif %}"
)


def test_a_template_whose_prefixes_differ_still_trains_each_answer(default_model_dir):
    tok = family_tokenizer(default_model_dir, "phi3")
    template = Template(PHI3_WITH_FINAL_EOS).with_tokenizer(tok)
    got = trained_texts(tok, template.tokenize(CONVERSATIONS["multi"]))
    assert got == ["apple, pear<|end|>\n", f"pear, apple<|end|>\n{tok.eos_token}"]


def test_generation_blocks_decide_what_trains(tokenizer):
    source = (
        "{% for m in messages %}{{ m['role'] + ':\\n' }}"
        "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] + eos_token }}"
        "{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}{{ '\\n' }}{% endfor %}"
    )
    template = Template(source).with_tokenizer(tokenizer)
    got = trained_texts(tokenizer, template.tokenize(CONVERSATIONS["multi"]))
    assert got == ["apple, pear<|im_end|>", "pear, apple<|im_end|>"]
    assert template.render(CONVERSATIONS["single"]) == (
        "user:\nSort: pear, apple\nassistant:\napple, pear<|im_end|>\n"
    )


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ messages.__class__.__base__.__subclasses__() }}",
        "{% set ns = namespace(_x=1) %}",
    ],
)
def test_the_sandbox_blocks_escapes_with_a_clear_error(tokenizer, escape):
    template = Template(escape).with_tokenizer(tokenizer)
    with pytest.raises(TemplateError, match="sandbox blocked"):
        template.render(CONVERSATIONS["single"])


def test_a_syntax_error_names_its_line():
    with pytest.raises(TemplateError, match=r"line 2.*(unexpected|expected)"):
        Template("{% for m in messages %}\n{{ m['content'] }\n{% endfor %}")


def test_a_runtime_error_names_its_line_and_message(tokenizer):
    template = Template("ok\n{{ raise_exception('roles must alternate') }}").with_tokenizer(
        tokenizer
    )
    with pytest.raises(TemplateError, match="line 2: roles must alternate"):
        template.render(CONVERSATIONS["single"])
    divide = Template("a\nb\n{{ 1 // 0 }}").with_tokenizer(tokenizer)
    with pytest.raises(TemplateError, match="line 3.*ZeroDivisionError"):
        divide.render(CONVERSATIONS["single"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{# nothing #}", "empty"),
        ("{% for m in messages if m.role != 'assistant' %}{{ m.content }}{% endfor %}", "never"),
        ("{{ messages[0]['content'].upper() + raise_exception('nope') }}", "nope"),
    ],
)
def test_validate_refuses_templates_that_cannot_train(tokenizer, source, message):
    with pytest.raises(TemplateError, match=message):
        templates.validate_template(Template(source).with_tokenizer(tokenizer))


def test_validate_accepts_every_preset(tokenizer):
    for name in ["model", *PRESETS]:
        templates.validate_template(Template.preset(name).with_tokenizer(tokenizer))


def test_max_length_cuts_and_counts_the_trained_tokens_lost(tokenizer):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    full = template.tokenize(CONVERSATIONS["single"])
    cut = template.tokenize(CONVERSATIONS["single"], max_length=len(full.input_ids) - 2)
    assert cut.input_ids == full.input_ids[:-2]
    # the last two tokens are <|im_end|> and the newline after it, both trained
    assert cut.truncated_trained == full.num_trained - cut.num_trained == 2


def test_save_and_load_keep_the_jinja_that_trained(tmp_path, tokenizer):
    trained = Template.preset("model", train_on="last_assistant").with_tokenizer(tokenizer)
    path = trained.save(tmp_path)
    assert path.name == "template.json"
    stored = json.loads(path.read_text())
    assert stored["source"] == tokenizer.chat_template and stored["train_on"] == "last_assistant"
    loaded = Template.load(tmp_path).with_tokenizer(tokenizer)
    assert loaded.fingerprint == trained.fingerprint
    messages = CONVERSATIONS["multi"]
    assert loaded.tokenize(messages) == trained.tokenize(messages)
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temp file left


def test_saving_an_unbound_model_template_is_refused(tmp_path):
    with pytest.raises(TemplateError, match="Bind the tokenizer"):
        Template.preset("model").save(tmp_path)
    with pytest.raises(FileNotFoundError, match="template"):
        Template.load(tmp_path)


def test_json_round_trip_keeps_name_source_and_train_on():
    template = Template.preset("zephyr", train_on="all")
    assert Template.from_json(json.loads(json.dumps(template.to_json()))) == template


def test_tokenize_with_labels_batches_match_one_at_a_time(tokenizer):
    template = Template.preset("model").with_tokenizer(tokenizer)
    rows = [{"messages": m} for m in [*CONVERSATIONS.values(), *VARIED]]
    batch = tokenize_with_labels(template, rows, max_length=24)
    assert batch == [template.tokenize(r, max_length=24) for r in rows]


class WithoutOffsets:
    """A tokenizer that, like a slow (Python) one, gives ids but no character offsets."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __call__(self, *args, **kwargs):
        return dict(self._tokenizer(*args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_tokenizers_without_offsets_give_the_same_labels(tokenizer):
    fast = Template.preset("chatml").with_tokenizer(tokenizer)
    slow = fast.with_tokenizer(WithoutOffsets(tokenizer))
    rows = [*CONVERSATIONS.values(), *VARIED]
    assert tokenize_with_labels(slow, rows) == tokenize_with_labels(fast, rows)
    assert tokenize_with_labels(slow, []) == []


def test_tokenize_dataset_is_cached_by_data_template_and_length(tmp_path, tokenizer, monkeypatch):
    template = Template.preset("chatml").with_tokenizer(tokenizer)
    rows = [{"messages": m} for m in CONVERSATIONS.values()]
    first = templates.tokenize_dataset(template, rows, tmp_path, "data-v1", max_length=64)
    expected = tokenize_with_labels(template, rows, max_length=64)
    assert first["input_ids"] == [e.input_ids for e in expected]
    assert first["labels"] == [e.labels for e in expected]

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("tokenised again instead of loading the cache")

    monkeypatch.setattr(templates, "tokenize_with_labels", no_tokenizing)
    again = templates.tokenize_dataset(template, rows, tmp_path, "data-v1", max_length=64)
    assert again["labels"] == first["labels"]
    with pytest.raises(AssertionError, match="tokenised again"):
        templates.tokenize_dataset(template, rows, tmp_path, "data-v1", max_length=32)
    with pytest.raises(AssertionError, match="tokenised again"):
        templates.tokenize_dataset(template, rows, tmp_path, "data-v2", max_length=64)
    other = template.with_train_on("all")
    with pytest.raises(AssertionError, match="tokenised again"):
        templates.tokenize_dataset(other, rows, tmp_path, "data-v1", max_length=64)
