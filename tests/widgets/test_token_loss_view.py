"""The template editor's "Loss per token" tab: a row's tokens coloured by a model's loss."""

from __future__ import annotations

from widgets.template.template_editor import TemplateEditor
from workbench.train import TrainConfig


def test_a_run_is_offered_and_its_change_against_base_colours_the_row(session, chat_rows):
    session.load_dataset(chat_rows * 8)
    editor = TemplateEditor(session)
    view = editor.losses
    assert list(view.model.options) == ["base"] and view.baseline.value == ""
    view.score()  # the base alone: coloured by its own loss
    assert "colour: loss of base" in view.result.value
    run = session.train(TrainConfig(method="lora", max_steps=2, probes=0))
    assert run.wait(timeout=240).state == "finished"
    session.check_runs()
    assert view.model.value == run.name and view.baseline.value == "base"
    view.score()
    assert f"loss of {run.name} minus base" in view.result.value
    assert "<script" not in view.result.value


def test_scoring_with_no_data_says_what_to_do(session):
    editor = TemplateEditor(session)
    editor.losses.score()
    assert "Load a dataset first" in editor.losses.message.text
