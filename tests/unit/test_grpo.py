"""RL with reward functions (method "grpo"): prompts and rewards checked before launch, short
real runs on the tiny model, and a reward function that breaks ends its run naming itself."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from tests.unit.faulty_rewards import short_answer
from workbench.answers.adapters import write_random_adapter
from workbench.train import ConfigError, TrainingDataError
from workbench.train.reward_model import write_random_reward_model
from workbench.train.rewards import RewardFunctionError, build_rewards, parse_reward

TINY = {"max_steps": 2, "batch_size": 4, "num_generations": 2, "max_completion_length": 8}


def grpo(rewards, **more) -> wb.TrainConfig:
    """A GRPO config small enough for the tiny model to run in seconds."""
    return wb.TrainConfig(method="grpo", rewards=rewards, **{**TINY, **more})


@pytest.fixture
def prompts_session(session, chat_rows):
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    return session


def test_reward_specs_are_read_or_refused_saying_what_is_allowed():
    assert parse_reward("format=^\\d+$").kind == "format"
    assert parse_reward("tests.unit.faulty_rewards:nan_reward").kind == "function"
    for bad in ("exactmatch", "length=ten", "format=(", "reward_model="):
        with pytest.raises(ConfigError, match="rewards"):
            grpo([bad])
    with pytest.raises(ConfigError, match="at least one reward"):
        wb.TrainConfig(method="grpo")
    with pytest.raises(ConfigError, match="one weight per reward"):
        grpo(["exact_match", "contains"], reward_weights=[1.0])
    with pytest.raises(ConfigError, match="multiple of it"):
        grpo(["exact_match"], batch_size=3, grad_accumulation=1, num_generations=2)


def test_a_function_from_a_module_is_kept_by_its_importable_name():
    config = grpo([short_answer, "exact_match"], reward_weights=[2, 1])
    assert config.rewards == ["tests.unit.faulty_rewards:short_answer", "exact_match"]
    assert config.reward_weights == [2.0, 1.0]
    assert wb.TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


def test_a_notebook_function_is_refused_showing_how_to_move_it():
    def my_reward(prompts, completions, **columns):
        return [0.0] * len(completions)

    my_reward.__module__ = "__main__"  # as if defined in a notebook cell
    my_reward.__qualname__ = "my_reward"
    with pytest.raises(ConfigError) as refused:
        grpo([my_reward])
    text = str(refused.value)
    assert "defined in the notebook" in text and "my_rewards.py" in text
    assert 'rewards=["my_rewards:my_reward"]' in text
    with pytest.raises(ConfigError, match="defined in the notebook"):
        grpo(["__main__:my_reward"])
    with pytest.raises(ConfigError, match="top level"):
        grpo([lambda prompts, completions, **_: [0.0]])


def test_built_in_rewards_score_against_the_reference():
    format_, contains, length = build_rewards(["format=\\d+", "contains", "length=2"], None)
    answers = ["5", "it is 5.", "x"]
    refs = {"reference": ["5", "5", "7"], "completion_ids": [[1], [1, 2, 3, 4], [1]]}
    assert format_(prompts=[[]] * 3, completions=answers, **refs) == [1.0, 0.0, 0.0]
    assert contains(prompts=[[]] * 3, completions=answers, **refs) == [1.0, 1.0, 0.0]
    assert length(prompts=[[]] * 3, completions=answers, **refs) == [0.0, -1.0, 0.0]
    (exact,) = build_rewards(["exact_match"], None)
    conversational = [[{"role": "assistant", "content": a}] for a in answers]
    assert exact(prompts=[[]] * 3, completions=conversational, **refs) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "target, named",
    [
        ("tests.unit.faulty_rewards:nan_reward", "returned nan for completion 1"),
        ("tests.unit.faulty_rewards:raising_reward", "raised ValueError"),
        ("tests.unit.faulty_rewards:one_value_reward", "returned 1 values for 3"),
    ],
)
def test_each_broken_reward_is_named_with_its_first_bad_value(target, named):
    (reward,) = build_rewards([target], None)
    with pytest.raises(RewardFunctionError, match=named) as error:
        reward(prompts=[[]] * 3, completions=["a", "b", "c"], reference=["", "", ""])
    assert target in str(error.value)


def test_rows_without_a_reference_are_refused_for_exact_match(session, chat_rows):
    rows = chat_rows * 3
    rows[4] = {"messages": [{"role": "user", "content": "No answer here"}]}
    session.load_dataset(rows)
    session.set_max_length(64)
    with pytest.raises(TrainingDataError, match=r"exact_match.*rows \[4\] have none"):
        session.train(grpo(["exact_match"]))
    run = session.prepare(grpo(["format=.+"]))  # a reward without reference takes every row
    assert run.info.data["train"]["rows"] == len(rows)
    with pytest.raises(TrainingDataError, match=r"rows \[0, 1, 2, 3, 4, 5, 6, 7, 8\].*prompt"):
        session.prepare(grpo(["format=.+"], max_prompt_length=2))


def test_a_reward_model_of_another_base_is_refused_naming_both(prompts_session, tmp_path):
    other = wb.models.ModelSpec("some-org/another-model")
    folder = write_random_reward_model(
        tmp_path / "rm", prompts_session.model, prompts_session.template
    )
    (folder / "base_model.json").write_text(json.dumps(other.to_json()))
    with pytest.raises(ValueError) as refused:
        prompts_session.prepare(grpo([f"reward_model={folder}"]))
    text = str(refused.value)
    assert "another-model" in text and prompts_session.model.display_name in text


def test_a_grpo_run_learns_from_rewards_and_its_adapter_answers(prompts_session, tmp_path):
    s = prompts_session
    base = wb.models.load_model(s.model)
    start = write_random_adapter(base, tmp_path / "sft", s.model, s.template)
    reward_model = write_random_reward_model(tmp_path / "rm", s.model, s.template)
    config = grpo(
        [
            "exact_match",
            "format=[a-z, ]+",
            "length=4",
            "tests.unit.faulty_rewards:short_answer",
            f"reward_model={reward_model}",
        ],
        reward_weights=[1, 0.5, 0.1, 1, 0.2],
        base_adapter=str(start),
    )
    run = s.train(config)
    status = run.wait(timeout=300)
    assert status.state == "finished", status.message + run.log_tail()
    records = [m for m in run.metrics if "loss" in m]
    assert len(records) == 2
    for name in ("exact_match", "format", "length", "tests.unit.faulty_rewards:short_answer"):
        assert f"rewards/{name}/mean" in records[-1] and f"rewards/{name}/std" in records[-1]
    assert {"reward", "kl", "completions/mean_length", "completions/clipped_ratio"} <= set(
        records[-1]
    )
    assert "sample 1:" in run.log_tail(200)  # sample completions in the run log
    assert run.name in s.contestants
    assert isinstance(s.generate("Sort: b, a", model=run.name, max_new_tokens=4), str)


@pytest.mark.parametrize(
    "target, named",
    [
        ("tests.unit.faulty_rewards:nan_reward", "returned nan"),
        ("tests.unit.faulty_rewards:no_such_function", "cannot be imported"),
    ],
)
def test_a_faulty_reward_function_ends_the_run_failed_naming_it(prompts_session, target, named):
    run = prompts_session.train(grpo([target], max_steps=1))
    status = run.wait(timeout=300)
    assert status.state == "failed"
    assert target in status.message and named in status.message
    assert "Traceback" in run.log_tail(200)  # the log keeps the traceback


@pytest.mark.slow
def test_grpo_from_an_sft_run_of_the_embedded_model_finishes_with_reward_curves(
    trained_run, tmp_path
):
    """The embedded model: GRPO with exact match, starting from the shared SFT run's adapter
    (a folder of another workspace), on the task family that run learnt (change_case)."""
    from workbench import demo_data

    _, sft = trained_run
    with wb.Session.open(tmp_path / "ws") as s:
        s.load_dataset(demo_data.generate(300, seed=3, tasks=["change_case"], handwritten=False))
        _, eval_rows = s.split(eval_fraction=0.1, seed=0)
        s.set_max_length(96)
        run = s.train(
            wb.TrainConfig(
                method="grpo",
                rewards=["exact_match"],
                base_adapter=str(sft.adapter_path),
                max_steps=5,
                max_completion_length=24,
            )
        )
        status = run.wait(timeout=1800)
        assert status.state == "finished", status.message + run.log_tail()
        curve = [m for m in run.metrics if "loss" in m]
        assert len(curve) == 5
        assert all("rewards/exact_match/mean" in m and "kl" in m for m in curve)
        assert run.name in s.contestants  # the comparator loads it like any adapter
        held_out = [s.dataset[i] for i in eval_rows[:8]]
        start = s.load_contestant(sft.adapter_path)
        scores = s.evaluate([start, run.name], dataset=held_out, max_new_tokens=24).scores
        assert set(scores) == {start, run.name}
