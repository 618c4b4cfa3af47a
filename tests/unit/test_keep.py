"""The keep set: the base's cached answers, drift while a run trains, replay, and bad keep sets."""

from __future__ import annotations

import json

import pytest

from workbench.data.errors import TrainingDataError
from workbench.keep import KeepPrompt, base_answers, bundled_keep_set, load_keep_set
from workbench.keep.base_answers import cache_file
from workbench.persist import read_jsonl
from workbench.train import ConfigError, TrainConfig
from workbench.train.insight import forgetting_warning

KEEP = ["Name a colour.", "What is a cat?", "Say hello.", "Count to three.", "What is rain?"]


def test_the_bundled_keep_set_is_about_200_varied_prompts():
    keep = bundled_keep_set()
    assert 180 <= len(keep) <= 220
    kinds = {p.kind for p in keep.prompts}
    assert kinds >= {"fact", "explain", "rewrite", "list", "code", "advice", "chat", "system"}
    assert any(p.messages[0]["role"] == "system" for p in keep.prompts)
    assert len({p.key for p in keep.prompts}) == len(keep)


def test_measuring_and_replay_prompts_never_overlap():
    measure, replay = bundled_keep_set().split(64, seed=3)
    assert len(measure) == 64 and len(replay) == len(bundled_keep_set()) - 64
    assert not {p.id for p in measure} & {p.id for p in replay}


def test_cached_base_answers_are_reused_and_rebuilt_when_model_template_or_prompts_change(
    tmp_path,
):
    asked: list[list[str]] = []

    def answer(batch):
        asked.append([m[-1]["content"] for m in batch])
        return [f"answer to {m[-1]['content']}" for m in batch]

    prompts = [KeepPrompt(i, [{"role": "user", "content": t}]) for i, t in enumerate(KEEP)]
    cache = cache_file(tmp_path, "model-a-template-1", 48)
    first = base_answers(prompts[:3], answer, cache)
    assert first == [f"answer to {t}" for t in KEEP[:3]] and len(asked) == 1
    assert base_answers(prompts[:3], answer, cache) == first and len(asked) == 1  # reused
    base_answers(prompts, answer, cache)  # two new prompts: only they are answered
    assert asked[-1] == KEEP[3:]
    other = cache_file(tmp_path, "model-a-template-2", 48)  # another template (or model)
    base_answers(prompts[:3], answer, other)
    assert asked[-1] == KEEP[:3]
    assert cache_file(tmp_path, "model-a-template-1", 24) != cache  # other settings


def test_a_session_answers_keep_prompts_once_per_model_and_template_in_any_workspace(
    session, tiny_model_dir, monkeypatch, tmp_path
):
    import workbench as wb

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "machine-cache"))
    calls = []
    real = wb.Session.generate

    def counted(s, *args, **kwargs):
        calls.append(args)
        return real(s, *args, **kwargs)

    monkeypatch.setattr(wb.Session, "generate", counted)
    prompts = bundled_keep_set().prompts[:4]
    answers = session.base_answers(prompts, max_new_tokens=4)
    assert len(answers) == 4 and len(calls) == 1
    assert session.base_answers(prompts, max_new_tokens=4) == answers and len(calls) == 1
    other = wb.Session.open(tmp_path / "another-workspace")  # the same model elsewhere
    other.set_model(str(tiny_model_dir))
    assert other.base_answers(prompts, max_new_tokens=4) == answers and len(calls) == 1
    other.close()
    session.set_template("chatml")
    session.base_answers(prompts, max_new_tokens=4)
    assert len(calls) == 2


def test_bad_keep_sets_are_refused_before_launch(session, chat_rows, tmp_path):
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    with pytest.raises(TrainingDataError, match="no prompts"):
        load_keep_set([])
    empty = tmp_path / "keep.jsonl"
    empty.write_text("\n")
    with pytest.raises(TrainingDataError, match=r"keep\.jsonl has no prompts"):
        load_keep_set(str(empty))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "fine"}\n{"nothing": 1}\n')
    with pytest.raises(TrainingDataError, match=r"broken\.jsonl, line 2"):
        load_keep_set(str(broken))
    long = ["short one", "word " * 200]
    with pytest.raises(TrainingDataError, match=r"prompt 1 \(\d+ tokens\)"):
        session.prepare(TrainConfig(method="lora", max_steps=1, keep_set=long))
    with pytest.raises(TrainingDataError, match="measure nothing"):
        session.prepare(TrainConfig(method="lora", max_steps=1, keep_set=chat_rows))
    with pytest.raises(ConfigError, match="keep_set is 'off'"):
        TrainConfig(replay=0.1, keep_set="off")
    with pytest.raises(ConfigError, match="dpo run has none"):
        TrainConfig(method="dpo", replay=0.1)
    assert not list(session.workspace.runs_dir.glob("run-*"))  # nothing half-written


def test_keep_prompts_that_are_training_prompts_are_flagged_and_not_measured(session, chat_rows):
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    from workbench.session.keep import KeepSetWarning

    asked = [chat_rows[1]["messages"][0]["content"], *KEEP]
    with pytest.warns(KeepSetWarning, match="1 keep prompts are also training prompts"):
        run = session.prepare(TrainConfig(method="lora", max_steps=1, keep_set=asked, replay=0))
    keep = json.loads(run.folder.keep_file.read_text())
    assert keep["flagged"] == [0]
    assert 0 not in {m["id"] for m in keep["measure"]} and len(keep["measure"]) == len(KEEP)


def test_replay_rows_appear_in_the_snapshot_at_the_asked_fraction_with_their_masks(
    session, chat_rows
):
    import datasets

    session.load_dataset(chat_rows * 30)  # 90 training rows
    session.set_max_length(96)
    run = session.prepare(TrainConfig(method="lora", max_steps=1, replay=0.2, keep_measure=16))
    snapshot = datasets.load_from_disk(str(run.folder.data_dir / "train"))
    replayed = [row for row in snapshot if row["replay"]]
    assert len(replayed) == 22  # 22 / (90 + 22) = 0.196
    keep = json.loads(run.folder.keep_file.read_text())
    measured = {m["id"] for m in keep["measure"]}
    template = session.template
    for row in replayed:
        trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
        assert 0 < len(trained) < len(row["input_ids"])  # the prompt is masked, the answer trains
        text = template.tokenizer.decode(trained)
        assert text.strip()
    assert keep["replayed"] == 22 and len(measured) == 16
    assert run.config.replay == 0.2


def test_plan_replays_a_tenth_for_supervised_runs_and_says_why(session):
    planned = session.plan(TrainConfig(method="lora"))
    assert planned.replay == 0.1 and "base's own answers" in planned.reasons["replay"]
    assert session.plan(TrainConfig(method="lora", keep_set="off")).replay == 0
    assert session.plan(TrainConfig(method="dpo")).replay is None  # no supervised rows


def test_drift_is_zero_for_a_fresh_adapter_and_grows_as_it_trains(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    config = TrainConfig(
        method="lora",
        max_steps=8,
        learning_rate=5e-2,
        keep_set=KEEP,
        keep_measure=5,
        keep_answers=5,
        replay=0,
        save_steps=100,
        eval_steps=4,  # no eval split: drift is measured every 4 steps
    )
    run = session.train(config)
    status = run.wait(timeout=240)
    assert status.state == "finished", status.message + status.traceback_tail
    drift = [m["keep_drift"] for m in run.metrics if "keep_drift" in m]
    assert len(drift) >= 2 and drift[-1] > 0.05
    changed = [m["keep_changed"] for m in run.metrics if "keep_changed" in m]
    assert len(changed) == 1 and 0 <= changed[0] <= 1
    keep_samples = [s for s in read_jsonl(run.folder.samples_file) if "keep" in s]
    assert len(keep_samples) == 5
    assert all({"base", "answer", "changed", "drift"} <= set(s) for s in keep_samples)
    report = session.keep_report(run.name)
    assert report.models == ["base", run.name] and len(report) == 5
    changed_first = [b != t for b, t in zip(*report.answers.values())]
    assert changed_first == sorted(changed_first, reverse=True)


def test_a_fresh_adapter_answers_keep_prompts_with_zero_drift(tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.train.runner.keep_drift import adapter_off, mean_loss, row_losses

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    ids = tokenizer("a keep prompt and its answer")["input_ids"]
    examples = {"input_ids": [ids, ids[:4]], "labels": [ids, [-100, -100, *ids[2:4]]]}
    with adapter_off(model):
        base = row_losses(model, _Rows(examples), tokenizer)
    assert [count for _, count in base] == [len(ids) - 1, 2]  # the first token has no prediction
    with adapter_off(model):  # the first row by hand, from every position's logits
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    by_hand = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum")
    torch.testing.assert_close(base[0][0], by_hand.item(), rtol=1e-5, atol=1e-4)
    assert mean_loss(row_losses(model, _Rows(examples), tokenizer)) == mean_loss(base)  # B = 0


class _Rows:
    """Columns sliced like a datasets.Dataset: rows[a:b] -> {column: values}."""

    def __init__(self, columns: dict[str, list]):
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, part: slice) -> dict[str, list]:
        return {k: v[part] for k, v in self.columns.items()}


def test_the_forgetting_alarm_fires_on_a_planted_curve_and_not_on_a_healthy_one():
    falling = [{"step": s, "loss": 2.0 - 0.1 * s} for s in range(1, 11)]
    healthy = falling + [{"step": s, "keep_drift": 0.02 * s} for s in (2, 4, 6, 8, 10)]
    assert forgetting_warning(healthy, limit=0.25) == ""
    forgetting = falling + [{"step": s, "keep_drift": 0.08 * s} for s in (2, 4, 6, 8, 10)]
    warning = forgetting_warning(forgetting, limit=0.25)
    assert "0.80 nats per token at step 10" in warning and "step 2 was the last under it" in warning
    assert "replay=0.1 mixes in" in warning
    assert "already replays 0.1" in forgetting_warning(forgetting, limit=0.25, replay=0.1)
    flat = [{"step": s, "loss": 1.0} for s in range(1, 11)] + forgetting[10:]
    assert forgetting_warning(flat, limit=0.25) == ""  # the task no longer learns: not this alarm
    assert forgetting_warning(forgetting, limit=None) == ""


def test_an_evaluation_past_the_drift_limit_never_counts_as_best(session, chat_rows):
    from types import SimpleNamespace

    from workbench.keep import KeepRecord
    from workbench.train.runner.keep_drift import KeepDriftCallback

    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    config = TrainConfig(method="lora", max_steps=4, keep_set=KEEP, replay=0, drift_limit=0.3)
    run = session.prepare(config)
    record = KeepRecord.read(run.folder.keep_file)
    callback = KeepDriftCallback(run.folder, record, session.tokenizer, run.config, has_eval=True)
    state = SimpleNamespace(global_step=2, is_world_process_zero=True)
    for drift, kept in ((0.1, 1.5), (0.4, float("inf"))):
        callback._measure = lambda step, model, drift=drift: drift
        metrics = {"eval_loss": 1.5}
        callback.on_evaluate(None, state, None, model=object(), metrics=metrics)
        assert metrics == {"eval_loss": kept, "eval_keep_drift": drift}
