"""The Colab tier runs on Colab's own versions, and installing the workbench moved none of them."""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import PINS

# What Colab's GPU runtime pins and the views depend on (googlecolab/backend-info, 2026-08-19)
JUPYTER_STACK = {
    "ipykernel": "6.17.1",
    "ipython": "7.34.0",
    "ipywidgets": "7.7.1",
    "traitlets": "5.7.1",
    "notebook": "6.5.7",
    "plotly": "5.24.1",
    "anywidget": "0.9.21",
    "transformers": "5.15.0",
    "peft": "0.20.0",
    "accelerate": "1.14.0",
    "datasets": "4.0.0",
}


def pinned(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line of a pip constraints or freeze file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            requirement = Requirement(line)
            out[canonicalize_name(requirement.name)] = str(requirement.specifier).lstrip("=")
    return out


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def test_the_tier_runs_colabs_jupyter_and_model_stack():
    have = installed()
    wrong = {
        name: have.get(name) for name, version in JUPYTER_STACK.items() if have.get(name) != version
    }
    assert not wrong, f"expected Colab's versions {JUPYTER_STACK}; installed: {wrong}"
    assert pinned(PINS)["ipywidgets"] == "7.7.1"


def test_every_installed_package_colab_has_is_at_colabs_version():
    have = installed()
    moved = {
        name: f"Colab {version}, installed {have[name]}"
        for name, version in pinned(PINS).items()
        if name in have and have[name] != version
    }
    assert not moved, moved


def test_installing_the_workbench_moved_no_package_the_runtime_had():
    """`held.txt` is the runtime's freeze taken just before the install cell's command."""
    held = pinned(Path(sys.prefix) / "held.txt")
    assert len(held) > 50, "the runtime's freeze is missing or empty"
    have = installed()
    moved = {
        name: (version, have.get(name))
        for name, version in held.items()
        if have.get(name) != version
    }
    assert not moved, f"changed by the install (held, now): {moved}"
    assert "tuning-workbench" in have and "trl" in have and "bitsandbytes" in have
