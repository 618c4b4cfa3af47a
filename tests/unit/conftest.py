"""Fixtures shared by the export tests (test_export.py, test_export_parity.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def tuned(session):
    """A session with a chatml template, an eval split and one finished run with an adapter."""
    session.set_template("chatml")
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        }
        for i in range(20)
    ]
    session.load_dataset(rows)
    session.split(eval_fraction=0.2, seed=0)
    from tests.unit.test_export import add_run

    add_run(session)
    return session
