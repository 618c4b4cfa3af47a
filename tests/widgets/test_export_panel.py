"""The Export panel: one Session call, progress, and a result a person can act on."""

from __future__ import annotations

from tests.unit.test_export import SHORT, add_run
from widgets.train.export_panel import ExportPanel
from widgets.train.training import TrainingLauncher


def test_the_panel_exports_the_chosen_run_and_shows_files_and_parity(session, chat_rows):
    session.load_dataset(chat_rows * 4)
    session.split(eval_fraction=0.25, seed=0)
    panel = ExportPanel(session)
    assert panel.export_button.disabled and panel.model.options == ()  # nothing to export yet
    add_run(session)
    session.check_runs()  # what the run watcher announces when a run appears
    assert panel.model.value == "run-1" and not panel.export_button.disabled
    panel.form.fields["format"].value = "adapter"
    panel.form.fields["max_new_tokens"].value = SHORT
    assert panel.path.placeholder.endswith("run-1-adapter")
    panel.export_button.click()
    panel.wait(timeout=300)
    out = session.workspace.exports_dir / "run-1-adapter"
    assert (out / "adapter_model.safetensors").is_file(), panel.message.text
    assert "adapter_model.safetensors" in panel.result.value and "parity" in panel.result.value
    assert panel.progress.value == 1 and panel.message.level == "info"
    assert panel.progress_text.value == "done: 5 of 5 steps"  # a full bar says it is done
    assert session.default_export_path("run-1", "adapter").name == "run-1-adapter-2"  # not reused


def test_a_refused_export_says_why_and_writes_nothing(session, chat_rows):
    session.load_dataset(chat_rows * 4)
    add_run(session, state="failed")
    panel = ExportPanel(session)
    panel.export_button.click()
    panel.wait(timeout=60)
    assert panel.message.level == "error" and "failed" in panel.message.text
    assert not session.workspace.exports_dir.exists() or not any(
        session.workspace.exports_dir.iterdir()
    )


def test_the_launcher_offers_export_beside_its_runs(session):
    launcher = TrainingLauncher(session)
    assert isinstance(launcher.export, ExportPanel) and launcher.export_box in launcher.children


def test_the_panel_offers_the_selected_run_and_keeps_a_persons_pick(session):
    from tests.widgets.test_comparator import add_adapter_run

    for k, name in enumerate(("run-1", "run-2")):
        add_adapter_run(session, name, seed=k)
    panel = ExportPanel(session)
    assert panel.model.value == "run-2"  # none selected: the newest
    session.select_run("run-1")
    assert panel.model.value == "run-1"
    panel.model.value = "run-2"  # a person's pick
    add_adapter_run(session, "run-3", seed=3)
    session.check_runs()  # a new run appears: the pick stays
    assert panel.model.value == "run-2"
    session.select_run("run-3")  # a run selected in the Train tab is offered
    assert panel.model.value == "run-3"
    panel.close()
