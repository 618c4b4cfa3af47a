"""Job folders: export a run, train it elsewhere, follow it back; bad folders say what is wrong."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import workbench as wb
from workbench.persist import TornLogWarning, read_json
from workbench.train import JobFormatError, TrainConfig
from workbench.train.jobs import JOB_FORMAT

STEPS_SEEN_LIVE = 400


def prepared_run(session, chat_rows, **config):
    session.load_dataset(chat_rows * 8)
    session.set_max_length(64)
    defaults = {"method": "lora", "batch_size": 2, "max_steps": 3, "save_steps": 50}
    return session.train(TrainConfig(**{**defaults, **config}), start=False)


def test_export_writes_a_self_contained_job(session, chat_rows, tmp_path):
    run = prepared_run(session, chat_rows, num_processes=4, num_machines=2)
    job = run.export_job(tmp_path / "job-a", model="HuggingFaceTB/SmolLM2-135M-Instruct")
    names = {p.name for p in job.iterdir()}
    assert {"config.json", "template.json", "data", "job.json", "status.json"} <= names
    assert {"launch.sh", "slurm.sbatch", "accelerate_config.yaml"} <= names
    info = read_json(job / "job.json")
    assert info["format"] == JOB_FORMAT and info["package_version"] == wb.__version__
    assert read_json(job / "config.json")["model"]["name_or_path"].startswith("HuggingFaceTB/")
    launch = (job / "launch.sh").read_text()
    assert os.access(job / "launch.sh", os.X_OK)
    assert "accelerate launch --config_file accelerate_config.yaml" in launch
    assert "-m workbench.train ." in launch and '"$MACHINE_RANK"' in launch
    slurm = (job / "slurm.sbatch").read_text()
    assert "#SBATCH --job-name=job-a" in slurm and "#SBATCH --nodes=2" in slurm
    assert "#SBATCH --gpus-per-node=2" in slurm and "MACHINE_RANK=$SLURM_NODEID" in slurm
    for path in job.rglob("*"):  # nothing points back into this workspace
        if path.is_file() and path.suffix in ("", ".json", ".sh", ".sbatch", ".yaml"):
            assert str(session.path) not in path.read_text(errors="replace"), path
    with pytest.raises(FileExistsError, match="not empty"):
        run.export_job(job)


def test_a_local_model_folder_is_flagged_when_exported(session, chat_rows, tmp_path):
    run = prepared_run(session, chat_rows)
    with pytest.warns(UserWarning, match="model="):
        job = run.export_job(tmp_path / "job-b")
    script = (job / "launch.sh").read_text()
    assert '"${PYTHON:-python}" -m workbench.train .' in script
    assert 'export THP_MEM_ALLOC_ENABLE="${THP_MEM_ALLOC_ENABLE:-1}"' in script  # as runners here


@pytest.mark.slow
def test_an_exported_job_trains_elsewhere_and_is_followed_live(session, chat_rows, tmp_path):
    from widgets.train.training import TrainingLauncher

    # the tiny model trains 40 steps in well under a second: enough steps for the view to see
    run = prepared_run(session, chat_rows, max_steps=STEPS_SEEN_LIVE)
    there = session.model.name_or_path  # the same folder is there: shared storage
    job = run.export_job(tmp_path / "shared" / "job-c", model=there)
    followed = session.attach_run(job)
    assert followed.name == "job-c" and followed.status.state == "queued"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHON"] = sys.executable
    process = subprocess.Popen(
        ["bash", str(job / "launch.sh")], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL
    )
    try:
        view = TrainingLauncher(session, plot_backend="plotly")
        view.show(followed)
        seen_live = 0
        while process.poll() is None:  # the live plot follows the attached run
            time.sleep(0.05)
            view.refresh()
            if followed.status.state == "running":
                seen_live = max(seen_live, view.plot.point_count())
        assert process.returncode == 0, followed.log_tail()
        assert seen_live >= 1
    finally:
        process.kill()
    status = followed.wait(timeout=30)
    assert status.state == "finished", status.message
    assert session.adapters["job-c"] == job / "adapter"
    with wb.Session.open(session.path, read_only=True) as later:  # after a kernel restart
        assert later.run("job-c").metrics[-1]["step"] == STEPS_SEEN_LIVE


def test_a_job_from_a_newer_version_is_refused_naming_file_and_versions(
    session, chat_rows, tmp_path
):
    from workbench.train import runner

    job = prepared_run(session, chat_rows).export_job(tmp_path / "job-d", model="some/model")
    record = read_json(job / "job.json")
    (job / "job.json").write_text(json.dumps({**record, "format": 7, "package_version": "9.1"}))
    with pytest.raises(JobFormatError) as refused:
        session.attach_run(job)
    message = str(refused.value)
    assert str(job / "job.json") in message and "9.1" in message and wb.__version__ in message
    assert "job-d" not in [r.name for r in session.runs]
    assert runner.main(str(job)) == 2  # the runner there refuses it the same way, in words
    assert "9.1" in read_json(job / "status.json")["message"]


def test_a_config_from_another_version_is_refused(session, chat_rows, tmp_path):
    folder = tmp_path / "copied-run"
    shutil.copytree(prepared_run(session, chat_rows).path, folder)
    info = read_json(folder / "config.json")
    info["train"]["tensor_parallel"] = 2  # a field this version does not know
    (folder / "config.json").write_text(json.dumps(info))
    with pytest.raises(JobFormatError, match="config.json.*tensor_parallel"):
        session.attach_run(folder)


def finished_copy(run, folder: Path, records: list[dict], tail: bytes) -> Path:
    """A run folder as copied back from a machine where it finished, its log ending in `tail`."""
    shutil.copytree(run.path, folder)
    status = read_json(folder / "status.json")
    status.update(state="finished", step=len(records), host="elsewhere", heartbeat=time.time())
    (folder / "status.json").write_text(json.dumps(status))
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    (folder / "metrics.jsonl").write_bytes(lines + tail)
    return folder


def test_a_torn_metrics_file_shows_what_is_complete_and_says_so(session, chat_rows, tmp_path):
    records = [{"step": i, "loss": 3.0 - i / 10} for i in range(1, 5)]
    folder = finished_copy(
        prepared_run(session, chat_rows), tmp_path / "torn", records, b'{"step": 5, "lo'
    )
    run = session.attach_run(folder)
    with pytest.warns(TornLogWarning, match="cut-off last line"):
        assert [m["step"] for m in run.metrics] == [1, 2, 3, 4]
    assert "4 complete records" in run.metrics_problem
    (folder / "status.json").write_text('{"state": "runn')  # a torn status as well
    status = run.status
    assert status.state == "failed" and "status.json cannot be read" in status.message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not on every poll
        assert len(run.metrics) == 4


def test_a_live_runner_line_being_written_is_not_a_problem(session, chat_rows, tmp_path):
    folder = finished_copy(prepared_run(session, chat_rows), tmp_path / "live", [{"step": 1}], b"{")
    status = read_json(folder / "status.json")
    (folder / "status.json").write_text(json.dumps({**status, "state": "running"}))
    run = session.attach_run(folder)
    assert len(run.metrics) == 1 and run.metrics_problem == ""


def test_attached_names_never_clash_with_this_workspace(session, chat_rows, tmp_path):
    local = prepared_run(session, chat_rows)
    clash = shutil.copytree(local.path, tmp_path / local.name)
    with pytest.raises(ValueError, match="name="):
        session.attach_run(clash)
    session.attach_run(clash, name="cluster-1")
    far = session.attach_run(shutil.copytree(local.path, tmp_path / "run-7"))
    later = session.train(TrainConfig(method="lora", max_steps=2), start=False)
    assert later.name == "run-8"  # numbering goes past an attached run-7
    assert [r.name for r in session.runs] == ["run-1", "run-8", "cluster-1", far.name]
    assert session.run("cluster-1").path == clash.resolve()
