"""The GPU check's dry run: the script a lent GPU runs, kept working on the CPU."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.py"
pytestmark = pytest.mark.slow


def gpu_check(*args: str) -> tuple[int, dict]:
    command = [sys.executable, str(SCRIPT), "--dry-run", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    return done.returncode, json.loads(done.stdout)


def test_the_dry_run_walks_every_section():
    code, report = gpu_check()
    failed = {k: v.get("error") for k, v in report["sections"].items() if not v["ok"]}
    assert code == 0 and report["ok"] and not failed, failed
    sections = report["sections"]
    expected = {"qlora_defaults", "trl_defaults", "t4_path", "lora_bf16", "dpo", "reward_model"}
    expected |= {"grpo", "export_parity", "stop_resume", "keep_drift", "comparator"}
    assert set(sections) >= expected
    assert "identical" in sections["export_parity"]["gguf"]["parity"]
    assert sections["t4_path"]["planned"]["method"] == "qlora"  # what a T4 gets, forced here
    assert sections["stop_resume"]["finished_at"] == sections["stop_resume"]["stopped_at"] + 3
    assert report["summary"]["tokens_per_s_vs_trl"] > 0
    keep = sections["keep_drift"]  # the random model's base answers are empty: nothing replays
    assert math.isfinite(keep["keep_drift"]) and 0 <= keep["keep_changed"] <= 1
    assert set(report["summary"]["estimate_vs_peak"]) >= {"qlora_defaults", "t4_path", "lora_bf16"}


def test_a_failing_section_shows_in_the_report_and_the_exit_code():
    code, report = gpu_check("--only", "lora_bf16,comparator", "--fail", "comparator")
    assert code == 1 and not report["ok"]
    assert "planted failure" in report["sections"]["comparator"]["error"]
    assert report["sections"]["lora_bf16"]["ok"]  # the other section still reports
