"""Votes: one complete line each, the right answer marked chosen, none lost to a killed process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import workbench as wb
from workbench.preferences import PreferenceRecord

PROMPT = [{"role": "user", "content": "Capital of France?"}]


def test_a_vote_writes_one_complete_line(session):
    session.record_vote(
        PROMPT,
        ("base", "Lyon"),
        ("run-1", "Paris"),
        "B",
        comment="B is right",
        settings={"temperature": 0.0},
    )
    lines = session.workspace.preferences_file.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["prompt"] == PROMPT
    assert (record["chosen"], record["chosen_model"]) == ("Paris", "run-1")
    assert (record["rejected"], record["rejected_model"]) == ("Lyon", "base")
    assert record["verdict"] == "chosen" and record["comment"] == "B is right"
    assert record["settings"] == {"temperature": 0.0}
    assert record["time"] > 0 and record["id"]
    assert session.preferences == [PreferenceRecord.from_json(record)]


@pytest.mark.parametrize(
    ("vote", "verdict", "first"),
    [("A", "chosen", "a"), ("tie", "tie", "a"), ("both_bad", "both_bad", "a")],
)
def test_each_vote_kind_keeps_who_said_what(session, vote, verdict, first):
    record = session.record_vote(PROMPT, ("m-a", "a"), ("m-b", "b"), vote)
    assert record.verdict == verdict
    assert record.chosen == first and record.chosen_model == "m-a"
    with pytest.raises(ValueError, match="vote"):
        session.record_vote(PROMPT, ("m-a", "a"), ("m-b", "b"), "C")


def test_diverged_conversations_keep_the_other_prompt(session):
    other = [*PROMPT, {"role": "assistant", "content": "x"}, {"role": "user", "content": "More"}]
    record = session.record_vote(other, ("a", "1"), ("b", "2"), "B", b_prompt=PROMPT)
    assert record.prompt == PROMPT and record.chosen_model == "b"
    assert record.rejected_prompt == other


def test_votes_survive_a_killed_process(tmp_path):
    workspace = tmp_path / "ws"
    code = f"""
        import sys, time, workbench as wb
        s = wb.Session.open({str(workspace)!r})
        for n in range(1000):
            s.record_vote("q" + str(n), ("base", "a" * 2000), ("run-1", "b" * 2000), "A")
            print("VOTED", n, flush=True)
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True, env=env
    )
    acknowledged = -1
    deadline = time.time() + 60
    while acknowledged < 5 and time.time() < deadline:
        line = process.stdout.readline()
        if line.startswith("VOTED"):
            acknowledged = int(line.split()[1])
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert acknowledged >= 5
    with wb.Session.open(workspace) as session:
        votes = session.preferences
        assert len(votes) >= acknowledged + 1
        assert [v.prompt[0]["content"] for v in votes[: acknowledged + 1]] == [
            f"q{n}" for n in range(acknowledged + 1)
        ]
        session.record_vote("after", ("a", "1"), ("b", "2"), "tie")  # the log is still usable
        assert session.preferences[-1].verdict == "tie"
