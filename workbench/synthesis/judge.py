"""The optional judge pass: a model grades each kept candidate from 1 to 5 and says why.

The grade and reason are kept on the candidate for the person who accepts or rejects it; the
judge drops nothing. An answer without a readable grade keeps the candidate ungraded, with the
judge's words as the reason.
"""

from __future__ import annotations

import re

GRADE = re.compile(r"grade\W{0,3}([1-5])\b|\b([1-5])\s*(?:/|out of)\s*5\b", re.IGNORECASE)
REASON = re.compile(r"reason\W{0,3}(.+)", re.IGNORECASE | re.DOTALL)
MAX_REASON_CHARS = 300


def judge_prompt(messages: list[dict]) -> str:
    """The request that asks a judge to grade one candidate."""
    ask = "\n".join(m["content"] for m in messages if m["role"] == "user")
    answer = "\n".join(m["content"] for m in messages if m["role"] == "assistant")
    return (
        "Grade this training example for an AI assistant: is the task clear, and is the answer "
        "correct, complete and helpful?\n\n"
        f"### Task:\n{ask}\n\n### Answer:\n{answer}\n\n"
        "Reply in two lines and nothing else:\nGrade: <1 to 5, 5 is best>\nReason: <one sentence>"
    )


def read_grade(text: str) -> tuple[int | None, str]:
    """The grade (None when the judge gave none that can be read) and the reason given."""
    text = (text or "").strip()
    found = GRADE.search(text)
    grade = int(found.group(1) or found.group(2)) if found else None
    reason = REASON.search(text)
    words = (reason.group(1) if reason else text).strip()
    if grade is None:
        words = f"no grade could be read from the judge's answer: {words}"
    return grade, words[:MAX_REASON_CHARS]
