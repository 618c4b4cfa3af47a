"""plan: the one place a run's open settings are decided, each with its reason."""

from __future__ import annotations

import dataclasses
import json

import pytest

from workbench.train import ConfigError, TrainConfig, for_hardware
from workbench.train.config import PLANNED_FIELDS
from workbench.train.plan import plan

SMALL = 135_000_000  # the embedded SmolLM2


def planned_on(card: str, config: TrainConfig | None = None, n_params: int = SMALL):
    device = "cpu" if card == "cpu" else "cuda"
    return plan(
        config or TrainConfig(),
        n_params=n_params,
        device=device,
        device_name=card,
        session_max_length=256,
    )


@pytest.mark.parametrize(
    "card, method, batch, accumulation",
    [
        ("cpu", "lora", 8, 1),
        ("T4", "qlora", 4, 2),
        ("A100", "qlora", 16, 1),
        ("H100", "qlora", 16, 1),
        ("L4", "qlora", 16, 1),  # other GPUs plan as the large ones
    ],
)
def test_each_card_gets_its_method_and_batch_shape_with_reasons(card, method, batch, accumulation):
    planned = planned_on(card)
    assert (planned.method, planned.batch_size, planned.grad_accumulation) == (
        method,
        batch,
        accumulation,
    )
    assert planned.unplanned == []
    for name in PLANNED_FIELDS:  # every decided field says why
        assert planned.reasons.get(name), name
    assert card.lower() in planned.reasons["batch_size"].lower()  # the reason names the card


def test_the_cpu_reason_says_why_not_4bit():
    reason = planned_on("cpu").reasons["method"]
    assert "4-bit weights bring no speed or memory gain" in reason


def test_values_set_by_the_person_are_never_changed():
    asked = TrainConfig(
        method="dpo",
        batch_size=3,
        grad_accumulation=5,
        learning_rate=1e-4,
        max_length=77,
        gradient_checkpointing=True,
        beta=0.3,
        eval_steps=7,
        save_steps=14,
        mixed_precision="no",
    )
    for card in ("cpu", "T4", "A100"):
        planned = planned_on(card, asked, n_params=7_000_000_000)
        assert dataclasses.replace(planned, reasons={}) == asked
        assert planned.reasons == {}  # nothing was decided, so nothing needs a reason


def test_learning_rate_follows_model_size_and_method():
    assert planned_on("A100", n_params=SMALL).learning_rate == 1e-3
    assert planned_on("A100", n_params=7_000_000_000).learning_rate == 2e-4
    assert planned_on("A100", TrainConfig(method="dpo")).learning_rate == 5e-5
    big = planned_on("A100", n_params=7_000_000_000)
    assert big.gradient_checkpointing is True and "1B" in big.reasons["gradient_checkpointing"]
    assert planned_on("cpu", n_params=7_000_000_000).gradient_checkpointing is False


def test_planning_twice_changes_nothing():
    once = planned_on("T4")
    assert planned_on("T4", once) == once


def test_fsdp_with_planned_4bit_weights_gets_float_storage():
    config = TrainConfig(num_processes=4, fsdp=True)  # method left to plan: qlora on a GPU
    planned = planned_on("A100", config)
    assert planned.method == "qlora" and planned.bnb_4bit_quant_storage == "bfloat16"
    assert "FSDP" in planned.reasons["bnb_4bit_quant_storage"]


def test_an_unplanned_config_validates_and_round_trips():
    config = TrainConfig(max_steps=10)
    assert config.unplanned == list(PLANNED_FIELDS)
    assert config.quantize_4bit is False  # not known before plan; reading it does not break
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ConfigError, match=r"config\.json: unknown TrainConfig field.*batch_sise"):
        TrainConfig.from_json({"batch_sise": 4}, source="config.json")


def test_evaluations_and_checkpoints_are_planned_about_five_a_run_with_reasons():
    planned = planned_on("cpu", TrainConfig(max_steps=40))
    assert (planned.eval_steps, planned.save_steps) == (8, 8)
    assert "5 evaluations over 40 steps" in planned.reasons["eval_steps"]
    by_epochs = planned_on("cpu", TrainConfig(epochs=2))
    assert by_epochs.eval_steps == 100 and "epoch budget" in by_epochs.reasons["eval_steps"]
    best = planned_on("cpu", TrainConfig(max_steps=40, eval_steps=4, keep_best=True))
    assert best.save_steps == 4 and "keep_best" in best.reasons["save_steps"]
    assert planned_on("cpu", TrainConfig(max_steps=40, save_steps=3)).save_steps == 3  # as set


@pytest.mark.parametrize(
    "card, precision", [("cpu", "no"), ("T4", "fp16"), ("A100", "bf16"), ("cuda", None)]
)
def test_mixed_precision_follows_the_card_and_says_why(card, precision):
    planned = planned_on(card)
    assert planned.mixed_precision == precision
    assert ("mixed_precision" in planned.reasons) is (precision is not None)


def test_help_lists_every_setting_by_group():
    import workbench as wb
    from workbench.answers.generate import GenerationSettings
    from workbench.data.options import LoadOptions
    from workbench.export import ExportConfig
    from workbench.synthesis.run import SynthesisSettings

    assert "Basics:" in wb.TrainConfig.__doc__ and "Schedule:" in wb.TrainConfig.__doc__
    for cls in (wb.TrainConfig, ExportConfig, GenerationSettings, SynthesisSettings, LoadOptions):
        for f in dataclasses.fields(cls):
            assert f"    {f.name} = " in cls.__doc__, (cls.__name__, f.name)
            assert f.metadata["help"][:40] in cls.__doc__, (cls.__name__, f.name)


def test_every_setting_has_help_and_a_group():
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("form", True):
            assert f.metadata.get("help") and f.metadata.get("group"), f.name


def test_for_hardware_still_works_but_warns():
    with pytest.warns(DeprecationWarning, match="plan"):
        config = for_hardware("T4", max_steps=5)
    assert (config.method, config.batch_size, config.grad_accumulation) == ("qlora", 4, 2)
    assert config.max_steps == 5


def test_session_plan_uses_the_detected_card(session, monkeypatch):
    from workbench.train import estimate

    monkeypatch.setattr(estimate, "detect_device", lambda: ("cuda", "T4", 16.0))
    planned = session.plan(TrainConfig(max_steps=3))
    assert (planned.method, planned.batch_size, planned.grad_accumulation) == ("qlora", 4, 2)
    assert planned.max_length == session.max_length


@pytest.mark.parametrize(
    "card, generations, batch, completion, four_bit",
    [("cpu", 4, 8, 64, False), ("T4", 8, 4, 256, True), ("A100", 8, 16, 256, True)],
)
def test_grpo_sampling_suits_the_hardware_and_says_why(
    card, generations, batch, completion, four_bit
):
    planned = planned_on(card, TrainConfig(method="grpo", rewards=["exact_match"]))
    assert (planned.num_generations, planned.batch_size) == (generations, batch)
    assert planned.max_completion_length == completion and planned.load_in_4bit is four_bit
    assert planned.quantize_4bit is four_bit
    assert planned.unplanned == []
    for name in ("num_generations", "max_completion_length", "temperature", "beta"):
        assert planned.reasons.get(name), name
    answers = planned.batch_size * planned.grad_accumulation
    assert answers % planned.num_generations == 0  # whole groups of answers per step
    assert planned.beta == 0.04 and "GRPO" in planned.reasons["beta"]
    assert planned.learning_rate < planned_on(card).learning_rate  # a tuned policy moves slowly


def test_a_batch_set_by_the_person_gets_groups_that_fit_it():
    planned = planned_on("cpu", TrainConfig(method="grpo", rewards=["contains"], batch_size=6))
    assert planned.batch_size == 6 and planned.num_generations == 3
    with pytest.raises(ConfigError, match="multiple of it"):
        planned_on("cpu", TrainConfig(method="grpo", rewards=["contains"], batch_size=1))


def test_reward_models_and_dpo_get_their_own_defaults():
    reward = planned_on("cpu", TrainConfig(method="reward"))
    assert reward.load_in_4bit is False and "CPU" in reward.reasons["load_in_4bit"]
    assert reward.beta is None and reward.num_generations is None  # not read by this method
    assert planned_on("A100", TrainConfig(method="reward")).quantize_4bit is True
    dpo = planned_on("cpu", TrainConfig(method="dpo"))
    assert dpo.beta == 0.1 and dpo.quantize_4bit is True and dpo.unplanned == []
    with pytest.raises(ConfigError, match="beta above 0"):
        TrainConfig(method="dpo", beta=0)
    assert TrainConfig(method="grpo", rewards=["contains"], beta=0).beta == 0  # no reference pass


def test_full_packed_blocks_recompute_activations():
    """Packed 8 x 512 keeps ~13 GB of activations on the embedded model: checkpointing goes on."""
    packed = TrainConfig(batching="packed", batch_size=8, max_length=512)
    planned = planned_on("cpu", packed, n_params=SMALL)
    assert planned.gradient_checkpointing is True
    assert "4096 tokens" in planned.reasons["gradient_checkpointing"]
    small = dataclasses.replace(packed, batch_size=2)
    assert planned_on("cpu", small, n_params=SMALL).gradient_checkpointing is False
    rows = dataclasses.replace(packed, batching="padding_free")  # rows as long as they are
    assert planned_on("cpu", rows, n_params=SMALL).gradient_checkpointing is False
