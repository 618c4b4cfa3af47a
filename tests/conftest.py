"""Shared fixtures: a tiny random Llama for fast tests, the real default model for slow ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A launcher starts a warm runner (session.warm_runner): each view test would start a process
# importing torch. tests/unit/test_warm.py turns it on where it is what is tested.
os.environ.setdefault("WORKBENCH_WARM_RUNNER", "0")


@pytest.fixture(scope="session")
def default_model_dir():
    """The embedded SmolLM2 converted to safetensors (converted once per machine, then cached)."""
    from workbench import models

    return models.ensure_embedded_converted()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_model_dir):
    """A randomly initialised 2-layer Llama with the default model's tokenizer: fast to load."""
    from benchmarks.random_llama import write_random_llama

    return Path(write_random_llama(tmp_path_factory.mktemp("tiny-llama"), size="tiny"))


def wait_for(predicate, timeout: float = 240, poll: float = 0.2, what: str = "the condition"):
    """Poll `predicate` until it returns a true value, and return that value; fail the test
    naming `what` after `timeout` seconds. The one waiting helper of every test."""
    deadline = time.time() + timeout
    while not (value := predicate()):
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return value


@pytest.fixture
def file_size_limit():
    """`with file_size_limit(n):` no file of this process (or of processes it starts) can grow
    past n bytes; a write beyond raises EFBIG, as a full disk raises ENOSPC (no root needed)."""
    import contextlib
    import resource
    import signal

    @contextlib.contextmanager
    def limit(size: int):
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, old_handler)

    return limit


@pytest.fixture
def session(tmp_path, tiny_model_dir):
    """A fresh Session on the tiny model, closed after the test."""
    import workbench as wb

    s = wb.Session.open(tmp_path / "ws")
    s.set_model(str(tiny_model_dir))
    yield s
    for run in s.runs:  # a failed test must not leave a runner training on for hours
        if run.status.active:
            run.stop(timeout=0)  # ask it to stop; do not wait for runs that never started
    s.close()


CHAT_ROWS = [
    {
        "messages": [
            {"role": "user", "content": "Sort: pear, apple"},
            {"role": "assistant", "content": "apple, pear"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "What is 2+3?"},
            {"role": "assistant", "content": "5"},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Reverse: a, b, c"},
            {"role": "assistant", "content": "c, b, a"},
        ]
    },
]


@pytest.fixture
def chat_rows():
    """Three small rows in canonical chat form."""
    import copy

    return copy.deepcopy(CHAT_ROWS)


SKILL_TASKS = ["change_case", "format_date", "json_to_pairs"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, default_model_dir):
    """A real, short QLoRA run of the default model on three demo skills (shared by slow tests).

    Returns (session, run); the session stays open for the whole test session.
    """
    import workbench as wb
    from workbench import demo_data

    s = wb.Session.open(tmp_path_factory.mktemp("trained") / "ws")
    s.load_dataset(demo_data.generate(600, seed=1, tasks=SKILL_TASKS, handwritten=False))
    s.split(eval_fraction=0.05, seed=0)
    s.set_max_length(128)
    # keep_set off: these tests are about the task; the keep set's own tests measure forgetting.
    # Batch 4: the skill is learnt in 40 steps all the same, in half the time of the planned 8.
    config = wb.TrainConfig(
        method="qlora", max_steps=40, batch_size=4, eval_steps=20, save_steps=20, keep_set="off"
    )
    run = s.train(config)
    status = run.wait(timeout=1200)
    assert status.state == "finished", f"{status.message}\n{run.log_tail()}"
    yield s, run
    s.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """A notebook runs top to bottom once a session: in JupyterLab when a selected browser test
    runs it (with the same checks), else by nbclient (tests/notebooks)."""
    from tests.e2e.conftest import CHROMIUM

    if not Path(CHROMIUM).exists():
        return
    in_browser = {
        mark.args[0]
        for item in items
        if item.get_closest_marker("browser")
        for mark in item.iter_markers("notebook")
    }
    for item in items:
        mark = item.get_closest_marker("notebook")
        if mark and not item.get_closest_marker("browser") and mark.args[0] in in_browser:
            reason = f"{mark.args[0]} runs in JupyterLab in this session (tests/e2e)"
            item.add_marker(pytest.mark.skip(reason=reason))
