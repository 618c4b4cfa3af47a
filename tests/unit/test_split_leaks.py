"""No split holds out what it trains on (datasets #4261's kind): identical preference pairs
fall on one side of the DPO and reward-model hold-out, rows that ask the same on one side of
the SFT split."""

from __future__ import annotations

import datasets
import pytest

import workbench as wb
from workbench.data import load_source
from workbench.preferences.pairs import pair_fingerprint, split_pairs

WORDS = ["river", "stone", "cloud", "field", "maple", "ocean", "amber", "cedar"]


def issue_preferences() -> list[dict]:
    """Eight pairs, four of them voted twice (twelve records)."""
    pairs = [
        {"prompt": f"Write in capitals: {w}", "chosen": w.upper(), "rejected": w} for w in WORDS
    ]
    return pairs + [dict(p) for p in pairs[:4]]


def fingerprints(rows) -> set[str]:
    return {pair_fingerprint(r["prompt"], r["chosen"], r["rejected"]) for r in rows}


@pytest.mark.parametrize("seed", range(20))
def test_a_pair_voted_twice_is_never_held_out_and_trained(seed):
    rows = issue_preferences()
    train, held_out = split_pairs(rows, seed=seed)
    assert held_out and not fingerprints(train) & fingerprints(held_out)
    assert len(train) + len(held_out) == len(rows) and len(train) >= 2


@pytest.mark.parametrize("method", ["reward", "dpo"])
def test_the_issue_pairs_prepare_a_run_whose_held_out_pairs_it_never_trains_on(session, method):
    session.set_max_length(128)
    run = session.prepare(
        wb.TrainConfig(method=method, seed=2, max_steps=1), preferences=issue_preferences()
    )
    data = run.folder.data_dir
    train = datasets.load_from_disk(str(data / "train"))
    held_out = datasets.load_from_disk(str(data / "eval"))
    assert len(held_out) >= 2
    assert not fingerprints(train) & fingerprints(held_out)


def test_rows_that_ask_the_same_fall_on_one_side_of_the_sft_split():
    """Thirty prompts asked three or four times each (another case or spacing), answered
    differently: the eval rows' prompts are never train prompts."""
    asks = [f"Name a colour number {i % 30}." for i in range(100)]
    asks = [a.upper() if i % 3 else a for i, a in enumerate(asks)]  # the same after normalising
    rows = [
        {"messages": [{"role": "user", "content": a}, {"role": "assistant", "content": str(i)}]}
        for i, a in enumerate(asks)
    ]
    ds = load_source(rows)
    for seed in range(5):
        train, held_out = ds.split_indices(0.1, seed)
        assert len(held_out) >= 10 and sorted(train + held_out) == list(range(100))
        assert ds.quality(lengths=False, eval_rows=held_out).rows("eval_overlap") == []


def test_a_split_without_shared_prompts_is_the_same_as_before():
    """Rows that each ask their own question keep the split they had (the same ranks)."""
    rows = [
        {"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "A"}]}
        for i in range(50)
    ]
    train, held_out = load_source(rows).split_indices(0.2, 3)
    assert held_out == [11, 12, 13, 14, 22, 29, 30, 33, 34, 35]
