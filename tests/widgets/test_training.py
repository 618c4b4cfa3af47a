"""TrainingLauncher: the form is TrainConfig's, planned as from code; runs start, resume, show."""

from __future__ import annotations

import re

import pytest

from tests.conftest import wait_for
from widgets.common.compat import tooltip_of
from widgets.train.live_plot import Curves, downsample, svg_chart
from widgets.train.training import TrainingLauncher
from workbench.persist import append_jsonl, read_json
from workbench.train import ConfigError, RunStatus, TrainConfig


@pytest.fixture
def launcher(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    view = TrainingLauncher(session, plot_backend="plotly")
    view.fields["method"].value = "lora"
    view.fields["batch_size"].value = "2"
    return view


@pytest.fixture
def no_runner(monkeypatch):
    """Runs are prepared as usual but their runner never starts; each is ended after the test."""
    from workbench.train import launch

    started = []
    monkeypatch.setattr(launch, "start_runner", lambda run, warm=None: started.append(run) or run)
    yield started
    for run in started:  # a queued run that never starts would keep the pollers looking
        end_as(run, "stopped")


def end_as(run, state: str, step: int = 2, **fields) -> None:
    """Give a prepared run the status (and checkpoint) it would have after stopping or failing."""
    checkpoint = run.folder.checkpoints_dir / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    run.folder.write_status(RunStatus(state, step=step, max_steps=step, **fields))


def test_a_bad_value_is_told_once_beside_its_field_in_the_forms_words(launcher, session):
    launcher.fields["max_steps"].value = 0
    assert launcher.start() is None
    assert launcher.form.problem.startswith("max steps must be positive")  # its label
    assert launcher.form.marked == "max_steps"
    assert "wb-invalid" in launcher.fields["max_steps"]._dom_classes
    assert launcher.message.text == "" and launcher.estimate_message.text == ""  # once
    assert session.runs == []
    launcher.fields["max_steps"].value = 3  # fixed: the mark and the sentence go
    assert (
        launcher.form.problem == ""
        and "wb-invalid" not in launcher.fields["max_steps"]._dom_classes
    )


def test_a_refusal_at_start_names_the_control_that_resolves_it(launcher, session):
    launcher.fields["keep_best"].value = True  # needs an eval split, and there is none
    assert launcher.start() is None
    told = launcher.form.problem
    assert told.startswith("keep best picks the best evaluation") and "session." not in told
    assert launcher.form.marked == "keep_best" and launcher.message.text == ""
    assert "No eval split" in launcher.split_bar.state.value  # the control, above the form
    launcher.split_bar.split()
    assert session.split_rows[1] and "eval row" in launcher.split_bar.state.value


def test_estimate_and_reasons_are_shown(launcher):
    assert "GB" in launcher.estimate_box.value and "s per step" in launcher.estimate_box.value
    assert "logits" in launcher.estimate_box.value  # every part the total adds up
    assert "learning_rate" in launcher.why.value  # planned: the value and why
    assert "1B parameters" in launcher.why.value


def test_the_form_starts_at_train_config_defaults(session):
    view = TrainingLauncher(session, plot_backend="svg")
    assert view.form.value() == TrainConfig()
    assert view.fields["max_steps"].value == TrainConfig().max_steps


def test_a_launcher_for_a_config_subclass_shows_its_new_field(session):
    from tests.widgets.test_forms import MyConfig

    class MyLauncher(TrainingLauncher):
        config_class = MyConfig

    view = MyLauncher(session, plot_backend="svg")
    assert tooltip_of(view.fields["new_knob"]) == "a new knob"
    view.fields["new_knob"].value = 5
    assert view.form.value() == MyConfig(new_knob=5)


def test_start_button_and_code_write_the_same_config(session, chat_rows, no_runner):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    from_code = session.train(TrainConfig(max_steps=7), start=False)
    no_runner.append(from_code)  # ended after the test like the others
    view = TrainingLauncher(session, plot_backend="svg")
    view.fields["max_steps"].value = 7  # everything else left as the form opened
    view.start_button.click()
    from_widget = no_runner[-1]
    assert from_widget.name != from_code.name
    assert (
        read_json(from_widget.folder.config_file)["train"]
        == (read_json(from_code.folder.config_file)["train"])
    )


def test_a_run_started_from_code_resumes_from_the_widget(session, chat_rows, no_runner):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    run = session.train(TrainConfig(method="lora", batch_size=2, max_steps=2), start=False)
    end_as(run, "stopped")
    view = TrainingLauncher(session, plot_backend="svg")
    view.runs_table.value = (run.name,)
    view.fields["max_steps"].value = 5
    view.resume_button.click()
    assert no_runner and no_runner[-1].name == run.name, view.message.text
    config = run.config
    assert (config.max_steps, config.method, config.batch_size) == (5, "lora", 2)


def test_a_run_started_from_the_widget_resumes_from_code(launcher, session, no_runner):
    launcher.fields["max_steps"].value = 2
    run = launcher.start()
    end_as(run, "stopped")
    session.resume(run.name, TrainConfig(max_steps=6))
    assert run.config.max_steps == 6 and run.config.batch_size == 2
    end_as(run, "died", step=6)
    session.train(TrainConfig(max_steps=8), resume=run)  # the old keyword still works
    assert run.config.max_steps == 8
    end_as(run, "stopped", step=8)
    with pytest.raises(ConfigError, match="batch_size"):
        session.resume(run, TrainConfig(batch_size=4))


def test_a_failed_run_shows_its_message_and_details(launcher, no_runner):
    launcher.fields["max_steps"].value = 2
    run = launcher.start()
    end_as(
        run,
        "failed",
        message="The GPU ran out of memory. Lower batch_size",
        traceback_tail="Traceback <b>x</b>",
    )
    launcher.refresh()
    assert "Lower batch size" in launcher.message.text and launcher.message.level == "error"
    assert "&lt;b&gt;x&lt;/b&gt;" in launcher.message.details.value  # escaped, never markup
    assert launcher.message.details_box.layout.display != "none"


@pytest.mark.slow
def test_start_plots_live_then_stop_and_resume(launcher, session):
    heard = []
    session.observe(lambda change: heard.append(change.new.status.state), names="runs")
    launcher.fields["max_steps"].value = 100_000
    launcher.start_button.click()
    run = launcher.current_run
    assert run is not None and session.runs[-1].name == run.name

    def drawn() -> int:  # points in the chart itself (made just after the curves get a point)
        figure = launcher.plot.figure
        return len(figure.data[0].y or ()) if figure is not None else 0

    wait_for(lambda: drawn() >= 3)  # the background poller fed the plot
    assert launcher.plot.point_count() >= 3

    def label() -> str:
        return {name: text for text, name in launcher.runs_table.options}[run.name]

    def labelled_step() -> int:
        return int(re.search(r"step (\d+)/", label()).group(1))

    # the table follows the run's steps (announced by the session's run watcher)
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
    assert "adapter" in launcher.message.text


def test_start_hands_the_run_to_the_runner_waiting_since_the_launcher_showed(
    session, chat_rows, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_WARM_RUNNER", "1")
    session.load_dataset(chat_rows * 8)
    view = TrainingLauncher(session)
    warm = session._warm
    assert warm is not None and warm.alive  # its imports run while the person reads the form
    view.fields["method"].value, view.fields["max_steps"].value = "lora", 2
    view.start_button.click()
    run = view.current_run
    assert run.status.pid == warm.process.pid
    assert run.wait(timeout=240).state == "finished", run.log_tail()
    wait_for(
        lambda: session._warm is not None and session._warm is not warm,
        timeout=30,
        what="a new runner waiting once the run ended",
    )


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
    from widgets.train.live_plot import LossPlot

    plot = LossPlot("plotly")
    plot.show_runs(
        "run-2",
        {"run-2": [{"step": 1, "loss": 0.69, "rewards/margins": 0.1, "rewards/accuracies": 0.5}]},
    )
    plot.append(
        "run-2", [{"step": 2, "loss": 0.5, "rewards/margins": 0.4, "rewards/accuracies": 1.0}]
    )
    traces = {t.name: t for t in plot.figure.data}
    assert list(traces["DPO margins"].y) == [0.1, 0.4] and traces["DPO margins"].visible
    assert list(traces["DPO accuracies"].y) == [0.5, 1.0]
    assert not traces["DPO chosen"].visible  # nothing logged, nothing drawn


def test_a_new_run_without_points_leaves_no_curve_of_the_last_one_behind():
    """The chart hides until the new run's first point; hidden, it holds none of the old run's
    points (the browser test counted those as the new run's, and waited for a run that lagged)."""
    from widgets.train.live_plot import LossPlot

    plot = LossPlot("plotly")
    plot.show_runs("run-1", {"run-1": [{"step": s, "loss": 1.0} for s in (1, 2, 3, 4)]})
    assert len(plot.figure.data[0].x) == 4
    plot.show_runs("run-2", {"run-2": []})
    assert not plot.figure.data[0].x and plot.box.layout.display == "none"
    plot.append("run-2", [{"step": 1, "loss": 2.0}])
    assert list(plot.figure.data[0].x) == [1] and plot.box.layout.display == ""


def test_probe_scores_draw_on_their_own_axis():
    from widgets.train.live_plot import LossPlot

    plot = LossPlot("plotly")
    plot.show_runs(
        "run-1",
        {
            "run-1": [
                {"step": 1, "loss": 1.0, "learning_rate": 2e-4},
                {"step": 2, "probe_seconds": 1.0, "probe_score": 0.5},
            ]
        },
    )
    traces = {t.name: t for t in plot.figure.data}
    assert (
        list(traces["probe exact match"].y) == [0.5] and traces["probe exact match"].yaxis == "y4"
    )
    assert plot.figure.layout.yaxis4.visible and plot.figure.layout.yaxis2.range[1] < 1e-3


def test_the_launcher_offers_reward_and_grpo_with_their_own_fields(session, chat_rows, no_runner):
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    view = TrainingLauncher(session, plot_backend="svg")
    methods = [value for _, value in view.fields["method"].options]
    assert "reward" in methods and "grpo" in methods
    assert not view.form.visible("rewards") and not view.form.visible("num_generations")
    view.fields["method"].value = "grpo"
    for name in ("rewards", "reward_weights", "num_generations", "max_completion_length"):
        assert view.form.visible(name), name
    assert "at least one reward" in view.form.problem  # told beside the field while filled in
    assert view.form.marked == "rewards"
    view.fields["rewards"].value = "exact_match\nformat=\\d+"
    assert "num_generations" in view.why.value  # planned for GRPO, with the reason shown
    view.fields["reward_weights"].value = "1, 0.25"
    for name, value in {"max_steps": 2, "batch_size": "4", "num_generations": "2"}.items():
        view.fields[name].value = value
    view.start_button.click()
    assert no_runner, view.message.text
    config = no_runner[-1].config
    assert config.method == "grpo" and config.rewards == ["exact_match", "format=\\d+"]
    assert config.reward_weights == [1.0, 0.25] and config.num_generations == 2
    view.fields["method"].value = "reward"
    assert view.form.visible("include_ties") and not view.form.visible("rewards")


def test_reward_model_and_grpo_signals_are_drawn_when_a_run_logs_them():
    from widgets.train.live_plot import LossPlot

    plot = LossPlot("plotly")
    grpo = {"step": 1, "loss": 0.0, "reward": 0.4, "kl": 0.01, "completions/mean_length": 12.0}
    grpo.update({"completions/clipped_ratio": 0.25, "rewards/exact_match/mean": 0.5})
    grpo.update({"rewards/exact_match/std": 0.2, "rewards/format/mean": 1.0})
    plot.show_runs("run-3", {"run-3": [grpo]})
    traces = {t.name: t for t in plot.figure.data if t.visible}
    assert list(traces["GRPO KL"].y) == [0.01] and list(traces["GRPO reward"].y) == [0.4]
    assert list(traces["GRPO share cut at max length"].y) == [0.25]
    assert list(traces["GRPO answer length"].y) == [12.0]
    assert list(traces["reward exact_match"].error_y.array) == [0.2]  # the spread
    assert list(traces["reward format"].y) == [1.0]
    assert "RM accuracy" not in traces
    plot.show_runs("run-4", {"run-4": [{"step": 0, "eval_loss": 0.69, "eval_accuracy": 0.5}]})
    plot.append("run-4", [{"step": 1, "loss": 0.6, "accuracy": 0.75, "margin": 0.3}])
    traces = {t.name: t for t in plot.figure.data if t.visible}
    assert list(traces["RM held-out accuracy"].y) == [0.5]
    assert list(traces["RM accuracy"].y) == [0.75] and list(traces["RM margin"].y) == [0.3]
    assert "GRPO KL" not in traces and "reward exact_match" not in traces


def test_the_runs_table_shows_the_queue_and_stop_cancels_a_waiting_run(launcher, no_runner):
    launcher.fields["max_steps"].value = 2
    first, second = launcher.start(), launcher.start()
    assert [r.name for r in no_runner] == [first.name]  # the second waits for the CPU
    labels = {name: text for text, name in launcher.runs_table.options}
    assert f"queued #1, waits for the CPU ({first.name} is training)" in labels[second.name]
    launcher.runs_table.value = (second.name,)
    launcher.stop_button.click()
    assert second.status.state == "cancelled" and "cancelled" in launcher.message.text
    end_as(first, "finished")
    assert [r.name for r in no_runner] == [first.name]  # a cancelled run never starts
    launcher.runs_table.value = (first.name,)
    launcher.stop_button.click()
    assert "already finished" in launcher.message.text and launcher.message.level == "warning"
    assert first.status.state == "finished"


def test_the_comparator_warns_while_a_run_trains_on_its_device(session, chat_rows):
    import socket
    import subprocess
    import time

    from tests.widgets.test_comparator import add_adapter_run
    from widgets.compare.comparator import ChatComparator

    add_adapter_run(session)  # a second contestant beside the base model
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    run = session.prepare(TrainConfig(method="lora", max_steps=2, batch_size=2))
    stand_in = subprocess.Popen(["sleep", "300"])  # a live "runner" that does not train
    try:
        device = "cuda:0" if __import__("torch").cuda.is_available() else "cpu"
        status = RunStatus("running", pid=stand_in.pid, host=socket.gethostname())
        status.devices, status.heartbeat = [device], time.time()
        run.folder.write_status(status)
        view = ChatComparator(session)
        view.settings_form.fields["max_new_tokens"].value = 3
        view.prompt.value = "Hi"
        view.send_button.click()
        view.wait(60)
        assert view.message.level == "warning", view.message.text
        assert f"{run.name} is training" in view.message.text and "slow" in view.message.text
    finally:
        run.folder.write_status(RunStatus("finished"))
        stand_in.kill()
        stand_in.wait()


def test_the_runs_table_shows_each_runs_peak_memory(session, chat_rows):
    from workbench.train.folder import RunProgress, RunStatus

    session.load_dataset(chat_rows * 4)
    run = session.prepare(TrainConfig(max_steps=2))
    run.folder.write_status(
        RunStatus("finished", step=2, max_steps=2, progress=RunProgress(peak_memory_gb=1.234))
    )
    view = TrainingLauncher(session, plot_backend="svg")
    assert any("peak 1.23 GB" in label for label, _ in view.runs_table.options)


def test_start_counts_its_rows_in_the_view_and_nothing_reaches_the_log(launcher, no_runner, capfd):
    labels = []
    launcher.preparing.label.observe(lambda change: labels.append(change["new"]), names="value")
    launcher.fields["max_steps"].value = 2
    run = launcher.start()
    assert any(label.startswith("Tokenising the train rows") for label in labels)
    assert launcher.preparing.layout.display == "none"  # gone once the run is prepared
    assert capfd.readouterr().err == ""  # no bar of tqdm's or datasets' for JupyterLab's log
    rows = run.info.data["train"]["rows"]
    assert launcher.message.text.startswith(f"{run.name} trains on {rows} rows")


def test_the_runs_table_shows_the_step_the_status_line_shows(launcher, no_runner):
    launcher.fields["max_steps"].value = 9
    run = launcher.start()
    run.folder.write_status(RunStatus("running", step=2, max_steps=9))
    for step in (3, 4, 5):  # logged, and plotted, before the status file says so
        append_jsonl(run.folder.metrics_file, {"step": step, "loss": 1.0})
    launcher.refresh()
    assert "step 5/9" in launcher.progress_text.value
    assert "step 5/9" in dict((v, k) for k, v in launcher.runs_table.options)[run.name]
