"""ConfigForm: forms generated from config dataclasses, so a new field needs no widget change."""

from __future__ import annotations

from dataclasses import dataclass, field

import ipywidgets as widgets
import pytest

from widgets.common.compat import tooltip_of
from widgets.common.forms import AUTO, ConfigForm
from workbench.answers.generate import GenerationSettings
from workbench.train import ConfigError, TrainConfig


@dataclass
class MyConfig(TrainConfig):
    new_knob: int = field(default=3, metadata={"help": "a new knob"})


def test_a_form_left_alone_gives_the_dataclass_defaults():
    assert ConfigForm(TrainConfig).value() == TrainConfig()
    assert ConfigForm(GenerationSettings).value() == GenerationSettings()


def test_a_new_field_shows_with_its_help_and_comes_back_in_the_value():
    form = ConfigForm(MyConfig)
    knob = form.fields["new_knob"]
    assert tooltip_of(knob) == "a new knob" and knob.description == "new knob"
    assert knob.value == 3
    knob.value = 7
    value = form.value()
    assert isinstance(value, MyConfig) and value.new_knob == 7


def test_values_round_trip_through_the_form():
    config = TrainConfig(
        method="dpo",
        max_steps=12,
        learning_rate=2e-4,
        batch_size=3,
        gradient_checkpointing=False,
        target_modules=["q_proj"],
        base_adapter="run-1",
    )
    form = ConfigForm(TrainConfig)
    form.set(config)
    assert form.value() == config
    assert form.fields["target_modules"].value == "q_proj,"  # a one-item list stays a list


def test_auto_means_none_decided_by_plan():
    form = ConfigForm(TrainConfig)
    assert form.fields["method"].value is AUTO and form.fields["batch_size"].value == ""
    assert form.fields["batch_size"].placeholder == "auto"
    form.fields["method"].value = "lora"
    form.fields["batch_size"].value = "2"
    form.fields["gradient_checkpointing"].value = True
    value = form.value()
    assert (value.method, value.batch_size, value.gradient_checkpointing) == ("lora", 2, True)
    form.fields["batch_size"].value = ""
    assert form.value().batch_size is None


def test_bad_values_raise_the_dataclass_error_naming_the_field():
    form = ConfigForm(TrainConfig)
    form.fields["max_steps"].value = 0
    with pytest.raises(ConfigError, match="max_steps"):
        form.value()
    form.fields["max_steps"].value = 5
    form.fields["learning_rate"].value = "fast"
    with pytest.raises(ValueError, match="learning_rate must be a number"):
        form.value()


def test_bounds_and_choices_come_from_metadata():
    settings = ConfigForm(GenerationSettings)
    tokens = settings.fields["max_new_tokens"]
    assert isinstance(tokens, widgets.BoundedIntText) and (tokens.min, tokens.max) == (1, 4096)
    assert isinstance(settings.fields["system_prompt"], widgets.Textarea)
    method = ConfigForm(TrainConfig).fields["method"]
    assert isinstance(method, widgets.Dropdown)
    assert [label for label, _ in method.options] == [
        "auto",
        "qlora",
        "lora",
        "dpo",
        "reward",
        "grpo",
    ]


def test_advanced_fields_are_folded_and_excluded_fields_kept():
    form = ConfigForm(TrainConfig, exclude=("seed",))
    (advanced,) = [c for c in form.children if isinstance(c, widgets.Accordion)]
    assert advanced.selected_index is None and advanced.get_title(0) == "Advanced settings"
    assert form.fields["fsdp"] in _descendants(advanced)
    assert form.fields["max_steps"] not in _descendants(advanced)
    assert "seed" not in form.fields and "reasons" not in form.fields
    form.set(TrainConfig(seed=9))
    assert form.value().seed == 9  # an excluded field keeps the value it was given
    shown = ConfigForm(TrainConfig, show_advanced=True)
    assert not any(isinstance(c, widgets.Accordion) for c in shown.children)


def test_group_headings_write_acronyms_as_the_field_does():
    form = ConfigForm(TrainConfig)
    headings = [h.value for h, _ in form._sections.values() if h is not None]
    assert "<b>LoRA</b>" in headings and "<b>Lora</b>" not in headings


def test_a_refusal_of_a_folded_field_opens_advanced_settings_and_marks_it():
    form = ConfigForm(TrainConfig)
    (advanced,) = [c for c in form.children if isinstance(c, widgets.Accordion)]
    assert form.show_problem(ConfigError("fsdp_offload offloads FSDP shards: set fsdp=True too."))
    assert advanced.selected_index == 0 and form.marked == "fsdp_offload"
    assert form.problem == "fsdp offload offloads FSDP shards: set fsdp on too."
    assert not form.show_problem(ValueError("The GPU ran out of memory."))  # names no field


def test_fields_of_one_method_show_only_for_that_method():
    form = ConfigForm(TrainConfig, show_advanced=True)
    shown = lambda name: form.fields[name].layout.display != "none"  # noqa: E731
    assert not any(shown(n) for n in ("rewards", "num_generations", "beta", "include_ties"))
    form.fields["method"].value = "grpo"
    assert all(shown(n) for n in ("rewards", "num_generations", "temperature", "beta"))
    assert not shown("include_ties") and not shown("dpo_loss")
    form.fields["method"].value = "reward"
    assert shown("include_ties") and shown("load_in_4bit")
    assert not shown("rewards") and not shown("beta") and not shown("base_adapter")
    form.fields["method"].value = "dpo"
    assert shown("beta") and shown("dpo_loss") and shown("base_adapter")
    assert not shown("num_generations")
    headings = [c for c in form.children if isinstance(c, widgets.HTML)]
    (rl,) = [h for h in headings if "Reinforcement" in h.value]
    assert rl.layout.display == "none"  # a group with no field shown hides its heading
    form.fields["method"].value = "lora"
    assert form.visible("lora_r") and not form.visible("beta")


def test_a_planned_method_shows_the_supervised_runs_fields():
    """Method left to plan (None) is lora or qlora: the keep set, replay and probes show."""
    form = ConfigForm(TrainConfig, show_advanced=True)
    assert form.value().method is None
    for name in ("keep_set", "keep_measure", "replay", "probes", "probe_max_new_tokens"):
        assert form.visible(name), name
    form.fields["method"].value = "grpo"
    assert not form.visible("keep_set") and not form.visible("replay")


def test_lists_keep_their_item_type_and_separator():
    form = ConfigForm(TrainConfig)
    form.fields["method"].value = "grpo"
    rewards = form.fields["rewards"]
    assert isinstance(rewards, widgets.Textarea)  # one reward a line: a regex may hold commas
    rewards.value = "exact_match\nformat=\\d{1,3}\n"
    form.fields["reward_weights"].value = "1, 0.5"
    value = form.value()
    assert value.rewards == ["exact_match", "format=\\d{1,3}"]
    assert value.reward_weights == [1.0, 0.5]
    form.set(value)
    assert form.value() == value
    form.fields["reward_weights"].value = "1, heavy"
    with pytest.raises(ValueError, match="reward_weights takes numbers"):
        form.value()


def test_a_field_the_form_cannot_show_is_named():
    @dataclass
    class Odd:
        table: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="'table'"):
        ConfigForm(Odd)


def _descendants(widget):
    out = []
    for child in getattr(widget, "children", ()):
        out.append(child)
        out.extend(_descendants(child))
    return out
