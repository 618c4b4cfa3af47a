"""The base model's own greedy answers to keep prompts, cached on the machine.

They are what drift is measured against (how likely the tuned adapter still finds the base's
answer) and what replay trains on (self-distillation: the targets are what the base already says,
so nothing new is taught). Greedy answers are deterministic for a model, template and settings, so
each prompt is answered once: the cache file is named by the base's fingerprint (model weights and
template) and the settings, and holds one answer per prompt; a second run costs nothing, in any
workspace (derived files, like the converted models beside them: deleting them loses nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from ..persist import atomic_write_json, read_json
from ..progress import progress
from .keep_set import KeepPrompt

KEEP_MAX_NEW_TOKENS = 48
Answerer = Callable[[list[list[dict]]], list[str]]  # message lists -> greedy answers


def cache_file(cache_dir: Path, base_fingerprint: str, max_new_tokens: int) -> Path:
    """The cache of one base (model and template) and setting, under `cache_dir`."""
    settings = hashlib.sha256(f"greedy:{max_new_tokens}".encode()).hexdigest()[:8]
    return cache_dir / "keep" / f"base-{base_fingerprint}-{settings}.json"


def base_answers(
    prompts: Sequence[KeepPrompt], answer: Answerer, cache: Path, batch_size: int = 16
) -> list[str]:
    """The base's answers to `prompts`, in order: those in `cache` read, the others answered by
    `answer` (greedy, the session's template) in batches of `batch_size` and added to it.

    The cache is rewritten atomically after each batch, so an interrupted call keeps its work,
    and merged with what is on disk, so sessions answering beside each other lose nothing.
    """
    known = _cached(cache)
    missing = [p for p in prompts if p.key not in known]
    with progress(len(missing), "The base model answers the keep prompts (once)") as advance:
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            for prompt, text in zip(batch, answer([p.messages for p in batch])):
                known[prompt.key] = text
            cache.parent.mkdir(parents=True, exist_ok=True)
            # Another session on this machine may have added answers since the read: keep them.
            known = {**_cached(cache), **known}
            atomic_write_json(cache, {"answers": known})
            advance(len(batch))
    return [known[p.key] for p in prompts]


def _cached(cache: Path) -> dict[str, str]:
    """The answers in `cache` by prompt key; none where it does not exist yet."""
    return read_json(cache)["answers"] if cache.exists() else {}
