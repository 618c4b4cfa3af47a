"""Typed files on disk: session.json and a run's config.json round-trip, and one policy for keys
that no dataclass knows: refused, naming the key and the file, and nothing already saved is lost."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from workbench import models
from workbench.persist import from_json
from workbench.preferences import PreferenceRecord
from workbench.session.state import DatasetRef, SessionState, Split
from workbench.train.folder import RunFolder, RunInfo, RunStatus
from workbench.train.jobs import job_refusal


def test_session_state_round_trips_through_json():
    state = SessionState(
        model=models.ModelSpec("some/model", revision="abc"),
        template=wb.Template.preset("chatml"),
        dataset=DatasetRef({"kind": "file", "path": "data.jsonl"}, "f00d", {"format": "alpaca"}),
        split=Split(0.2, 7),
        selected_row=3,
        max_length=256,
    )
    text = json.dumps(state.to_json())
    again = SessionState.from_json(json.loads(text), source="session.json")
    assert again == state
    assert SessionState.from_json({}, source="session.json") == SessionState()


def test_a_typo_in_session_json_is_refused_naming_file_and_key(tmp_path):
    with wb.Session.open(tmp_path / "ws") as s:
        s.set_max_length(128)
    path = tmp_path / "ws" / "session.json"
    saved = json.loads(path.read_text())
    saved["max_lenght"] = 64
    path.write_text(json.dumps(saved))
    with pytest.raises(wb.WorkspaceError) as error:
        wb.Session.open(tmp_path / "ws")
    message = str(error.value)
    assert "max_lenght" in message and str(path) in message and "max_length" in message
    assert json.loads(path.read_text()) == saved  # nothing was overwritten


def test_a_typo_inside_a_nested_entry_names_the_entry(tmp_path):
    data = {"split": {"eval_fraction": 0.1, "sed": 1}}
    with pytest.raises(ValueError, match=r"session.json: split.*'sed'"):
        SessionState.from_json(data, source="session.json")


def test_run_info_round_trips_and_reads_the_planned_config(tmp_path):
    info = RunInfo(
        name="run-1",
        train=wb.TrainConfig(method="lora", max_steps=5, learning_rate=1e-3),
        model=models.DEFAULT,
        created=123.0,
        data={"train": {"rows": 10, "tokens": 100}},
    )
    folder = RunFolder(tmp_path)
    folder.write_info(info)
    assert folder.read_info() == info
    assert json.loads(folder.config_file.read_text())["train"]["max_steps"] == 5


def test_a_run_folder_with_an_unknown_key_is_refused_naming_file_and_key(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_info(RunInfo("run-1", wb.TrainConfig(max_steps=5), models.DEFAULT))
    data = json.loads(folder.config_file.read_text())
    data["owner"] = "someone"
    folder.config_file.write_text(json.dumps(data))
    problem = job_refusal(tmp_path)
    assert problem is not None and "owner" in problem and "config.json" in problem


def test_an_unreadable_status_file_shows_as_failed_naming_it(tmp_path):
    folder = RunFolder(tmp_path)
    folder.status_file.write_text(json.dumps({"state": "running", "stepp": 3}))
    status = folder.readable_status()
    assert status.state == "failed"
    assert "stepp" in status.message and str(folder.status_file) in status.message
    folder.write_status(RunStatus("running", step=3))
    assert folder.readable_status() == RunStatus("running", step=3)


@pytest.mark.parametrize(
    "cls, data",
    [
        (models.ModelSpec, {"name_or_path": "m", "revison": "x"}),
        (wb.Template, {"name": "chatml", "source": "{{ x }}", "train_ont": "all"}),
        (PreferenceRecord, {"prompt": [], "chosen": "a", "rejected": "b", "verdit": "tie"}),
    ],
)
def test_every_json_contract_refuses_an_unknown_key(cls, data):
    typo = next(k for k in data if k not in {f for f in cls.__dataclass_fields__})
    with pytest.raises(ValueError, match=typo):
        cls.from_json(data, source="where.json")
    with pytest.raises(ValueError, match="where.json"):
        from_json(cls, data, source="where.json")


def test_run_progress_is_typed_and_an_older_status_file_still_reads(tmp_path):
    from workbench.train.folder import RunFolder, RunProgress, RunStatus

    folder = RunFolder(tmp_path / "run-1")
    folder.root.mkdir()
    status = RunStatus("running", step=3, progress=RunProgress(eta_s=12.5, peak_memory_gb=0.7))
    folder.write_status(status)
    assert folder.read_status() == status  # round-trips through status.json
    older = {"state": "finished", "extra": {"peak_memory_gb": 1.5, "adapter_step": 30}}
    folder.status_file.write_text(json.dumps(older))
    read = folder.read_status().progress
    assert (read.peak_memory_gb, read.adapter_step, read.eta_s) == (1.5, 30, None)
