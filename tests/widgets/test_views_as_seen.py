"""The views as a person sees them: readable colours in both themes, the run that is
followed after a restart, buttons that cannot act, keys, empty states, plots, labels, small
things. What the page itself shows is checked in tests/e2e/test_views_in_browser.py."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time

import ipywidgets as widgets
import pytest

from tests.widgets.test_training import end_as
from widgets import Workbench
from widgets.common.keys import PROMPT_ESM, ClickableHTML
from widgets.common.theme import (
    BACKGROUNDS,
    CSS,
    PLOT_COLOURS,
    READABLE_BUTTON_STYLES,
    SERIES_COLOURS,
    TRAINED_BACKGROUND,
    contrast,
    plural,
)
from widgets.compare.comparator import ChatComparator
from widgets.compare.preferences_panel import PreferencesPanel
from widgets.data.dataset_browser import DatasetBrowser
from widgets.template.template_editor import STYLE as TEMPLATE_STYLE
from widgets.template.template_editor import TemplateEditor
from widgets.train.live_plot import NO_RUN, NOT_SELECTED, LossPlot
from widgets.train.training import TrainingLauncher
from workbench.train import RunStatus, TrainConfig

# JupyterLab's text colour over its page: rgba(0,0,0,.87) on white, rgba(255,255,255,.87) on
# #212121 (the dark theme's panels), as widgets.common.theme says.
THEMES = {"light": ("#000000", "#ffffff"), "dark": ("#ffffff", "#212121")}


def blend(rgba: str, over: str) -> str:
    """An "rgba(r, g, b, a)" colour painted over a "#rrggbb" one, as "#rrggbb"."""
    *rgb, alpha = (float(x) for x in re.findall(r"[\d.]+", rgba))
    under = [int(over[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(alpha * c + (1 - alpha) * u):02x}" for c, u in zip(rgb, under))


def all_widgets(root: widgets.Widget) -> list[widgets.Widget]:
    """Every widget under `root` (children of boxes, tabs and accordions)."""
    found, stack = [], [root]
    while stack:
        widget = stack.pop()
        found.append(widget)
        stack.extend(getattr(widget, "children", ()) or ())
    return found


@pytest.fixture
def live_run(session, chat_rows):
    """A prepared run that looks alive (a sleeping stand-in process), ended after the test."""
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    run = session.prepare(TrainConfig(method="lora", max_steps=9, batch_size=2))
    stand_in = subprocess.Popen(["sleep", "300"])
    status = RunStatus("running", step=3, max_steps=9, pid=stand_in.pid, host=socket.gethostname())
    status.devices, status.heartbeat = ["cpu"], time.time()
    run.folder.write_status(status)
    yield run
    run.folder.write_status(RunStatus("stopped", step=3, max_steps=9))
    stand_in.kill()
    stand_in.wait()


# -- 1. colours that read in both themes ----------------------------------------------------------
def test_chart_lines_reach_three_to_one_on_every_background():
    for colour in [*PLOT_COLOURS.values(), *SERIES_COLOURS]:
        for background in BACKGROUNDS:
            assert contrast(colour, background) >= 3, (colour, background)


def test_the_raw_loss_line_is_drawn_in_a_readable_colour_at_full_strength():
    plot = LossPlot("plotly")
    plot.show_runs("run-1", {"run-1": [{"step": 1, "loss": 2.0, "learning_rate": 1e-3}]})
    raw = plot.figure.data[0]
    assert raw.name == "train loss" and raw.line.color == PLOT_COLOURS["raw"]
    assert raw.opacity in (None, 1) and raw.line.width >= 1.2
    readable = {*PLOT_COLOURS.values(), *SERIES_COLOURS}
    assert all(trace.line.color in readable for trace in plot.figure.data)


def test_trained_tokens_read_at_four_and_a_half_to_one_in_both_themes():
    assert TRAINED_BACKGROUND in TEMPLATE_STYLE and "success-color3" not in TEMPLATE_STYLE
    for text, page in THEMES.values():
        highlight = blend(TRAINED_BACKGROUND, page)
        shown_text = blend(
            f"rgba({int(text[1:3], 16)}, {int(text[3:5], 16)}, {int(text[5:7], 16)}, 0.87)",
            highlight,
        )
        assert contrast(shown_text, highlight) >= 4.5, (page, highlight)


def test_every_button_of_every_view_uses_a_style_that_keeps_its_label_readable(session):
    app = Workbench(session, plot_backend="svg")
    app.wait_until_loaded(120)
    buttons = [w for w in all_widgets(app) if isinstance(w, widgets.Button)]
    assert len(buttons) > 30
    unreadable = {
        b.description: b.button_style
        for b in buttons
        if b.button_style not in READABLE_BUTTON_STYLES
    }
    assert unreadable == {}


# -- 2. after a restart the launcher follows the live run, with its settings --------------------
def test_a_new_launcher_selects_and_follows_the_running_run(session, live_run, no_runner):
    older = session.prepare(TrainConfig(method="lora", max_steps=2, batch_size=2))
    end_as(older, "stopped")  # the latest run, but not the one training
    view = TrainingLauncher(session, plot_backend="svg")  # as after a kernel restart
    assert view.runs_table.value == (live_run.name,)
    assert view.plot.current == live_run.name
    assert view.fields["max_steps"].value == 9 and view.fields["batch_size"].value == "2"
    assert f"{live_run.name}: running, step 3/9" in view.progress_text.value


def test_with_no_run_training_the_latest_run_is_selected(session, chat_rows, no_runner):
    session.load_dataset(chat_rows * 8)
    first = session.prepare(TrainConfig(method="lora", max_steps=2, batch_size=2))
    latest = session.prepare(TrainConfig(method="lora", max_steps=4, batch_size=2))
    end_as(first, "finished")
    end_as(latest, "stopped", step=3)
    view = TrainingLauncher(session, plot_backend="svg")
    assert view.runs_table.value == (latest.name,)
    assert view.fields["max_steps"].value == 4


# -- 3. buttons that cannot act are disabled, and say why -----------------------------------------
def test_stop_and_resume_are_disabled_with_a_reason_until_a_run_can_use_them(session, no_runner):
    view = TrainingLauncher(session, plot_backend="svg")
    for button in (view.stop_button, view.resume_button):
        assert button.disabled and "Select" in button.tooltip
    view.stop_button.click()  # clicked anyway (from code): the reason is told, nothing happens
    assert view.message.level == "warning" and "Select a run" in view.message.text
    view.resume_button.click()
    assert view.message.level == "warning" and "resume" in view.message.text
    assert session.runs == []


def test_an_ended_run_can_be_resumed_but_not_stopped(session, chat_rows, no_runner):
    session.load_dataset(chat_rows * 8)
    run = session.prepare(TrainConfig(method="lora", max_steps=4, batch_size=2))
    end_as(run, "stopped", step=2)
    view = TrainingLauncher(session, plot_backend="svg")
    assert view.stop_button.disabled and "already stopped" in view.stop_button.tooltip
    assert not view.resume_button.disabled and run.name in view.resume_button.tooltip


def test_resume_is_disabled_while_the_form_leaves_nothing_to_train(session, chat_rows, no_runner):
    """A run that trained all 30 of its 30 steps: Resume says why it cannot, until max steps
    is raised past 30; then it resumes to the new budget."""
    session.load_dataset(chat_rows * 8)
    run = session.prepare(TrainConfig(method="lora", max_steps=30, batch_size=2))
    end_as(run, "finished", step=30)
    view = TrainingLauncher(session, plot_backend="svg")
    assert view.fields["max_steps"].value == 30
    assert view.resume_button.disabled and "trained 30 of 30 steps" in view.resume_button.tooltip
    view.fields["max_steps"].value = 40
    assert not view.resume_button.disabled
    view.resume_button.click()
    assert no_runner and run.config.max_steps == 40


def test_a_running_run_can_be_stopped_but_not_resumed(session, live_run):
    view = TrainingLauncher(session, plot_backend="svg")
    assert not view.stop_button.disabled and "after its current step" in view.stop_button.tooltip
    assert view.resume_button.disabled and "stop it before resuming" in view.resume_button.tooltip


# -- 4. keys and clicks -------------------------------------------------------------------------
@pytest.fixture
def browser(session):
    session.load_dataset(
        [
            {
                "messages": [
                    {"role": "user", "content": f"Question {i}"},
                    {"role": "assistant", "content": f"Answer {i}"},
                ]
            }
            for i in range(25)
        ]
    )
    view = DatasetBrowser(session, page_size=10)
    yield view
    view.close()


def shown_rows(view: DatasetBrowser) -> list[int]:
    return [int(b.description[1:]) for b in view.row_buttons if b.layout.display != "none"]


def test_enter_in_the_search_box_searches(browser):
    assert not browser.query.continuous_update  # the value arrives on Enter (or leaving the box)
    browser.query.value = "Question 1"  # what Enter sends
    assert shown_rows(browser) == [1, *range(10, 19)] and "11 rows" in browser.page_label.value


def test_a_search_entered_then_clicked_runs_once(browser, monkeypatch):
    calls = []
    search = browser.session.dataset.search
    monkeypatch.setattr(
        browser.session.dataset, "search", lambda *a, **k: calls.append(a) or search(*a, **k)
    )
    browser.query.value = "Question 2"
    browser.search_button.click()  # Enter, then a click on the button: the same search
    assert len(calls) == 1 and shown_rows(browser) == [2, *range(20, 25)]


def test_clicking_a_rows_text_selects_the_row(browser, session):
    assert isinstance(browser.row_views[3], ClickableHTML)
    browser.row_views[3]._on_message(None, {"event": "click"}, [])  # what the page sends
    assert session.selected_row == 3 and "Selected row 3" in browser.editor.title.value
    assert "wb-selected" in browser.row_views[3].value


def test_ctrl_enter_in_the_prompt_sends_it(session, monkeypatch):
    view = ChatComparator(session)
    sent = []
    monkeypatch.setattr(view, "send", lambda: sent.append(view.prompt.value))
    view.prompt.value = "Hi there"
    view.prompt._on_message(None, {"event": "submit"}, [])  # what Ctrl/Cmd+Enter sends
    assert sent == ["Hi there"]
    assert "ctrlKey" in PROMPT_ESM and "metaKey" in PROMPT_ESM
    assert "data-lm-suppress-shortcuts" in PROMPT_ESM  # JupyterLab does not run the cell


def test_send_waits_for_a_prompt_and_an_empty_one_is_no_error(session):
    from tests.widgets.test_comparator import add_adapter_run

    add_adapter_run(session)  # two contestants, so the prompt is what is missing
    view = ChatComparator(session)
    assert view.send_button.disabled and "Type a prompt" in view.send_button.tooltip
    view.prompt.submit()  # Ctrl+Enter in an empty box
    assert view.message.text == "" and view.conversation is None  # nothing sent, nothing red
    view.prompt.value = "  "
    assert view.send_button.disabled
    view.prompt.value = "Hi"
    assert not view.send_button.disabled


# -- 5. empty states: a hint, never empty axes --------------------------------------------------
def test_the_length_histogram_is_a_hint_until_it_is_plotted(browser, session):
    assert (
        browser.quality.lengths.figure is None
        and "No lengths plotted yet" in browser.quality.lengths.hint.value
    )
    session.set_max_length(512)  # nothing plotted: nothing to call stale
    assert "plot the lengths again" not in browser.quality.note.value
    browser.quality.lengths_button.click()
    assert browser.quality.lengths.figure is not None
    session.set_max_length(256)
    assert "plot the lengths again" in browser.quality.note.value


def test_the_loss_chart_is_a_hint_until_a_run_has_a_point(session, no_runner):
    view = TrainingLauncher(session, plot_backend="plotly")
    assert view.plot.figure is None and view.plot.hint.value == NO_RUN
    plot = LossPlot("plotly")
    plot.has_runs = True
    plot.redraw()
    assert plot.hint.value == NOT_SELECTED and plot.figure is None
    plot.show_runs("run-1", {"run-1": []})
    assert "run-1: no loss yet" in plot.hint.value and plot.figure is None
    plot.append("run-1", [{"step": 1, "loss": 1.5}])
    assert plot.figure is not None and plot.hint.layout.display == "none"


# -- 6. plots: ranges from the data, the toolbar clear of the legend, readable rate ticks --------
def test_the_histogram_runs_over_the_data_and_marks_the_limit_only_inside_it(browser, session):
    session.set_max_length(1024)
    browser.quality.lengths_button.click()
    layout = browser.quality.lengths.figure.layout
    assert layout.xaxis.range[1] < 100 and layout.shapes == ()  # short rows, a far limit
    assert "every row is under the training length (1,024)" in browser.quality.note.value
    assert layout.legend.y < 0  # below the axis: the toolbar (top right) cannot cover it
    session.set_max_length(8)
    browser.quality.lengths_button.click()
    assert browser.quality.lengths.figure.layout.shapes[0].x0 == 8


def test_the_learning_rate_axis_is_scientific_and_runs_from_zero_to_the_highest_rate():
    plot = LossPlot("plotly")
    records = [{"step": s, "loss": 1.0, "learning_rate": 2e-4 * s / 10} for s in range(1, 11)]
    plot.show_runs("run-1", {"run-1": records})
    axis = plot.figure.layout.yaxis2
    assert axis.exponentformat == "e" and axis.tickformat == ".1e"
    assert axis.range[0] == 0 and axis.range[1] == pytest.approx(2.2e-4)
    assert plot.figure.layout.legend.y < 0


# -- 7. labels ---------------------------------------------------------------------------------
def test_the_page_label_stays_on_one_line(browser):
    assert re.search(
        r"<span class='wb-nowrap'>Page 1 of 3: 25 rows</span>", browser.page_label.value
    )


def test_one_vote_is_one_vote(session):
    panel = PreferencesPanel(session)
    session.record_preference("Q", "a", "b", chosen_model="base", rejected_model="run-1")
    assert "1 vote, " in panel.summary.value and "1 votes" not in panel.summary.value
    assert "class='wb-table'" in panel.summary.value  # aligned columns
    assert plural(2_045, "row") == "2,045 rows" and plural(1, "row") == "1 row"


def test_every_view_wraps_its_rows_and_sizes_buttons_to_their_labels(session):
    assert ".wb-view .widget-hbox { flex-wrap: wrap;" in CSS
    assert ".wb-view .widget-button, .wb-view .widget-toggle-button {" in CSS
    app = Workbench(session, plot_backend="svg")
    for view in (app, app.data, app.template, app.train, app.compare):
        assert "wb-view" in view._dom_classes


# -- 9. small things ---------------------------------------------------------------------------
def test_the_flag_reason_is_cleared_after_flagging(browser, session):
    browser.editor.flag_reason.value = "the sum is wrong"
    browser.editor.flag_button.click()
    assert session.dataset.flags == {0: "the sum is wrong"}
    assert browser.editor.flag_reason.value == ""


def test_the_estimate_gives_no_time_while_a_run_trains(session, live_run):
    view = TrainingLauncher(session, plot_backend="svg")
    assert "GB" in view.estimate_box.value  # memory still estimated
    assert "s per step" not in view.estimate_box.value
    assert f"not estimated while {live_run.name} is training" in view.estimate_box.value


def test_the_status_line_shows_the_step_the_plot_shows(session, live_run):
    with open(live_run.folder.metrics_file, "w") as f:
        f.write('{"step": 4, "loss": 1.2}\n')  # written before the runner's next status (step 3)
    view = TrainingLauncher(session, plot_backend="svg")
    assert view.plot.curves[live_run.name].steps[-1] == 4
    assert "step 4/9" in view.progress_text.value and view.progress.value == pytest.approx(4 / 9)


# -- the app paints first, then loads ---------------------------------------------------------
def test_the_workbench_shows_before_the_tokenizer_and_estimate_load(session, monkeypatch):
    release = threading.Event()
    warm_up = TemplateEditor.warm_up
    monkeypatch.setattr(TemplateEditor, "warm_up", lambda self: release.wait(60) and warm_up(self))
    app = Workbench(session, plot_backend="svg")
    assert "Loading the tokenizer" in app.template.counts.value
    assert "Estimating" in app.train.estimate_box.value and "detecting" in app.train.hardware.value
    release.set()
    assert app.wait_until_loaded(120) and app.message.text == ""
    assert "trained of" in app.template.counts.value
    assert "s per step" in app.train.estimate_box.value


@pytest.fixture
def no_runner(monkeypatch):
    """Runs are prepared as usual but their runner never starts."""
    from workbench.train import launch

    started = []
    monkeypatch.setattr(launch, "start_runner", lambda run, warm=None: started.append(run) or run)
    yield started
    for run in started:
        end_as(run, "stopped")
