"""What the comparator sends to the page stays small whatever a model or a prompt holds: the
batch table shows its first rows with every cell cut, an answer pane cuts each turn; the
Comparison and the pane keep everything (exports write it all)."""

from __future__ import annotations

from widgets.compare.comparator_batch import table_html
from widgets.compare.comparator_parts import AnswerPane
from workbench.answers.compare import Comparison
from workbench.data.excerpt import CELL_CHARS, LISTED_TURNS, TABLE_ROWS

HUGE = "The keeper wrote on and on. " * 360_000  # 10 MB


def comparison(prompts: int) -> Comparison:
    return Comparison(
        prompts=[
            [{"role": "user", "content": HUGE if k == 0 else f"Q{k} <b>"}] for k in range(prompts)
        ],
        answers={
            "base": [HUGE] + [f"A{k}" for k in range(1, prompts)],
            "run-1": ["short"] * prompts,
        },
        contestants={"base": {}, "run-1": {}},
        settings={},
        references=[HUGE] + [None] * (prompts - 1),
        scores={"base": [1.0] * prompts, "run-1": [0.0] * prompts},
    )


def test_the_batch_table_shows_its_first_rows_with_every_cell_cut():
    big = comparison(TABLE_ROWS + 50)
    table = table_html(big)
    assert len(table.encode()) < 100_000
    assert table.count("<tr>") == TABLE_ROWS + 1  # the header and the first TABLE_ROWS rows
    assert f"The first {TABLE_ROWS:,} of {TABLE_ROWS + 50:,} prompts" in table
    assert f"{len(HUGE) - CELL_CHARS:,} more characters not shown" in table
    assert "Q1 &lt;b&gt;" in table and "✓ right" in table and "<b>" not in table
    assert big.answers["base"][0] == HUGE and len(big) == TABLE_ROWS + 50  # nothing lost
    small = table_html(comparison(3))
    assert small.count("<tr>") == 4 and "The first" not in small


def test_an_answer_pane_cuts_each_turn_and_keeps_the_whole_text():
    pane = AnswerPane()
    history = [{"role": "user", "content": HUGE}, {"role": "assistant", "content": HUGE}] * 20
    pane.show(HUGE, markdown=True, history=history)
    assert len(pane.body.value.encode()) < 100_000
    assert "more characters not shown" in pane.body.value
    assert f"[{len(history) - LISTED_TURNS:,} earlier turns not shown]" in pane.body.value
    assert pane.text == HUGE and len(pane.history) == len(history)
    pane.show("A short answer.", markdown=False, history=[])
    assert "A short answer." in pane.body.value and "not shown" not in pane.body.value
