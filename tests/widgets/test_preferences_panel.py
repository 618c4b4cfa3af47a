"""The comparator's preferences panel: vote counts, win rates, and DPO started from the votes."""

from __future__ import annotations

from widgets.compare.comparator import ChatComparator
from widgets.compare.preferences_panel import PreferencesPanel


def vote(session, n, chosen_model="run-1", rejected_model="base"):
    for i in range(n):
        session.record_preference(
            f"Q{i}?",
            f"good {i}",
            f"bad {i}",
            chosen_model=chosen_model,
            rejected_model=rejected_model,
        )


def test_counts_and_win_rates_follow_the_votes(session):
    panel = PreferencesPanel(session)
    assert "0 votes" in panel.summary.value
    vote(session, 3)
    vote(session, 1, chosen_model="base", rejected_model="run-1")
    session.record_preference(
        "Q", "a", "b", verdict="tie", chosen_model="base", rejected_model="run-1"
    )
    assert "5 votes, 4 usable" in panel.summary.value
    assert "base vs run-1" in panel.summary.value
    assert "<td class='wb-num'>20%</td><td class='wb-num'>60%</td>" in panel.summary.value


def test_too_few_votes_show_the_reason_and_start_nothing(session):
    panel = PreferencesPanel(session)
    vote(session, 3)
    assert panel.train() is None
    assert "at least 8" in panel.message.text and panel.message.level == "error"
    assert session.runs == []


def test_the_comparator_shows_the_panel(session):
    view = ChatComparator(session)
    assert isinstance(view.preferences_panel, PreferencesPanel)
    assert view.preferences_panel in view.children


def test_the_button_starts_a_dpo_run_on_the_votes(session):
    session.set_max_length(64)
    vote(session, 10)
    panel = PreferencesPanel(session)
    panel.steps.value = 1
    run = panel.train()
    assert run is not None and run.config.method == "dpo", panel.message.text
    assert run.info.data["train"]["rows"] + run.info.data.get("eval", {}).get("rows", 0) == 10
    run.stop(timeout=60)


def test_a_refusal_mentions_ties_only_when_there_are_ties_to_count(session):
    panel = PreferencesPanel(session)
    vote(session, 3)
    panel.train()
    assert "tie" not in panel.message.text and "include_ties" not in panel.message.text
    session.record_preference("Q", "a", "b", verdict="tie", chosen_model="base")
    panel.train()
    assert "count the ties" in panel.message.text  # the checkbox beside the button
    assert "include_ties" not in panel.message.text and "=" not in panel.message.text


def test_dpo_starts_from_the_newest_adapter_until_a_person_picks_one(session):
    from tests.widgets.test_comparator import add_adapter_run

    add_adapter_run(session, "run-1", seed=1)
    panel = PreferencesPanel(session)
    assert panel.start_from.value == "run-1"
    add_adapter_run(session, "run-2", seed=2)
    session.check_runs()
    assert panel.start_from.value == "run-2"  # the offer followed the new run
    panel.start_from.value = "run-1"  # a person's choice
    add_adapter_run(session, "run-3", seed=3)
    session.check_runs()
    assert panel.start_from.value == "run-1"
