"""The `>>>` examples in Session's docstrings run as written: what help(s.train) shows works."""

from __future__ import annotations

import doctest
import inspect

import pytest

import workbench as wb

# The order a person reads them in: the examples of later methods use what earlier ones made.
EXAMPLES = [
    "open",
    "load_dataset",
    "split",
    "set_template",
    "plan",
    "train",
    "generate",
    "compare",
    "record_vote",
    "record_preference",
    "base_answers",
    "export_dataset",
]


def test_every_session_example_is_listed_here():
    """A new example in a Session docstring is run by this file, not skipped silently."""
    with_examples = {
        name
        for name, member in inspect.getmembers(wb.Session)
        if not name.startswith("_")
        and getattr(member, "__name__", name) == name  # an alias shares its method's example
        and ">>>" in (inspect.getdoc(member) or "")
    }
    assert with_examples == set(EXAMPLES)


@pytest.fixture(scope="module")
def examples_session(tmp_path_factory, tiny_model_dir):
    """What the examples call `s`: a session on the tiny model, run in a folder of its own."""
    folder = tmp_path_factory.mktemp("examples")
    s = wb.Session.open(folder / "ws")
    s.set_model(str(tiny_model_dir))
    yield folder, s
    s.close()


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_runs_as_written(name, examples_session, monkeypatch):
    folder, s = examples_session
    monkeypatch.chdir(folder)
    method = getattr(wb.Session, name)
    (test,) = doctest.DocTestFinder().find(method, name, globs={"wb": wb, "s": s})
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0, f"Session.{name}'s example fails (printed above)"


def test_every_name_the_readme_and_notebooks_use_exists():
    """`s.<name>` in the README's code and the notebooks' cells names a Session member, and
    `wb.<name>.<name>` a public name of the package."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    texts = [(root / "README.md").read_text()]
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    used = {name for text in texts for name in re.findall(r"\bs\.([a-z_]+)\b", text)}
    assert len(used) > 30  # the pattern still finds the README's calls
    assert not {name for name in used if not hasattr(wb.Session, name)}
    dotted = {name for text in texts for name in re.findall(r"\bwb\.([A-Za-z_.]+\w)", text)}
    assert "Session.open" in dotted and not {name for name in dotted if not _resolves(name)}


def _resolves(dotted: str) -> bool:
    value = wb
    for part in dotted.split("."):
        if not hasattr(value, part):
            return False
        value = getattr(value, part)
    return True
