"""Replay: the base's own answers to keep prompts mixed into the training rows.

Self-distillation replay (Yang et al. 2024, "Self-Distillation Bridges Distribution Gap in
Language Model Fine-Tuning"): the targets are what the base already says, so nothing new is taught
and the old behaviour is held while the task is learnt. Replay prompts are never the prompts that
measure drift (KeepSet.split).
"""

from __future__ import annotations

from collections.abc import Sequence

from .keep_set import KeepPrompt


def replay_rows(prompts: Sequence[KeepPrompt], answers: Sequence[str], count: int) -> list[dict]:
    """`count` training rows of keep prompts with the base's answers (cycled when there are
    fewer prompts than rows), each marked `replay` so the snapshot records which rows they are.
    A prompt the base answered with nothing is left out; [] when none has an answer."""
    pairs = [(p, a) for p, a in zip(prompts, answers) if a.strip()]
    if not pairs or count <= 0:
        return []
    rows = []
    for k in range(count):
        prompt, text = pairs[k % len(pairs)]
        messages = [*prompt.messages, {"role": "assistant", "content": text}]
        rows.append({"messages": messages, "replay": True, "keep_id": prompt.id})
    return rows


def replay_count(n_train: int, fraction: float) -> int:
    """Replay rows that make up `fraction` of the training rows once added (0 <= fraction < 1)."""
    return round(n_train * fraction / (1 - fraction)) if fraction > 0 else 0
