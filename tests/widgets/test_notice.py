"""Notice: the one way a view tells a person something, and Notice.guard for errors."""

from __future__ import annotations

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
