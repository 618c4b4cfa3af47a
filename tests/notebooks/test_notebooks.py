"""Each notebook runs top to bottom on the CPU with the embedded model and small settings."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


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


@pytest.mark.slow
def test_explore_data_notebook_runs_offline(tmp_path):
    nb = run_notebook(
        "01_explore_data.ipynb",
        tmp_path,
        WORKSPACE=str(tmp_path / "ws"),
        SAMPLE_FILE=str(NOTEBOOKS / "data" / "alpaca_identity.json"),
        MAX_NEW_TOKENS=16,
    )
    text = outputs_text(nb)
    assert "2045" in text and "alpaca" in text  # the demo data and a real-format file loaded
    assert "check this answer" in text
    assert (tmp_path / "ws" / "edits.jsonl").exists()
