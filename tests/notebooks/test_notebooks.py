"""Each notebook runs top to bottom on the CPU with the embedded model and small settings."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


# The notebooks' parameters shrunk for a CPU test (with the workspace each test gives).
EXPLORE_SMALL = {"MAX_NEW_TOKENS": 8, "SYNTH_N": 2}
TRAIN_SMALL = {"MAX_STEPS": 4, "ROWS": 80, "EVAL_ROWS": 2, "MAX_NEW_TOKENS": 8, "KEEP_PROMPTS": 4}
COMPARE_SMALL = {
    "ROWS": 200,  # its tenth held out covers PROMPTS; fewer rows replay fewer keep answers
    "SFT_STEPS": 2,
    "DPO_STEPS": 1,  # votes -> an adapter -> a contestant: the path, not the margins (test_dpo)
    "PROMPTS": 10,
    "MAX_NEW_TOKENS": 8,
    "KEEP_PROMPTS": 4,
}


def run_notebook(name: str, workdir: Path, **parameters) -> nbformat.NotebookNode:
    """Execute a notebook with its `parameters` cell overridden, as papermill would."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_notebooks_are_stored_without_outputs_or_widget_state():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata, f"{path.name} stores widget state"
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def check_explore_notebook(text: str, ws: Path) -> None:
    """What 01 leaves after a run top to bottom: its outputs' text and the workspace."""
    assert "2045" in text and "alpaca" in text  # the demo data and a real-format file loaded
    assert "check this answer" in text
    assert (ws / "edits.jsonl").exists()
    assert "Asked 2 of 2, parsed" in text  # the model grew candidates, staged in the workspace
    staged = [json.loads(line) for line in (ws / "candidates.jsonl").read_text().splitlines()]
    kept = [c["id"] for c in staged if c["event"] == "candidate" and not c["verdict"]["dropped"]]
    assert all(f"\n{i}  (flags:" in text for i in kept)  # each one printed, to be read
    assert "0 accepted;" in text and not [c for c in staged if c["event"] == "accept"]


def check_train_notebook(text: str, ws: Path) -> None:
    """What 02 leaves: a stopped and resumed run with its adapter, probes, token losses and
    its keep drift."""
    assert "stopped" in text and "finished" in text
    assert (ws / "runs" / "run-1" / "adapter" / "adapter_model.safetensors").exists()
    assert "TokenLosses(" in text and "of which checkpoints" in text  # what the run learned
    assert (ws / "runs" / "run-1" / "samples.jsonl").exists()  # probe answers
    assert "keep drift by step: [(" in text and "keep answers changed:" in text


def check_compare_notebook(text: str, ws: Path, folder: Path, prompts: int) -> None:
    """What 03 leaves: a vote per prompt, the saved comparison, and a DPO adapter from them."""
    assert "usable as DPO pairs" in text
    assert (folder / "comparison.html").exists()
    assert len((ws / "preferences.jsonl").read_text().splitlines()) == prompts
    assert (ws / "runs" / "run-2" / "adapter" / "adapter_model.safetensors").exists()
    assert "run-2" in text.split("usable as DPO pairs")[-1]  # the DPO adapter became a contestant


@pytest.mark.slow
@pytest.mark.notebook("01_explore_data.ipynb")
def test_explore_data_notebook_runs_offline(tmp_path):
    nb = run_notebook(
        "01_explore_data.ipynb",
        tmp_path,
        WORKSPACE=str(tmp_path / "ws"),
        SAMPLE_FILE=str(NOTEBOOKS / "data" / "alpaca_identity.json"),
        **EXPLORE_SMALL,
    )
    check_explore_notebook(outputs_text(nb), tmp_path / "ws")


@pytest.mark.slow
@pytest.mark.notebook("02_train_qlora.ipynb")
def test_train_notebook_runs_on_the_cpu(tmp_path):
    nb = run_notebook(
        "02_train_qlora.ipynb",
        tmp_path,
        WORKSPACE=str(tmp_path / "ws"),
        **TRAIN_SMALL,
    )
    check_train_notebook(outputs_text(nb), tmp_path / "ws")


@pytest.mark.slow
@pytest.mark.notebook("03_compare_and_demo.ipynb")
def test_compare_notebook_votes_and_tunes_from_them(tmp_path):
    nb = run_notebook(
        "03_compare_and_demo.ipynb",
        tmp_path,
        WORKSPACE=str(tmp_path / "ws"),
        **COMPARE_SMALL,
    )
    check_compare_notebook(outputs_text(nb), tmp_path / "ws", tmp_path, prompts=COMPARE_SMALL["PROMPTS"])


@pytest.mark.parametrize("name", ["01_explore_data.ipynb", "02_train_qlora.ipynb", "03_compare_and_demo.ipynb"])
def test_each_notebook_says_first_what_a_kernel_restart_leaves_on_the_page(name):
    first = "".join(nbformat.read(NOTEBOOKS / name, as_version=4).cells[0].source)
    assert "kernel restart" in first and "disconnected" in first and "run the cells again" in first
