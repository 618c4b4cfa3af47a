"""Preference data: people's votes between two answers, and the (prompt, chosen, rejected) pairs
that DPO and reward models train on."""

from .pairs import MIN_PAIRS, PreferencePairs, as_pairs
from .records import VERDICTS, VOTES, PairTally, PreferenceRecord, PreferenceSet

__all__ = [
    "MIN_PAIRS",
    "VERDICTS",
    "VOTES",
    "PairTally",
    "PreferencePairs",
    "PreferenceRecord",
    "PreferenceSet",
    "as_pairs",
]
