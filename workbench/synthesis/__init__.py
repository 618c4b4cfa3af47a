"""Synthetic instruction data: candidates from a generator, kept only when a person accepts them.

Self-Instruct and Alpaca style: a few seed rows shown per request (prompts), each answer parsed
into chat messages (parse), filtered against the dataset and the other candidates (filters:
duplicates, near duplicates, ROUGE-L look-alikes, empty or over-long rows; flags: language and
format), optionally graded by a judge (judge), and staged in candidates.jsonl (staging) until
accepted into the dataset through the edit log. The loop is run.py; Session.synthesize drives it.
"""

from .endpoint import Endpoint, EndpointError
from .filters import DROP_REASONS, Verdict
from .run import SynthesisError, SynthesisResult, SynthesisSettings
from .staging import STATUSES, Candidate, Origin

__all__ = [
    "DROP_REASONS",
    "STATUSES",
    "Candidate",
    "Endpoint",
    "EndpointError",
    "Origin",
    "SynthesisError",
    "SynthesisResult",
    "SynthesisSettings",
    "Verdict",
]
