"""Notice: the one way a view tells a person something, and Notice.guard for errors."""

from __future__ import annotations

import pytest

from widgets.common.notice import Notice


def test_a_guarded_block_that_raises_shows_one_sentence_with_the_traceback_folded():
    notice = Notice()
    with notice.guard("The vote was not recorded", then="Try again.") as outcome:
        raise ValueError("the workspace is read-only")
    assert outcome.failed and isinstance(outcome.error, ValueError)
    assert notice.level == "error"
    assert notice.text == "The vote was not recorded: the workspace is read-only. Try again."
    assert "Traceback" in notice.details.value
    with notice.guard() as outcome:
        pass  # nothing raised: nothing is told, nothing is cleared
    assert not outcome.failed and notice.level == "error"


@pytest.mark.parametrize(
    "core, view",
    [
        (
            "learning_rate must be between 0 and 1; got 2.0.",
            "learning rate must be between 0 and 1; got 2.0.",
        ),
        (
            "keep_best picks the best evaluation. Make one (session.split(eval_fraction=0.1)), "
            "or turn keep_best off.",
            "keep best picks the best evaluation. Make one, or turn keep best off.",
        ),
        (
            "Lower max_length, or set gradient_checkpointing=True.",
            "Lower max length, or set gradient checkpointing on.",
        ),
        ("Wait for it (run.wait()) or stop it.", "Wait for it or stop it."),
        ("DPO needs beta above 0 (0.1 is usual).", "DPO needs beta above 0 (0.1 is usual)."),
        (
            "Cannot read /tmp/max_length/my_file.jsonl line 3.",
            "Cannot read /tmp/max_length/my_file.jsonl line 3.",
        ),
    ],
)
def test_a_notice_says_the_cores_message_in_the_views_words(core, view):
    notice = Notice()
    notice.error(core)
    assert notice.text == view
