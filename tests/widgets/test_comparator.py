"""ChatComparator driven without a browser: pick, send, stream, stop, vote, blind mode, batch."""

from __future__ import annotations

import json
import threading
import time

import pytest

from widgets.compare.comparator import ChatComparator
from workbench import models
from workbench.answers.adapters import write_random_adapter

SETTINGS = {"max_new_tokens": 5}


def write_config(session, run_dir, name: str, method: str = "lora") -> None:
    """The run's config.json as a launcher writes it (the session reads every run's)."""
    from workbench.train import TrainConfig
    from workbench.train.folder import RunInfo

    info = RunInfo(name, TrainConfig(method=method), session.model)
    (run_dir / "config.json").write_text(json.dumps(info.to_json()))


def add_adapter_run(session, name="run-1", seed=1):
    """A finished run folder with a random LoRA adapter, as the runner writes it."""
    run_dir = session.workspace.runs_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(session, run_dir, name)
    (run_dir / "status.json").write_text(json.dumps({"state": "finished"}))
    base = models.load_model(session.model)
    write_random_adapter(base, run_dir / "adapter", session.model, session.template, seed=seed)


@pytest.fixture
def view(session):
    add_adapter_run(session)
    comparator = ChatComparator(session)
    comparator.settings_form.fields["max_new_tokens"].value = SETTINGS["max_new_tokens"]
    yield comparator
    comparator.stop()
    comparator.wait(10)


def ask(view, text):
    view.prompt.value = text
    view.send_button.click()
    view.wait(60)


def test_both_panes_answer_as_the_session_would(view, session):
    assert [p.value for p in view.pickers] == ["base", "run-1"]
    ask(view, "Hi")
    for pane, name in zip(view.panes, ["base", "run-1"]):
        assert pane.text == session.generate("Hi", model=name, **SETTINGS)
        assert name in pane.title.value
    assert view.panes[0].text != view.panes[1].text
    assert view.prompt.value == ""  # ready for the next question


def test_a_vote_records_who_gave_which_answer(view, session):
    ask(view, "Hi")
    view.comment.value = "crisper"
    view.vote_buttons["B"].click()
    [vote] = session.preferences
    assert vote.chosen_model == "run-1" and vote.chosen == view.panes[1].text
    assert vote.rejected_model == "base" and vote.comment == "crisper"
    assert vote.prompt == [{"role": "user", "content": "Hi"}]
    assert vote.settings["max_new_tokens"] == 5
    assert all(b.disabled for b in view.vote_buttons.values())  # one vote per answer
    view.vote_buttons["A"].click()
    assert len(session.preferences) == 1 and "have their vote" in view.message.text


def test_a_vote_before_any_answer_is_refused_with_the_reason(view, session):
    view.vote("A")
    assert session.preferences == [] and "Ask a question first" in view.message.text
    ask(view, "Hi")
    view.vote_pair[1].value = view.vote_pair[0].value  # the pair picker shows from 3 panes on
    view.vote("A")
    assert session.preferences == [] and "two different panes" in view.message.text


def test_blind_mode_hides_names_until_the_vote(view, session):
    view.blind.value = True
    assert view.pickers_box.layout.display == ""  # the contestants are chosen first
    ask(view, "Hi")
    titles = [p.title.value for p in view.panes]
    assert titles == ["A", "B"]
    assert view.pickers_box.layout.display == "none"  # their order would give A and B away
    assert view.blind_note.layout.display == ""
    view.vote_buttons["A"].click()
    assert view.pickers_box.layout.display == "" and view.blind_note.layout.display == "none"
    vote = session.preferences[-1]
    assert vote.blind and vote.chosen == view.panes[0].text
    assert vote.chosen_model in view.panes[0].title.value  # revealed after the vote
    assert {vote.chosen_model, vote.rejected_model} == {"base", "run-1"}


def test_each_contestant_keeps_its_own_conversation_until_reset(view):
    ask(view, "Hi")
    ask(view, "And then?")
    histories = view.conversation.histories
    assert [m["role"] for m in histories["run-1"]] == ["user", "assistant"] * 2
    assert histories["base"][1]["content"] != histories["run-1"][1]["content"]
    for name in ("base", "run-1"):  # the second turn continued each one's own first answer
        assert view.conversation.prompt_of(name)[:2] == histories[name][:2]
    view.reset_button.click()
    assert view.conversation is None and all(p.text == "" for p in view.panes)


def test_model_html_never_reaches_the_page_raw(view, session, monkeypatch):
    evil = "<img src=x onerror=alert(1)> **bold** $x^2$ [a](javascript:alert(2))"
    monkeypatch.setattr(
        session.generator, "answer_each", lambda jobs, *a, **k: [evil for _ in jobs]
    )
    ask(view, "Hi")
    body = view.panes[0].body.value
    assert "<img" not in body and "&lt;img src=x" in body
    assert "<strong>bold</strong>" in body and "$x^2$" in body and "mathjax_ignore" in body
    assert "<a" not in body and "javascript:alert(2)" in body  # a link stays literal text


def test_stop_ends_the_answer_and_keeps_what_was_written(view, session, monkeypatch):
    def slow(jobs, settings, on_text=None, stop=None):
        on_text(0, "partial")
        assert stop.wait(10)
        return ["", ""]

    monkeypatch.setattr(session.generator, "answer_each", slow)
    view.prompt.value = "Hi"
    view.send_button.click()
    time.sleep(0.2)
    assert view.busy and not view.stop_button.disabled
    view.stop_button.click()
    view.wait(10)
    assert not view.busy and view.panes[0].text == "partial"
    assert "stopped" in view.message.text


def test_a_finished_run_appears_as_a_contestant_without_code(view, session):
    add_adapter_run(session, "run-2", seed=2)
    session.check_runs()  # the session announces the new run (its run watcher does this)
    assert "run-2" in view.pickers[0].options
    assert "run-2" in view.batch.models.options


def test_problems_reach_a_person_as_one_sentence(view, session):
    view.pickers[1].value = "base"
    ask(view, "Hi")
    assert "different contestant" in view.message.text
    bad = session.workspace.runs_dir / "run-1" / "adapter" / "adapter_config.json"
    bad.write_text("{broken")
    view.pickers[1].value = "run-1"
    ask(view, "Hi")
    assert "adapter_config.json is not valid JSON" in view.message.text
    assert "Traceback" in view.message.details.value  # details one click away


def test_more_panes_and_the_presentation_layout(view):
    view.add_pane_button.click()
    assert len(view.panes) == 3 and view.vote_pair[0].layout.display == ""
    view.message.error("An old error from before the demo.")
    view.present.value = True
    assert view.setup_box.layout.display == "none" and "wb-present" in view._dom_classes
    assert view.preferences_panel.layout.display == "none"  # votes and DPO stay off the demo
    assert view.message.text == ""  # old red errors too
    view.present.value = False
    assert view.preferences_panel.layout.display == "" and view.setup_box.layout.display == ""


def test_the_batch_tab_tables_and_exports_answers(view, session):
    view.batch.prompts.value = "Hi\n<b>bold?</b>"
    view.batch.models.value = ("base", "run-1")
    view.batch.run_button.click()
    view.batch.wait(60)
    table = view.batch.comparison
    assert table.models == ["base", "run-1"] and len(table) == 2
    assert "&lt;b&gt;bold?&lt;/b&gt;" in view.batch.table.value
    view.batch.export_format.value = "html"
    view.batch.export_button.click()
    [written] = (session.path / "exports").glob("comparison-*.html")
    assert "run-1" in written.read_text() and str(written) in view.batch.message.text
    view.batch.export_button.click()  # a second export in the same second keeps the first
    assert len(list((session.path / "exports").glob("comparison-*.html"))) == 2


def test_the_batch_tab_shows_a_runs_changed_keep_answers_first(view, session):
    from workbench.keep import KeepItem, KeepRecord
    from workbench.persist import append_jsonl

    folder = session.run("run-1").folder
    items = [KeepItem(k, [{"role": "user", "content": f"keep prompt {k}"}], "", "") for k in (0, 1)]
    KeepRecord("given", items).write(folder.keep_file)
    for k, (base, tuned, drift) in enumerate([("same", "same", 0.1), ("old", "new", 0.5)]):
        sample = {"step": 4, "keep": k, "base": base, "answer": tuned, "drift": drift}
        append_jsonl(folder.samples_file, sample | {"changed": base != tuned})
    view.refresh_contestants()
    assert view.batch.keep_run.options == ("run-1",)
    view.batch.keep_button.click()
    shown = view.batch.comparison
    assert shown.models == ["base", "run-1"] and shown.answers["run-1"] == ["new", "same"]
    assert shown.prompts[0] == [{"role": "user", "content": "keep prompt 1"}]
    assert "1 of 2 keep answers of run-1 differ" in view.batch.message.text


def test_the_batch_tab_shows_progress_and_offers_stop_only_while_running(view):
    batch = view.batch
    assert batch.stop_button.disabled  # idle: nothing to stop
    values = []
    batch.progress.bar.observe(lambda c: values.append(c["new"]), names="value")
    batch.prompts.value = "Hi\nName a colour."
    batch.models.value = ("base", "run-1")
    batch.run_button.click()
    batch.wait(60)
    assert values == sorted(values) and values[-1] == batch.progress.bar.max == 4
    assert batch.progress.label.value == "4 / 4 answers"
    assert batch.stop_button.disabled and not batch.run_button.disabled


def test_stop_in_the_batch_tab_ends_the_run_and_run_works_again(view, session, monkeypatch):
    batch, entered = view.batch, threading.Event()

    def slow(prompts, name, settings, on_text=None, stop=None):
        entered.set()
        assert stop.wait(10)  # generation hears the Stop button
        return ["cut short"] * len(prompts)

    monkeypatch.setattr(session.generator, "generate_batch", slow)
    batch.prompts.value = "Hi\nName a colour."
    batch.models.value = ("base", "run-1")
    batch.run_button.click()
    assert entered.wait(30)
    assert batch.run_button.disabled and not batch.stop_button.disabled
    batch.stop_button.click()
    batch.wait(10)
    assert "Stopped after 0 of 4 answers" in batch.message.text
    assert batch.comparison is None and batch.stop_button.disabled
    monkeypatch.undo()
    batch.run_button.click()  # usable again, and nothing cut short was kept
    batch.wait(60)
    assert batch.comparison is not None and "cut short" not in batch.table.value
    assert batch.progress.label.value == "4 / 4 answers"


def test_streaming_updates_the_panes_from_the_thread(view, session, monkeypatch):
    seen = threading.Event()

    def streaming(jobs, settings, on_text=None, stop=None):
        on_text(1, "half")
        seen.wait(5)
        return ["x", "half done"]

    monkeypatch.setattr(session.generator, "answer_each", streaming)
    view.prompt.value = "Hi"
    view.send_button.click()
    time.sleep(0.3)
    assert "half" in view.panes[1].body.value
    seen.set()
    view.wait(10)
    assert view.panes[1].text == "half done"


def test_a_new_base_model_starts_a_new_chat(view, session, tiny_model_dir):
    ask(view, "Hi")
    assert view.conversation is not None
    session.set_model(str(tiny_model_dir))
    assert view.conversation is None and all(p.text == "" for p in view.panes)


def add_reward_model_run(session, name="run-rm"):
    """A finished run folder holding an untrained reward model, as a reward run writes it."""
    from workbench.train.reward_model import write_random_reward_model

    run_dir = session.workspace.runs_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(session, run_dir, name, method="reward")
    (run_dir / "status.json").write_text(json.dumps({"state": "finished"}))
    write_random_reward_model(run_dir / "adapter", session.model, session.template)


def test_a_reward_model_scores_each_answer_and_is_no_contestant(view, session):
    add_reward_model_run(session)
    session.check_runs()  # as the run watcher would announce the finished run
    view.refresh_contestants()
    assert "run-rm" not in view.pickers[0].options
    assert [v for _, v in view.reward_picker.options] == ["", "run-rm"]
    ask(view, "Hi")
    assert view.scores.value == ""  # no reward model picked, no scores
    view.reward_picker.value = "run-rm"
    expected = [
        session.score(view.conversation.prompt_of(name), [pane.text], "run-rm")[0]
        for name, pane in zip(view.shown, view.panes)
    ]
    assert view.scores.value == f"Reward model run-rm: A {expected[0]:.3g} · B {expected[1]:.3g}"
    ask(view, "And again?")  # each new answer is scored as it arrives
    assert view.scores.value.startswith("Reward model run-rm: A ")


def test_the_panel_says_how_often_a_reward_model_agrees_with_the_votes(view, session):
    from tests.unit.test_dpo import capital_votes

    panel = view.preferences_panel
    assert panel.agreement_button.disabled  # no reward model yet
    add_reward_model_run(session)
    capital_votes(session, 3)  # announced: the panel refreshes
    assert panel.reward_model.value == "run-rm" and not panel.agreement_button.disabled
    panel.agreement_button.click()
    result = session.reward_agreement("run-rm")
    assert f"agrees with {result.agree} of 3 votes it never trained on" in panel.agreement.value
    panel.reward_button.click()  # 3 votes are too few: refused in a sentence, nothing starts
    assert "at least" in panel.message.text and panel.message.level == "error"
