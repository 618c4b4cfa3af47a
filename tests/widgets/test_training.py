"""TrainingLauncher: the form starts, plots, stops and resumes real runs; errors show in words."""

from __future__ import annotations

import re
import time

import pytest

from widgets.live_plot import Curves, downsample, svg_chart
from widgets.training import TrainingLauncher


def wait_for(predicate, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


@pytest.fixture
def launcher(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    view = TrainingLauncher(session, plot_backend="plotly")
    view.fields["method"].value = "lora"
    view.fields["batch_size"].value = 2
    return view


def test_bad_values_show_a_sentence_and_start_nothing(launcher, session):
    launcher.fields["max_steps"].value = 0
    assert launcher.start() is None
    assert "max_steps" in launcher.message.value
    assert session.runs == []


def test_estimate_and_reasons_are_shown(launcher):
    assert "GB" in launcher.estimate_box.value and "s per step" in launcher.estimate_box.value
    assert "learning_rate" in launcher.why.value


@pytest.mark.slow
def test_start_plots_live_then_stop_and_resume(launcher, session):
    heard = []
    session.observe(lambda change: heard.append(change.new.status.state), names="runs")
    launcher.fields["max_steps"].value = 100_000
    launcher.start_button.click()
    run = launcher.current_run
    assert run is not None and session.runs[-1].name == run.name
    wait_for(lambda: launcher.plot.point_count() >= 3)  # the background poller fed the plot
    assert len(launcher.plot.figure.data[0].y) >= 3

    def label() -> str:
        return {name: text for text, name in launcher.runs_table.options}[run.name]

    def labelled_step() -> int:
        return int(re.search(r"step (\d+)/", label()).group(1))

    # the table follows the run's steps (status.json's heartbeat), not only its changes of state
    wait_for(lambda: "running" in label() and labelled_step() >= 1, timeout=30)
    assert launcher.runs_table.value == (run.name,)
    launcher.stop_button.click()
    assert run.wait(timeout=120).state == "stopped"
    wait_for(lambda: "stopped" in heard, timeout=30)  # other views hear that the run ended
    launcher.refresh()
    assert "stopped" in launcher.progress_text.value
    stopped_at = run.status.step
    launcher.fields["max_steps"].value = stopped_at + 3
    launcher.resume_button.click()
    assert run.wait(timeout=240).state == "finished"
    launcher.refresh()
    assert launcher.plot.curves[run.name].steps[-1] == stopped_at + 3
    assert "adapter" in launcher.message.value


def test_a_failed_run_shows_its_message_and_log(launcher, session, chat_rows):
    launcher.fields["max_steps"].value = 2
    run = launcher.start()
    run.wait(timeout=240)
    status = run.folder.read_status()
    status.state, status.message, status.traceback_tail = (
        "failed",
        "The GPU ran out of memory. Lower batch_size",
        "Traceback <b>x</b>",
    )
    run.folder.write_status(status)
    launcher.refresh()
    assert "Lower batch_size" in launcher.message.value
    assert "&lt;b&gt;x&lt;/b&gt;" in launcher.details.value  # escaped, never markup


def test_long_series_are_downsampled_and_keep_the_last_point():
    xs = list(range(10_000))
    dx, dy = downsample(xs, xs, limit=1000)
    assert len(dx) <= 1001 and dx[-1] == 9999 and dy[-1] == 9999


def test_svg_fallback_escapes_run_names():
    curves = Curves()
    curves.add({"step": 1, "loss": 2.0})
    curves.add({"step": 2, "loss": 1.0, "eval_loss": 1.5})
    svg = svg_chart({"<script>x</script>": curves}, "<script>x</script>")
    assert "<polyline" in svg and "<script>" not in svg


def test_dpo_signals_are_drawn_when_a_run_logs_them():
    from widgets.live_plot import DPO_SERIES, LossPlot

    plot = LossPlot("plotly")
    plot.show_runs("run-2", {"run-2": [{"step": 1, "loss": 0.69, "rewards/margins": 0.1,
                                        "rewards/accuracies": 0.5}]})  # fmt: skip
    plot.append(
        "run-2", [{"step": 2, "loss": 0.5, "rewards/margins": 0.4, "rewards/accuracies": 1.0}]
    )
    traces = {t.name: t for t in plot.figure.data}
    assert list(traces["DPO margins"].y) == [0.1, 0.4] and traces["DPO margins"].visible
    assert list(traces["DPO accuracies"].y) == [0.5, 1.0]
    assert not traces["DPO chosen"].visible  # nothing logged, nothing drawn
    assert len(DPO_SERIES) == 4
