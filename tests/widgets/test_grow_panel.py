"""The Grow panel: seeds and generator in, staged candidates out, accepted or rejected by a person."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.unit.test_synthesis import ROWS, StandIn, asked, chat, scripted
from widgets.data.grow_panel import GrowPanel, parse_rows


@pytest.fixture
def panel(session):
    session.load_dataset([chat(p, a) for p, a in ROWS])
    return GrowPanel(session)


def stage(session, answers):
    session.synthesize(n=len(answers), generator=scripted(answers))


def test_seed_rows_are_typed_as_ranges_or_taken_from_the_browser(panel):
    assert parse_rows("0-3, 7 ; 9") == [0, 1, 2, 3, 7, 9]
    with pytest.raises(ValueError, match="'x'"):
        parse_rows("1, x")
    panel.use_rows([9, 3, 4, 5], label="search 'colour'")
    assert panel.seed_rows.value == "3-5, 9" and "colour" in panel.seed_note.value
    assert panel.generator.options == ("base",) and panel.judge.value == ""


def test_start_runs_the_generator_and_shows_the_counts(panel):
    panel.n.value = 2
    panel.max_new_tokens.value = 24
    panel.start_button.click()
    panel.wait(240)
    assert panel.progress.value == 2 and "Asked 2 of 2" in panel.counts.value
    assert panel.message.level == "info", panel.message.text
    assert len(panel.session.candidates) == 2


def test_a_bad_seed_range_is_said_and_nothing_starts(panel):
    panel.seed_rows.value = "0-2, oops"
    panel.start_button.click()
    assert panel.message.level == "error" and "oops" in panel.message.text
    assert panel._thread is None


def test_accept_and_reject_per_row_and_in_bulk(panel):
    session = panel.session
    stage(
        session,
        [asked(f"Name {w} things you find in a kitchen drawer.", "Spoons.") for w in ("two", "ten")]
        + [asked("Describe a sunrise over the sea.", "Gold."), asked(*ROWS[0])],
    )
    panel.refresh()
    assert (
        "2 candidates" in panel.page_label.value
    )  # pending: one similar and one duplicate dropped
    first = panel._shown[0].id
    panel.accept_buttons[0].click()
    assert len(session.dataset) == len(ROWS) + 1
    assert session.dataset[len(ROWS)]["origin"]["candidate"] == first
    assert "1 candidate," in panel.page_label.value
    panel.ticks[0].value = True
    panel.reason.value = "too vague"
    panel.reject_ticked.click()
    assert [c.reason for c in session.candidates if c.status == "rejected"] == ["too vague"]
    panel.show.value = "dropped"
    assert len(panel._shown) == 2 and all(b.disabled for b in panel.accept_buttons[:2])
    panel.accept([panel._shown[0].id])  # refused by the core, said in the panel
    assert panel.message.level == "error" and "Nothing was accepted" in panel.message.text
    assert len(session.dataset) == len(ROWS) + 1


def test_edit_checks_a_candidate_again(panel):
    session = panel.session
    stage(session, [asked(*ROWS[1])])
    panel.show.value = "dropped"
    panel.edit_buttons[0].click()
    assert panel.editor.layout.display == "" and panel.edit_prompt.value == ROWS[1][0]
    panel.edit_prompt.value = "What is the largest ocean on Earth?"
    panel.edit_answer.value = "The Pacific."
    panel.save_button.click()
    assert "passes the filters" in panel.message.text and panel.editor.layout.display == "none"
    (candidate,) = session.candidates
    assert candidate.status == "pending" and candidate.messages[1]["content"] == "The Pacific."


def test_model_text_is_escaped(panel):
    stage(
        panel.session, [asked("<script>alert(1)</script> Say <b>hi</b>.", "<img src=x onerror=1>")]
    )
    panel.show.value = ""  # all, whatever the filters made of it; this also re-reads them
    html = panel.views[0].value
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html


def test_stop_keeps_what_the_endpoint_answered(panel):
    server = StandIn(delay=0.3)
    try:
        panel.url.value = server.url
        panel.n.value = 30
        panel.start_button.click()
        wait_for(lambda: len(server.requests) >= 2, 60, what="two answers")
        panel.stop_button.click()
        panel.wait(60)
    finally:
        server.close()
    done = panel.last
    assert done is not None and done.stopped and 2 <= done.answered < 30
    assert len(panel.session.candidates) == done.answered
    assert panel.stop_button.disabled and not panel.start_button.disabled


def test_an_endpoint_that_is_down_shows_one_sentence(panel):
    server = StandIn()
    server.close()
    panel.url.value = server.url
    panel.start_button.click()
    panel.wait(60)
    assert panel.message.level == "error" and "Cannot reach" in panel.message.text
    assert "Traceback" in panel.message.details.value  # details one click away


def test_the_browser_seeds_the_grow_panel_from_its_view_and_marks_synthetic_rows(session):
    from widgets.data.dataset_browser import DatasetBrowser

    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}"},
                {"role": "assistant", "content": f"Answer {i}"},
            ]
        }
        for i in range(30)
    ]
    session.load_dataset(rows)
    browser = DatasetBrowser(session)
    assert browser.grow_box.children == (browser.grow,)
    browser.query.value = "Question 2"
    browser.search_button.click()
    assert "2" in browser.grow.seed_rows.value and "0" not in browser.grow.seed_rows.value.split(
        ","
    )
    row = session.add_row(
        rows[0]["messages"][:1] + [{"role": "assistant", "content": "New"}],
        origin={"generator": "base", "seed_rows": [2], "time": 0.0},
    )
    browser.go_to_row(row)
    assert "synthetic" in browser.editor.title.value
