"""Crash safety of workspace files: atomic state writes and append-only logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.persist import TornLogWarning, append_jsonl, atomic_write_json, read_jsonl

WRITER = """
import sys
from workbench.persist import atomic_write_json
path = sys.argv[1]
i = 0
print("ready", flush=True)
while True:
    i += 1
    atomic_write_json(path, {"version": i, "payload": "x" * 2_000_000})
"""


def test_sigkill_during_state_writes_leaves_a_whole_file(tmp_path):
    path = tmp_path / "session.json"
    atomic_write_json(path, {"version": 0, "payload": ""})
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = json.loads(path.read_text())  # whole: the old or a new version, never a mix
        assert state["payload"] in ("", "x" * 2_000_000)
    assert state["version"] > 0, "the writer never completed a write; the test proved nothing"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "session.json"]
    assert all(name.endswith(".tmp") for name in leftovers)


def test_torn_jsonl_tail_is_skipped_with_a_warning(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1})
    append_jsonl(log, {"n": 2})
    with open(log, "ab") as f:
        f.write(b'{"n": 3, "half')  # a power cut mid-append
    with pytest.warns(TornLogWarning):
        assert read_jsonl(log) == [{"n": 1}, {"n": 2}]


def test_append_after_a_torn_tail_keeps_every_whole_record(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1})
    with open(log, "ab") as f:
        f.write(b'{"n": 2, "ha')
    with pytest.warns(TornLogWarning):
        append_jsonl(log, {"n": 3})
    assert read_jsonl(log) == [{"n": 1}, {"n": 3}]


def test_a_broken_line_in_the_middle_is_an_error_naming_the_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"n": 1}\nnot json\n{"n": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(log)


def test_missing_log_reads_as_empty(tmp_path):
    assert read_jsonl(tmp_path / "absent.jsonl") == []
