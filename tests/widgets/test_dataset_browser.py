"""DatasetBrowser driven as a person would: set fields, click buttons, check Session and view."""

from __future__ import annotations

import json

import pytest

from benchmarks.huge_row import text_bytes
from widgets.common.html_text import MARK_STYLE, capped_html, fold, highlight, log_tail_html
from widgets.data.dataset_browser import DatasetBrowser
from workbench.data.excerpt import EDIT_CHARS, TURN_CHARS

ATTACK = "<img src=x onerror=alert(1)>"


def rows_of(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}"},
                {"role": "assistant", "content": f"Answer {i}"},
            ]
        }
        for i in range(n)
    ]


@pytest.fixture
def browser(session):
    session.load_dataset(rows_of(25))
    view = DatasetBrowser(session, page_size=10)
    yield view
    view.close()


def shown_rows(view: DatasetBrowser) -> list[int]:
    return [int(b.description[1:]) for b in view.row_buttons if b.layout.display != "none"]


def test_dataset_text_reaches_the_page_escaped(session):
    session.load_dataset(
        [
            {
                "messages": [
                    {"role": "user", "content": ATTACK},
                    {"role": "assistant", "content": "ok"},
                ]
            }
        ]
    )
    session.flag(0, "<b>bold</b> reason")
    view = DatasetBrowser(session)
    page = view.row_views[0].value
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>bold" not in page and "&lt;b&gt;bold&lt;/b&gt; reason" in page
    view.query.value = "onerror"
    view.search_button.click()
    marked = view.row_views[0].value
    assert "<img" not in marked and "<mark" in marked and "&lt;img src=x " in marked
    view.loader.source.value = f"/nowhere/{ATTACK}.jsonl"
    view.loader.load_button.click()
    assert "No data file" in view.message.text and view.message.level == "error"
    assert "<img" not in view.message.message.value + view.message.details.value


def test_escaping_helpers_fold_and_highlight_without_leaking_markup():
    assert highlight("a<b>c", [(1, 4)]) == f"a<mark style='{MARK_STYLE}'>&lt;b&gt;</mark>c"
    folded = fold("x" * 700 + "<script>", [(700, 708)], limit=600)
    assert folded.startswith("<details><summary>") and "<script>" not in folded
    assert "&lt;script&gt;" in folded and "(108 more characters)" in folded
    assert folded.count("<mark") == 1
    capped = fold("<i>" * 10_000, limit=600)  # past TURN_CHARS nothing more is sent
    assert len(capped) < 6 * TURN_CHARS and "28,000 more characters not shown" in capped
    answer = capped_html("<b>" + "x" * 50_000, size=1_000)
    assert answer.startswith("&lt;b&gt;") and "49,003 more characters not shown" in answer
    log = log_tail_html("".join(f"<step {i}>\n" for i in range(10_000)), size=1_000)
    assert len(log) < 2_000 and "&lt;step 9999&gt;" in log and "<step" not in log


def test_pages_turn_and_a_row_number_jumps_to_its_page(browser, session):
    assert shown_rows(browser) == list(range(10)) and "Page 1 of 3" in browser.page_label.value
    browser.next_button.click()
    assert shown_rows(browser) == list(range(10, 20))
    browser.next_button.click()
    browser.next_button.click()  # past the end: stays on the last page
    assert shown_rows(browser) == list(range(20, 25))
    browser.jump.value = 13
    browser.jump_button.click()
    assert session.selected_row == 13 and shown_rows(browser) == list(range(10, 20))
    assert "wb-selected" in browser.row_views[3].value
    browser.prev_button.click()
    assert shown_rows(browser) == list(range(10))


def test_clicking_a_row_selects_it_for_every_view(browser, session):
    browser.row_buttons[4].click()
    assert session.selected_row == 4
    assert "Selected row 4" in browser.editor.title.value
    assert browser.editor.edited_messages()[0]["content"] == "Question 4"


def test_search_and_filters_narrow_the_rows(browser, session):
    browser.query.value = "Question 1"
    browser.search_button.click()
    assert shown_rows(browser) == [1, *range(10, 19)] and "11 rows" in browser.page_label.value
    browser.search_role.value = "assistant"
    browser.search_button.click()
    assert shown_rows(browser) == []
    session.flag(12, "typo")
    browser.search_role.value, browser.status.value = "", "flagged"
    browser.search_button.click()
    assert shown_rows(browser) == [12]
    browser.regex.value, browser.query.value = True, "Question (2"
    browser.search_button.click()
    assert "not a valid regular expression" in browser.message.text
    browser.clear_button.click()
    assert shown_rows(browser) == list(range(10)) and browser.query.value == ""


def test_the_editor_edits_flags_excludes_and_adds_rows(browser, session):
    browser.row_buttons[2].click()
    browser.editor.turns.children[1].children[1].value = "A better answer"
    browser.editor.save_button.click()
    assert session.dataset[2]["messages"][1]["content"] == "A better answer"
    assert session.dataset[2]["edited"] and "edited" in browser.row_views[2].value
    browser.editor.flag_reason.value = "check the sum"
    browser.editor.flag_button.click()
    assert session.dataset.flags == {2: "check the sum"}
    browser.editor.unflag_button.click()
    assert session.dataset.flags == {}
    browser.editor.exclude_button.click()
    assert 2 in session.dataset.excluded and browser.editor.exclude_button.description == "Include"
    browser.editor.exclude_button.click()
    assert 2 not in session.dataset.excluded
    browser.editor.add_turn_button.click()
    browser.editor.turns.children[-1].children[1].value = "One more question"
    browser.editor.add_row_button.click()
    assert len(session.dataset) == 26 and session.selected_row == 25
    assert session.dataset[25]["messages"][-1] == {"role": "user", "content": "One more question"}
    for turn in list(browser.editor.turns.children):
        turn.children[2].click()  # remove every turn
    browser.editor.save_button.click()  # a refused edit is reported, and nothing changes
    assert "non-empty list" in browser.message.text
    assert session.dataset[25]["messages"][0]["content"] == "Question 2"


def test_quality_entries_jump_to_their_rows(session):
    rows = rows_of(12)
    rows[7] = rows[3]
    rows[9]["messages"][0]["content"] = "  "
    session.load_dataset(rows)
    view = DatasetBrowser(session, page_size=5)
    view.quality.with_lengths.value = False
    view.quality.check_button.click()
    labels = dict((value, label) for label, value in view.quality.problems.options)
    assert labels["duplicate"] == "Exact duplicates: 1" and "empty_turn" in labels
    view.quality.problems.value = "duplicate"
    assert shown_rows(view) == [7] and "Exact duplicates" in view.page_label.value
    assert view.quality.problem_rows.options[0] == ("row 7: same as row 3", 7)
    view.quality.problem_rows.value = 7
    assert session.selected_row == 7
    view.quality.problems.value = "empty_turn"
    view.quality.problem_rows.value = 9
    assert session.selected_row == 9 and shown_rows(view) == [9]


def test_loading_from_the_widget_offers_the_option_an_error_names(session, tmp_path):
    path = tmp_path / "tasks.jsonl"
    task = {
        "instruction": "Add",
        "instances": [{"input": "1 1", "output": "2"}, {"input": "2 2", "output": "4"}],
    }
    path.write_text(json.dumps(task) + "\n")
    view = DatasetBrowser(session)
    view.loader.source.value = str(path)
    view.loader.load_button.click()
    assert session.dataset is None and "instances='expand'" in view.message.text
    assert view.loader.option.layout.display != "none" and "expand" in view.loader.option.options
    view.loader.option.value = "expand"
    view.loader.load_button.click()
    assert len(session.dataset) == 2 and "Loaded 2 rows" in view.message.text
    assert shown_rows(view) == [0, 1]


def test_column_dropdowns_map_an_unknown_layout(session, tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("query,reply\nWhat is 1+1?,2\n")
    view = DatasetBrowser(session)
    view.loader.source.value = str(path)
    view.loader.load_button.click()
    assert "No known layout" in view.message.text
    fields = view.loader.mapping_fields()
    assert (
        set(fields) >= {"prompt", "completion"} and ("query", "query") in fields["prompt"].options
    )
    fields["prompt"].value, fields["completion"].value = "query", "reply"
    view.loader.load_button.click()
    assert session.dataset[0]["messages"][1] == {"role": "assistant", "content": "2"}


def test_the_length_histogram_counts_every_row(browser, session):
    browser.quality.lengths_button.click()
    assert browser.message.text == ""
    prompt, response, total = browser.quality.lengths.figure.data
    assert sum(total.y) == 25 and sum(prompt.y) == 25 and sum(response.y) == 25
    assert "25 rows" in browser.quality.note.value
    session.set_max_length(8)  # inside the data: drawn as a line
    browser.quality.lengths_button.click()
    assert browser.quality.lengths.figure.layout.shapes[0].x0 == session.max_length
    session.set_max_length(512)
    assert "plot the lengths again" in browser.quality.note.value


def test_tokenising_a_large_set_counts_its_rows_on_the_progress_line(session):
    from workbench.data.lengths import PROGRESS_MIN_ROWS

    session.load_dataset(rows_of(PROGRESS_MIN_ROWS))
    view = DatasetBrowser(session, page_size=10)
    labels = []
    view.progress.label.observe(lambda change: labels.append(change["new"]), names="value")
    view.quality.lengths_button.click()
    assert labels[0] == f"Tokenizing rows: 0 / {PROGRESS_MIN_ROWS:,} rows"
    assert labels[-1].startswith(f"Tokenizing rows: {PROGRESS_MIN_ROWS:,} / {PROGRESS_MIN_ROWS:,}")
    assert view.progress.layout.display == "none"  # the line leaves once the work is done
    view.close()


def test_a_new_dataset_resets_the_view(browser, session):
    browser.query.value = "Question 2"
    browser.search_button.click()
    session.load_dataset(rows_of(3))
    assert shown_rows(browser) == [0, 1, 2] and browser.view is None


def test_an_edit_in_the_browser_keeps_each_turns_other_keys(session):
    reasoning = "91 = 7 * 13, so it is not prime."
    row = {
        "messages": [
            {"role": "user", "content": "Is 91 prime?"},
            {"role": "assistant", "content": "No", "reasoning_content": reasoning, "weight": 1},
        ]
    }
    session.load_dataset([row, row])
    browser = DatasetBrowser(session)
    browser.row_buttons[1].click()
    assert (
        "reasoning_content" in browser.editor.turns.children[1].children[3].value
    )  # shown as kept
    browser.editor.turns.children[1].children[1].value = "No."
    browser.editor.save_button.click()
    assert session.dataset[1]["messages"][1] == {
        "role": "assistant",
        "content": "No.",
        "reasoning_content": reasoning,
        "weight": 1,
    }


def test_the_loader_says_what_could_not_be_kept_as_given(session, tmp_path):
    path = tmp_path / "with_flag_column.jsonl"
    row = {
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
        "flag": "from the source",
    }
    path.write_text(json.dumps(row) + "\n")
    view = DatasetBrowser(session)
    view.loader.source.value = str(path)
    view.loader.load_button.click()
    assert view.loader.message.level == "warning" and "Loaded 1 row (" in view.loader.message.text
    assert "flag" in view.loader.message.details.value


HUGE = "".join(f"log line {i:07d}: all quiet\n" for i in range(345_000))  # 10 MB in one turn


@pytest.fixture
def huge_browser(session):
    rows = rows_of(6)
    rows[3]["messages"][0]["content"] = HUGE
    session.load_dataset(rows)
    view = DatasetBrowser(session)
    yield view
    view.close()


def pager_of(view: DatasetBrowser, slot: int):
    """The label, "◀ earlier" and "show more ▶" of the one long turn in row view `slot`."""
    [pager] = view.row_pagers[slot].children
    return pager.children


def test_a_10_mb_row_sends_a_bounded_page_and_show_more_pages_through_it(huge_browser, session):
    assert text_bytes(huge_browser) < 100_000  # the whole browser: rows, editor, panels
    row_view = huge_browser.row_views[3].value
    assert len(row_view) < 3 * TURN_CHARS and HUGE[:500] in row_view
    assert f"{len(HUGE) - TURN_CHARS:,} more characters not shown" in row_view
    assert all(not view.children for k, view in enumerate(huge_browser.row_pagers) if k != 3)
    label, earlier, more = pager_of(huge_browser, 3)
    assert earlier.disabled and f"characters 1–{TURN_CHARS:,} of {len(HUGE):,}" in label.value
    more.click()
    label, earlier, more = pager_of(huge_browser, 3)
    assert f"characters {TURN_CHARS + 1:,}–{2 * TURN_CHARS:,}" in label.value
    window = HUGE[TURN_CHARS : 2 * TURN_CHARS]
    assert window[100:600] in huge_browser.row_views[3].value
    assert f"{TURN_CHARS:,} characters before" in huge_browser.row_views[3].value
    earlier.click()
    assert "characters 1–" in pager_of(huge_browser, 3)[0].value
    session.select(3)  # the editor holds the head of the long turn, not all of it
    [textarea] = [
        t.children[1] for t in huge_browser.editor.turns.children if len(t.children[1].value) > 100
    ]
    assert textarea.value == HUGE[:EDIT_CHARS] and text_bytes(huge_browser) < 100_000


def test_an_edit_of_a_long_turn_keeps_its_hidden_rest_unless_told_not_to(huge_browser, session):
    session.select(3)
    head = huge_browser.editor.turns.children[0]
    assert "keep the hidden" in head.children[4].children[1].description
    head.children[1].value = "Edited head.\n" + head.children[1].value[100:]
    huge_browser.editor.save_button.click()
    assert session.dataset[3]["messages"][0]["content"] == "Edited head.\n" + HUGE[100:]
    head = huge_browser.editor.turns.children[0]
    head.children[1].value = "Only this."
    head.children[4].children[1].value = False  # untick "keep the hidden ... characters"
    huge_browser.editor.save_button.click()
    assert session.dataset[3]["messages"][0]["content"] == "Only this."


def test_search_highlights_the_shown_part_and_says_where_hidden_matches_are(session):
    text = HUGE[:100] + "needle" + HUGE[100:3_000] + "needle" + HUGE[3_000:]
    session.load_dataset(
        [{"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}]
    )
    view = DatasetBrowser(session)
    view.query.value = "needle"
    view.search_button.click()
    shown = view.row_views[0].value
    assert shown.count("<mark") == 1 and "matches in the hidden part: 1 after" in shown
    pager_of(view, 0)[2].click()  # show more
    shown = view.row_views[0].value
    assert shown.count("<mark") == 1 and "matches in the hidden part: 1 before" in shown
    view.close()


def test_the_page_remembers_which_file_is_open_and_which_row_is_selected(session, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows_of(30)) + "\n")
    session.load_dataset(str(data))
    view = DatasetBrowser(session, page_size=10)  # a view drawn after the load (a restart)
    assert view.loader.source.value == str(data)
    view.go_to_row(21)
    assert view.jump.value == 21  # the Row box says which row is selected
    session.select(4)  # selected from code, or in another view
    assert view.jump.value == 4
    view.close()


def test_a_flag_leaves_the_quality_check_standing_and_an_edit_does_not(browser, session):
    browser.quality.check()
    session.flag(2, "look again")
    assert "Rows changed" not in browser.quality.note.value  # a flag changes no text
    session.edit(3, [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}])
    assert "Rows changed since the check" in browser.quality.note.value


def test_the_data_tab_makes_the_eval_split_and_says_what_it_holds(browser, session):
    bar = browser.split_bar
    assert "No eval split" in bar.state.value and bar.split_button.description == "Make eval split"
    bar.share.value = 0.2
    bar.split_button.click()
    train, held = session.split_rows
    assert len(held) == 5 and f"{len(train)} training rows, 5 eval rows" in bar.state.value


def test_the_turn_filter_reads_as_english(browser):
    labels = [label for label, _ in browser.has_role.options]
    assert "has an assistant turn" in labels and "has a user turn" in labels
