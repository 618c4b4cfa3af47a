"""The keep set and forgetting: general prompts a run is not about, the base's own answers to
them, and replay that holds them (replay.py); the runner measures drift
(train/runner/keep_drift.py)."""

from .base_answers import KEEP_MAX_NEW_TOKENS, base_answers
from .keep_set import DEFAULT, OFF, KeepPrompt, KeepSet, bundled_keep_set, load_keep_set
from .record import KeepItem, KeepRecord
from .replay import replay_count, replay_rows

__all__ = [
    "DEFAULT",
    "KEEP_MAX_NEW_TOKENS",
    "OFF",
    "KeepItem",
    "KeepPrompt",
    "KeepRecord",
    "KeepSet",
    "base_answers",
    "bundled_keep_set",
    "load_keep_set",
    "replay_count",
    "replay_rows",
]
