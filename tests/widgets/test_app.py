"""Workbench: four views over one Session, connected only through it."""

from __future__ import annotations

import time

import pytest

from widgets import Workbench
from widgets.common.compat import title_of


def test_a_row_selected_in_data_is_previewed_in_template(session, chat_rows):
    session.load_dataset(chat_rows)
    app = Workbench(session, plot_backend="svg")
    assert tuple(title_of(app.tabs, i) for i in range(4)) == (
        "Data",
        "Template",
        "Train",
        "Compare",
    )
    app.data.row_buttons[2].click()
    assert session.selected_row == 2
    assert "Row 2" in app.template.counts.value
    assert "Reverse: a, b, c" in app.template.text_view.value


@pytest.mark.slow
def test_a_run_that_ends_in_train_becomes_a_contestant_in_compare(session, chat_rows):
    session.load_dataset(chat_rows * 4)
    session.set_max_length(64)
    app = Workbench(session, plot_backend="svg")
    assert app.compare.pickers[0].options == ("base",)
    app.train.fields["method"].value = "lora"
    app.train.fields["max_steps"].value = 3
    app.train.fields["batch_size"].value = "2"
    run = app.train.start()
    assert run is not None, app.train.message.text
    run.wait(timeout=240)
    deadline = time.time() + 30
    while run.name not in app.compare.pickers[0].options and time.time() < deadline:
        time.sleep(0.3)
    assert run.name in app.compare.pickers[0].options


def test_a_workspace_on_a_full_disk_opens_with_what_takes_the_room(tmp_path, file_size_limit):
    """The app says why nothing can be changed (the Session's read-only reason), once, on top."""
    import workbench as wb

    wb.Session.open(tmp_path / "ws").close()
    with file_size_limit(0), pytest.warns(wb.WorkspaceWarning):
        session = wb.Session.open(tmp_path / "ws")
    app = Workbench(session, plot_backend="svg")
    assert "open read-only" in app.message.text and "of which checkpoints" in app.message.text
    session.close()


def test_every_view_offers_the_run_selected_in_the_train_tab_first(session):
    from tests.widgets.test_comparator import add_adapter_run
    from widgets.compare.comparator import ChatComparator
    from widgets.train.training import TrainingLauncher

    add_adapter_run(session, "run-1", seed=1)
    add_adapter_run(session, "run-2", seed=2)
    train = TrainingLauncher(session, plot_backend="svg", lazy=True)
    compare = ChatComparator(session)

    def offered() -> tuple:
        return (
            train.export.model.value,
            compare.preferences_panel.start_from.value,
            compare.batch.models.value,
            [p.value for p in compare.pickers],
        )

    assert session.selected_run.name == "run-2"  # the newest, selected in the table
    assert offered() == ("run-2", "run-2", ("base", "run-2"), ["base", "run-2"])
    train.runs_table.value = ("run-1",)
    assert offered() == ("run-1", "run-1", ("base", "run-1"), ["base", "run-1"])
    compare.batch.models.value = ("run-2",)  # a person's own choice stays
    train.runs_table.value = ("run-2",)
    assert compare.batch.models.value == ("run-2",) and train.export.model.value == "run-2"
