"""Session actions on the keep set: what a run measures its drift on, and what it replays."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import models
from ..errors import TrainingDataError
from ..keep.base_answers import KEEP_MAX_NEW_TOKENS, base_answers, cache_file
from ..keep.keep_set import KeepPrompt, KeepSet, flag_training_overlap, load_keep_set
from ..keep.record import KeepItem, KeepRecord
from ..keep.replay import replay_count, replay_rows
from ..persist import read_jsonl
from ..train import Run, TrainConfig
from ..train.config import PROBED

if TYPE_CHECKING:
    from ..answers.compare import Comparison


class KeepSetWarning(UserWarning):
    """Some keep prompts are training prompts too: they measure the task, so they are left out."""


SHOWN = 3  # rows named in an error


class KeepActions:
    """The keep half of Session (a mixin over the Session's state)."""

    def base_answers(
        self, prompts: Sequence[KeepPrompt], max_new_tokens: int = KEEP_MAX_NEW_TOKENS
    ) -> list[str]:
        """The base model's greedy answers to keep prompts with the session's template, cached
        on this machine per (model weights, template, setting) and prompt, beside the converted
        models (`workbench.models.cache_dir()`): a second call, in any workspace, costs nothing.

        >>> from workbench.keep import bundled_keep_set
        >>> answers = s.base_answers(bundled_keep_set().prompts[:8])  # a second call: instant
        >>> len(answers)
        8
        """
        cache = cache_file(models.cache_dir(), self.generator.fingerprint("base"), max_new_tokens)

        def answer(batch: list[list[dict]]) -> list[str]:
            return self.generate(batch, model="base", max_new_tokens=max_new_tokens)

        return base_answers(prompts, answer, cache)

    def keep_report(self, run: Run | str) -> Comparison:
        """A finished run's keep answers side by side, the base's (adapter off, in the run)
        beside the run's, worst first: changed answers before unchanged, then by the prompt's
        own drift (nats per token). For the comparator's batch view; nothing is generated.

        Raises ValueError for a run without keep answers (keep_set 'off', or not ended yet).
        `s.keep_report("run-1").answers["run-1"][0]` is the run's answer that moved most.
        """
        from ..answers.compare import Comparison

        run = run if isinstance(run, Run) else self.run(run)
        samples = [r for r in read_jsonl(run.folder.samples_file) if "keep" in r]
        if not samples or not run.folder.keep_file.exists():
            raise ValueError(
                f"{run.name} has no keep answers: they are written when a run with a keep set "
                "ends (keep_set was 'off', or the run has not ended)."
            )
        last = max(r["step"] for r in samples)
        rows = sorted((r for r in samples if r["step"] == last), key=_worst_first)
        messages = {m.id: m.messages for m in KeepRecord.read(run.folder.keep_file).measure}
        return Comparison(
            prompts=[messages[r["keep"]] for r in rows],
            answers={"base": [r["base"] for r in rows], run.name: [r["answer"] for r in rows]},
            contestants={"base": {"adapter": None}, run.name: {"adapter": str(run.adapter_path)}},
            settings={"greedy": True, "step": last, "source": "keep answers (samples.jsonl)"},
        )

    def _keep_for_run(
        self, config: TrainConfig, train_rows: Sequence[dict]
    ) -> tuple[KeepRecord | None, list[dict]]:
        """A run's keep record (measuring prompts with the base's answers) and its replay rows;
        (None, []) for a run that measures nothing. Raises TrainingDataError for a keep set that
        is empty, too long, or all training prompts."""
        if config.method not in PROBED["method"]:
            return None, []
        keep = load_keep_set(config.keep_set)
        if keep is None:
            return None, []
        flag_training_overlap(keep, train_rows)
        if keep.flagged:
            shown = ", ".join(map(str, keep.flagged[:SHOWN]))
            warnings.warn(
                f"keep_set ({keep.source}): {len(keep.flagged)} keep prompts are also training "
                f"prompts (keep prompt {shown}); they are left out of the drift measurement.",
                KeepSetWarning,
                stacklevel=3,
            )
        self._check_keep_lengths(keep, config.max_length)
        measure, pool = keep.split(config.keep_measure, seed=config.seed)
        wanted = replay_count(len(train_rows), config.replay or 0.0)
        if wanted and not pool:
            raise TrainingDataError(
                f"replay: all {len(measure)} usable keep prompts measure drift (keep_measure="
                f"{config.keep_measure}), none is left to replay. Lower keep_measure or give "
                "more keep prompts."
            )
        replayed = pool[:wanted]
        answers = self.base_answers([*measure, *replayed])
        rows = replay_rows(replayed, answers[len(measure) :], wanted)  # empty answers left out
        items = [
            KeepItem(p.id, p.messages, self.template.render_prompt(p.messages), a)
            for p, a in zip(measure, answers)
        ]
        record = KeepRecord(
            source=keep.source,
            measure=items,
            flagged=keep.flagged,
            replayed=len(rows),
            answers=config.keep_answers,
            answers_every=config.keep_answers_every,
            max_new_tokens=KEEP_MAX_NEW_TOKENS,
            drift_limit=config.drift_limit,
        )
        return record, rows

    def _check_keep_lengths(self, keep: KeepSet, max_length: int | None) -> None:
        """Refuse given keep prompts that alone fill the training length, naming them; bundled
        ones that do are left out (a short training length is no fault of the person)."""
        if not max_length:
            return
        tokenizer = self.template.tokenizer
        too_long = []
        for prompt in keep.prompts:
            text = self.template.render_prompt(prompt.messages)
            length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if length >= max_length:
                too_long.append((prompt.id, length))
        if too_long and keep.source == "bundled" and len(too_long) < len(keep.prompts):
            left_out = {i for i, _ in too_long}
            keep.prompts = [p for p in keep.prompts if p.id not in left_out]
            return
        if too_long:
            named = ", ".join(f"prompt {i} ({n} tokens)" for i, n in too_long[:SHOWN])
            raise TrainingDataError(
                f"keep_set ({keep.source}): {len(too_long)} keep prompts fill the training length "
                f"({max_length} tokens) before any answer: {named}. Shorten or drop them, or "
                "raise max_length."
            )


def _worst_first(sample: dict) -> tuple[bool, float]:
    return (not sample["changed"], -(sample.get("drift") or 0.0))
