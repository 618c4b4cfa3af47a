"""Session actions on models' answers: generate, compare, evaluate, and record people's votes."""

from __future__ import annotations

from typing import Any

from .persist import append_jsonl, read_jsonl
from .preferences import PreferenceRecord


class ComparisonActions:
    """Generation and preferences for Session (a mixin over the Session's state)."""

    def generate(
        self, prompt_or_messages: str | list[dict], model: str = "base", **settings: Any
    ) -> str:
        """One answer from the session's model ("base") with its template; greedy at temperature 0."""
        from .generate import GenerationSettings, Generator

        if self._generator is None:
            self._generator = Generator(self._model, self._template)
        return self._generator.generate(prompt_or_messages, model, GenerationSettings(**settings))

    def record_preference(
        self, prompt: Any, chosen: str, rejected: str, **details: Any
    ) -> PreferenceRecord:
        """Append one vote to preferences.jsonl; it is on disk when this returns."""
        self.workspace.require_writable()
        record = PreferenceRecord.create(prompt, chosen, rejected, **details)
        append_jsonl(self.workspace.preferences_file, record.to_json())
        self._notify("preferences", None, record)
        return record

    @property
    def preferences(self) -> list[PreferenceRecord]:
        """Every vote recorded in this workspace, oldest first."""
        return [PreferenceRecord.from_json(r) for r in read_jsonl(self.workspace.preferences_file)]
