"""Session: persistence across processes, observers, locking, and bad workspaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import workbench as wb


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_everything_set_survives_a_new_process(tmp_path, tiny_model_dir, chat_rows):
    ws = tmp_path / "ws"
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in chat_rows))
    writer = f"""
        import workbench as wb
        s = wb.Session.open({str(ws)!r})
        s.set_model({str(tiny_model_dir)!r})
        s.set_template("chatml", train_on="last_assistant")
        s.load_dataset({str(data)!r})
        s.flag(1, "answer is wrong")
        s.edit(2, [{{"role": "user", "content": "Hi"}}, {{"role": "assistant", "content": "Hello"}}])
        s.exclude(0)
        s.add_row([{{"role": "user", "content": "New"}}, {{"role": "assistant", "content": "Row"}}])
        s.split(eval_fraction=0.5, seed=3)
        s.select(2)
        s.record_preference("Q?", "good", "bad", chosen_model="run-1", rejected_model="base")
    """
    written = run_python(writer)
    assert written.returncode == 0, written.stderr
    reader = f"""
        import json, workbench as wb
        s = wb.Session.open({str(ws)!r}, read_only=True)
        ds = s.dataset
        print(json.dumps({{
            "model": s.model.name_or_path, "template": s.template.name,
            "train_on": s.template.train_on, "rows": len(ds), "row1": ds[1], "row2": ds[2],
            "row3": ds[3], "excluded": sorted(ds.excluded), "split": s.split_rows,
            "selected": s.selected_row, "prefs": [p.to_json() for p in s.preferences],
        }}))
    """
    result = run_python(reader)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["model"] == str(tiny_model_dir)
    assert (got["template"], got["train_on"]) == ("chatml", "last_assistant")
    assert got["rows"] == 4
    assert got["row1"]["flag"] == "answer is wrong"
    assert got["row2"]["messages"][1]["content"] == "Hello" and got["row2"]["edited"]
    assert got["row3"]["messages"][0]["content"] == "New"
    assert got["excluded"] == [0]
    train, evaluation = got["split"]
    assert sorted(train + evaluation) == [1, 2, 3] and len(evaluation) == 2
    assert got["selected"] == 2
    assert got["prefs"][0]["chosen"] == "good" and got["prefs"][0]["chosen_model"] == "run-1"


def test_a_list_of_dicts_is_kept_in_the_workspace(tmp_path, chat_rows):
    with wb.Session.open(tmp_path / "ws") as s:
        s.load_dataset(chat_rows)
        s.flag(0, "check")
    with wb.Session.open(tmp_path / "ws") as s:
        assert len(s.dataset) == 3 and s.dataset[0]["flag"] == "check"


def test_a_copy_cut_short_by_a_crash_is_written_whole_the_next_time(
    tmp_path, chat_rows, monkeypatch
):
    """In-memory rows are kept as an Arrow copy in the workspace. A crash (or a full disk)
    while it is written leaves no half copy behind that a later load would trust."""
    import datasets

    real = datasets.Dataset.save_to_disk

    def crash_midway(self, path, **kwargs):
        real(self, path, **kwargs)
        (Path(path) / "state.json").unlink()  # the last file never made it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", crash_midway)
    with wb.Session.open(tmp_path / "ws") as s, pytest.raises(OSError, match="space"):
        s.load_dataset(chat_rows)
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", real)
    assert not list((tmp_path / "ws" / "datasets").iterdir())  # nothing half written stays
    with wb.Session.open(tmp_path / "ws") as s:
        s.load_dataset(chat_rows)  # room again: loaded again
    with wb.Session.open(tmp_path / "ws") as s:
        assert s.dataset is not None and len(s.dataset) == 3


def test_a_damaged_copy_found_on_open_is_said_plainly(tmp_path, chat_rows):
    with wb.Session.open(tmp_path / "ws") as s:
        s.load_dataset(chat_rows)
    (copy,) = (tmp_path / "ws" / "datasets").iterdir()
    for arrow in copy.glob("*.arrow"):
        arrow.write_bytes(arrow.read_bytes()[:40])  # truncated, as by a full disk long ago
    with (
        pytest.warns(wb.WorkspaceWarning, match="incomplete or damaged.*load the data again"),
        wb.Session.open(tmp_path / "ws") as s,
    ):
        assert s.dataset is None


def test_views_hear_of_each_others_changes(session, chat_rows):
    seen_by_a, seen_by_b = [], []
    session.observe(lambda c: seen_by_a.append(c.name))
    stop_b = session.observe(lambda c: seen_by_b.append((c.name, c.new)), names="selected_row")
    session.load_dataset(chat_rows)
    session.select(2)
    session.flag(2, "x")
    stop_b()
    session.select(1)
    assert seen_by_a == ["dataset", "selected_row", "edits", "selected_row"]
    assert seen_by_b == [("selected_row", 2)]


def test_a_failing_observer_does_not_break_the_session(session, chat_rows):
    def broken(change):
        raise RuntimeError("view bug")

    session.observe(broken)
    session.load_dataset(chat_rows)
    assert len(session.dataset) == 3


def test_a_second_writer_is_told_and_may_open_read_only(tmp_path):
    ws = tmp_path / "ws"
    first = wb.Session.open(ws)
    code = f"""
        import workbench as wb
        try:
            wb.Session.open({str(ws)!r})
        except wb.WorkspaceLockedError as e:
            print("LOCKED", e)
        s = wb.Session.open({str(ws)!r}, read_only=True)
        try:
            s.set_template("chatml")
        except wb.ReadOnlyError:
            print("READONLY")
    """
    out = run_python(code).stdout
    assert "LOCKED" in out and f"pid {os.getpid()}" in out and "read_only=True" in out
    assert "READONLY" in out
    first.close()
    assert "LOCKED" not in run_python(code).stdout


def test_a_workspace_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(wb.WorkspaceError, match="is a file"):
        wb.Session.open(path)
    assert path.read_text() == "mine"


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    text = json.dumps({"schema_version": 99, "model": {"name_or_path": "x"}})
    (ws / "session.json").write_text(text)
    with pytest.raises(wb.WorkspaceError, match="newer tuning-workbench"):
        wb.Session.open(ws)
    assert (ws / "session.json").read_text() == text


def test_a_corrupt_session_file_is_refused_and_left_untouched(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "session.json").write_text('{"schema_version": 1, "model": ')
    with pytest.raises(wb.WorkspaceError, match="session.json"):
        wb.Session.open(ws)
    assert (ws / "session.json").read_text() == '{"schema_version": 1, "model": '


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder; permissions cannot be tested")
def test_an_unreadable_workspace_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir(mode=0)
    with pytest.raises(wb.WorkspaceError, match="not readable"):
        wb.Session.open(ws)


def test_bad_edits_are_refused_before_anything_is_written(session, chat_rows):
    session.load_dataset(chat_rows)
    with pytest.raises(IndexError, match="3 rows"):
        session.flag(7, "x")
    with pytest.raises(TypeError, match="message 0"):
        session.edit(0, [{"role": "user", "content": 5}])
    assert not session.workspace.edits_file.exists()


def test_a_template_that_renders_nothing_keeps_the_last_one(session):
    session.set_template("chatml")
    with pytest.raises(wb.TemplateError, match="empty"):
        session.set_template(wb.Template("{# nothing #}"))
    assert session.template.name == "chatml"


def test_the_selected_run_is_kept_and_leads_the_default_contestants(tmp_path, tiny_model_dir):
    from tests.unit.test_generate import add_adapter_run

    s = wb.Session.open(tmp_path / "ws")
    s.set_model(str(tiny_model_dir))
    assert s.selected_run is None and s.default_contestants() == ["base"]
    for k, name in enumerate(("run-1", "run-2", "run-3")):
        add_adapter_run(s, name, seed=k)
    assert s.selected_run.name == "run-3"  # none selected: the newest
    assert s.default_contestants(3) == ["base", "run-3", "run-2"]
    heard = []
    s.observe(lambda change: heard.append(change.new), "selected_run")
    s.select_run("run-1")
    assert heard == ["run-1"] and s.default_contestants(3) == ["base", "run-1", "run-3"]
    with pytest.raises(KeyError, match="run-9"):
        s.select_run("run-9")
    s.close()
    again = wb.Session.open(tmp_path / "ws")
    assert again.selected_run.name == "run-1"  # across a restart
    again.close()
