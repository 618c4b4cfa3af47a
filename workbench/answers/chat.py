"""Conversation: several contestants chatting in parallel, each keeping its own history.

Every user turn goes to all contestants at once; each continues its own conversation (its own
earlier answers), which is what a person sees side by side. `reset` clears every history.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .generate import GenerationSettings, Generator, as_messages

AnswerCallback = Callable[[str, str], None]
"""Called as `on_text(contestant, text_so_far)` while a contestant's answer grows."""


class Conversation:
    """The multi-turn chats of `models` with one generator; ask them all the same turns."""

    def __init__(self, generator: Generator, models: list[str]):
        if len(set(models)) != len(models) or not models:
            raise ValueError(f"Choose distinct contestants to chat with; got {models}.")
        for name in models:
            generator.contestant(name)  # a KeyError now, not halfway through a turn
        self.generator = generator
        self.models = list(models)
        self.histories: dict[str, list[dict]] = {m: [] for m in self.models}
        self._lock = threading.Lock()

    @property
    def turns(self) -> int:
        """How many user turns were answered."""
        return sum(1 for m in self.histories[self.models[0]] if m["role"] == "user")

    def ask(
        self,
        text: str,
        settings: GenerationSettings,
        on_text: AnswerCallback | None = None,
        stop: threading.Event | None = None,
    ) -> dict[str, str]:
        """Send one user turn to every contestant; returns each one's answer, kept in its history.

        A stopped turn keeps what was generated so far.
        """
        if not text.strip():
            raise ValueError("Type a prompt first; an empty turn was not sent.")
        with self._lock:
            jobs = [
                (m, [*self.histories[m], {"role": "user", "content": text}]) for m in self.models
            ]
            relay = None if on_text is None else (lambda i, t: on_text(self.models[i], t))
            partial: dict[int, str] = {}

            def keep(i: int, t: str) -> None:
                partial[i] = t
                if relay is not None:
                    relay(i, t)

            answers = self.generator.answer_each(
                [(m, as_messages(msgs, settings.system_prompt)) for m, msgs in jobs],
                settings,
                keep,
                stop,
            )
            result = {}
            for i, (model, messages) in enumerate(jobs):
                answer = answers[i] or partial.get(i, "").strip()
                self.histories[model] = [*messages, {"role": "assistant", "content": answer}]
                result[model] = answer
            return result

    def prompt_of(self, model: str, system_prompt: str | None = None) -> list[dict]:
        """The messages `model` answered last: its history up to and including the last user turn."""
        history = self.histories[model]
        last_user = max((k for k, m in enumerate(history) if m["role"] == "user"), default=-1)
        return as_messages(history[: last_user + 1], system_prompt)

    def last_answer(self, model: str) -> str:
        """`model`'s latest answer ("" before the first turn)."""
        history = self.histories[model]
        return history[-1]["content"] if history and history[-1]["role"] == "assistant" else ""

    def reset(self) -> None:
        """Forget every contestant's history."""
        with self._lock:
            self.histories = {m: [] for m in self.models}
