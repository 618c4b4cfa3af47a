"""ROUGE-L between instructions, as Self-Instruct filters them: longest common token subsequence.

ROUGE-L F1 of token lists a and b is 2·LCS(a, b) / (len(a) + len(b)). The LCS lengths come from
rapidfuzz (C++, all cores) over token lists, so a batch of candidates is compared with every
instruction of a large dataset in seconds. Tokens are lower-cased words; CJK characters count
one token each, since those scripts put no spaces between words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+", re.UNICODE)
CHUNK = 20_000  # references compared at once: bounds the score matrix to CHUNK x candidates


def tokens(text: str) -> list[str]:
    """The words of `text`, lower-cased (CJK characters one token each)."""
    return TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Nearest:
    """For each candidate: the highest ROUGE-L F1 against the references, and which reference."""

    scores: np.ndarray  # float, one per candidate (0 when there are no references)
    index: np.ndarray  # int, the reference that scored highest (-1 when none)


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two token lists, in [0, 1]; 0 when either is empty."""
    return float(nearest([list(a)], [list(b)]).scores[0])


def nearest(candidates: list[list[str]], references: list[list[str]]) -> Nearest:
    """The closest reference of each candidate by ROUGE-L F1 (token lists in, see `tokens`)."""
    from rapidfuzz import process
    from rapidfuzz.distance import LCSseq

    best = np.zeros(len(candidates))
    where = np.full(len(candidates), -1, np.int64)
    if not candidates or not references:
        return Nearest(best, where)
    sizes = np.array([len(c) for c in candidates], np.float64)
    for start in range(0, len(references), CHUNK):
        part = references[start : start + CHUNK]
        lcs = process.cdist(candidates, part, scorer=LCSseq.similarity, dtype=np.int32, workers=-1)
        total = sizes[:, None] + np.array([len(r) for r in part], np.float64)[None, :]
        f1 = np.divide(2.0 * lcs, total, out=np.zeros(lcs.shape), where=total > 0)
        top = f1.argmax(axis=1)
        value = f1[np.arange(len(candidates)), top]
        better = value > best
        best[better], where[better] = value[better], top[better] + start
    return Nearest(best, where)
