"""Session actions on models' answers: generate, chat, compare, evaluate, score, token losses,
record votes.

Contestants are "base" (the session's model with the session's template), every adapter of the
workspace by run name (with the template stored beside it), any adapter folder, and any base
model added with `add_base_model`. All of them run on the Session's one Generator. Reward models
(runs of method "reward") write no answers: they score them (`score`, `reward_agreement`).
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..persist import append_jsonl, read_jsonl
from ..preferences.records import PreferenceRecord, PreferenceSet

if TYPE_CHECKING:
    from ..answers.chat import Conversation
    from ..answers.compare import Comparison
    from ..answers.evaluate import AnswerCache, Evaluation, Scorer
    from ..answers.generate import GenerationSettings, Generator
    from ..answers.token_losses import TokenLosses

Prompt = str | list[dict]


class ComparisonActions:
    """Generation, comparison, evaluation and preferences for Session (a mixin over its state)."""

    # -- contestants --------------------------------------------------------------------------
    @property
    def generator(self) -> Generator:
        """The one Generator of this session: its base model loads on first use."""
        from ..answers.generate import Generator

        if self._generator is None:
            self._generator = Generator(self._model, self.template, tokenizer=self.tokenizer)
        else:
            self._generator.set_base_template(self.template)
        return self._generator

    @property
    def contestants(self) -> list[str]:
        """Who can answer: "base", the workspace's adapters, then the loaded extras."""
        names = ["base", *self.adapters]
        if self._generator is not None:
            names += [n for n in self._generator.contestants if n not in names]
        return names

    def default_contestants(self, count: int = 2) -> list[str]:
        """The first `count` contestants a comparison offers: "base", the run the views follow
        (`selected_run`) when it answers, else the newest adapter, then the other adapters
        newest first and the loaded extras."""
        names = self.contestants
        selected = self.selected_run
        first = [selected.name] if selected is not None and selected.name in names else []
        order = ["base", *first, *reversed(list(self.adapters)), *names]
        return list(dict.fromkeys(order))[:count]

    def add_base_model(self, model: Any, name: str | None = None) -> str:
        """Load another base model (spec, hub id or folder) as its own contestant; returns its name."""
        from .. import models

        spec = models.as_spec(model)
        name = name or spec.display_name
        if name not in self.generator.contestants:
            self.generator.add_base(name, spec)
        return name

    def load_contestant(self, model: str | os.PathLike) -> str:
        """Make `model` (a contestant, run name or adapter folder) ready to answer; its name.

        An adapter folder is checked before anything of it loads (see adapter_files).
        """
        generator = self.generator
        adapters = self.adapters
        if isinstance(model, str) and model in adapters:
            generator.add_adapter(model, adapters[model])  # reloads a rewritten adapter
            return model
        if isinstance(model, str) and model in generator.contestants:
            return model
        reward_models = self.reward_models
        if (isinstance(model, str) and model in reward_models) or _is_reward_model(model):
            raise ValueError(
                f"{model} is a reward model: it scores answers (session.score) but writes none; "
                "compare the runs that generate answers."
            )
        folder = Path(model)
        if folder.is_dir():
            name = folder.parent.name if folder.name == "adapter" else folder.name
            generator.add_adapter(name, folder)
            return name
        known = ", ".join(self.contestants)
        raise KeyError(
            f"No contestant named {str(model)!r}; choose one of: {known}, or an adapter folder."
        )

    # -- answers ------------------------------------------------------------------------------
    def generate(
        self, prompt_or_messages: Prompt | Sequence[Prompt], model: str = "base", **settings: Any
    ) -> str | list[str]:
        """One answer from one contestant (greedy at temperature 0), or a list for a list of prompts.

        A string or a list of messages is one prompt; a list of those is a batch, generated
        together with left padding. Settings are GenerationSettings' fields.

        >>> answer = s.generate("Write this in capital letters: quiet river", max_new_tokens=8)
        >>> answers = s.generate(["What is 2+3?", "Reverse: a, b"], max_new_tokens=8)
        >>> type(answer).__name__, len(answers)
        ('str', 2)
        """
        from ..answers.generate import GenerationSettings

        gen = GenerationSettings.from_json(settings)
        name = self.load_contestant(model)
        if _is_batch(prompt_or_messages):
            return self.generator.generate_batch(list(prompt_or_messages), name, gen)
        return self.generator.generate(prompt_or_messages, name, gen)

    def chat(self, models: Sequence[str]) -> Conversation:
        """A multi-turn chat of several contestants, each with its own history (the comparator's)."""
        from ..answers.chat import Conversation

        return Conversation(self.generator, [self.load_contestant(m) for m in models])

    def compare(
        self,
        prompts: Sequence[Prompt] | None = None,
        models: Sequence[str] | None = None,
        scorer: str | Scorer | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
        **settings: Any,
    ) -> Comparison:
        """Every contestant answers every prompt; a table side by side, exportable.

        `prompts` None means the eval split, whose references are then scored (exact match
        unless `scorer` says otherwise). `models` None means "base" and every adapter.
        `progress(done, total)` hears of each batch of answers (cache hits count); setting
        `stop` ends the batch in flight and raises ComparisonStopped, keeping finished
        answers in the answer cache.

        >>> table = s.compare(["What is 2+3?", "Reverse: a, b"], models=["base"], max_new_tokens=8)
        >>> list(table.answers), len(table.answers["base"])
        (['base'], 2)
        """
        from ..answers.compare import Comparison
        from ..answers.evaluate import answers_of_all, evaluate

        gen = _settings(settings)
        names = [self.load_contestant(m) for m in (models or ["base", *self.adapters])]
        cache = self._answer_cache()
        if prompts is None:
            rows = self._eval_rows()
            scored = evaluate(
                self.generator,
                names,
                rows,
                scorer or "exact_match",
                gen,
                cache,
                progress=progress,
                stop=stop,
            )
            return Comparison.from_evaluation(scored)
        messages = [_messages(p) for p in prompts]
        answers = answers_of_all(
            self.generator, names, messages, gen, cache, progress=progress, stop=stop
        )
        return Comparison(
            prompts=messages,
            answers=answers,
            contestants={n: self.generator.describe(n) for n in names},
            settings=gen.to_json(),
        )

    def evaluate(
        self,
        model: str | Sequence[str],
        dataset: Any = None,
        scorer: str | Scorer = "exact_match",
        *,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
        **settings: Any,
    ) -> Evaluation:
        """Score contestants on held-out rows: per-row results and the aggregate, cached.

        `model`: a name or a list (base and adapters land in one table). `dataset`: None for the
        eval split, or anything load_dataset takes. The reference is a row's last assistant turn.
        `progress` and `stop` work as in `compare` (ComparisonStopped when stopped).
        """
        from ..answers.evaluate import evaluate

        names = [model] if isinstance(model, (str, os.PathLike)) else list(model)
        names = [self.load_contestant(m) for m in names]
        rows = self._eval_rows() if dataset is None else self._rows_of(dataset)
        gen, cache = _settings(settings), self._answer_cache()
        return evaluate(
            self.generator, names, rows, scorer, gen, cache, progress=progress, stop=stop
        )

    def token_losses(
        self, row_or_messages: int | dict | list[dict], models: Sequence[str] = ("base",)
    ) -> TokenLosses:
        """Each model's loss in nats on every token of one conversation, as training sees it.

        `row_or_messages`: a row number of the dataset, a row dict or a list of messages, cut
        and tokenised with the session's template and max_length (tokenize_with_labels).
        `models`: "base", run names, adapter folders, on the session's one base model. Raises
        KeyError naming an unknown model, ValueError when no token of the row trains.
        """
        from ..answers.token_losses import token_losses

        names = [models] if isinstance(models, (str, os.PathLike)) else list(models)
        example, source = self._conversation(row_or_messages)
        names = [self.load_contestant(m) for m in names]
        template = self.generator.template_of("base")
        return token_losses(
            self.generator, names, example, template, self.max_length, source=source
        )

    def _conversation(self, row_or_messages: Any) -> tuple[list[dict], str]:
        """The messages of a row number, row dict or message list, and how to name them."""
        from ..templates.template import messages_of

        if isinstance(row_or_messages, numbers.Integral) and not isinstance(row_or_messages, bool):
            row = int(row_or_messages)
            return self._require_dataset().messages_of(row), f"Row {row}"
        if isinstance(row_or_messages, (dict, list)):
            row = row_or_messages.get("row") if isinstance(row_or_messages, dict) else None
            source = "The conversation" if row is None else f"Row {row}"
            return messages_of(row_or_messages), source
        raise TypeError(
            'Give a row number, a row dict with "messages" or a list of messages; got '
            f"{type(row_or_messages).__name__}."
        )

    def _eval_rows(self) -> list[dict]:
        ds = self._require_dataset()
        rows = [r for r in ds.rows(self.split_rows[1]) if not r["excluded"]]
        if not rows:
            raise ValueError(
                "The session has no eval rows: make an eval split "
                "(session.split(eval_fraction=0.1)), or give the rows to score."
            )
        return rows

    def _rows_of(self, dataset: Any) -> list[dict]:
        from ..data import InstructionDataset, load_source

        if not isinstance(dataset, InstructionDataset):
            dataset = load_source(dataset, cache_dir=self.workspace.dataset_cache_dir)
        return [r for r in dataset.rows(range(len(dataset))) if not r["excluded"]]

    def _answer_cache(self) -> AnswerCache | None:
        from ..answers.evaluate import AnswerCache

        if self.read_only:
            return None
        return AnswerCache(self.workspace.answer_cache_file)

    # -- reward models ------------------------------------------------------------------------
    def score(
        self, prompt_or_messages: Prompt, answers: Sequence[str], reward_model: str | os.PathLike
    ) -> list[float]:
        """Each answer's reward from a reward model (run name or adapter folder), higher is better.

        The prompt and each answer are rendered with the reward model's own template, as it was
        trained. The model loads once (the last two stay in memory). Raises RewardModelError for
        a folder that is no reward model or one trained on another base model (both named).
        """
        if isinstance(answers, str):
            raise TypeError("answers is a list of answers to score; wrap one answer in a list.")
        model = self._reward_model(reward_model)
        return model.score(_messages(prompt_or_messages), [str(a) for a in answers])

    def reward_agreement(
        self, reward_model: str | os.PathLike, preferences: Any = None
    ) -> RewardAgreement:
        """How often a reward model scores the chosen answer above the rejected one, on the
        votes (or `preferences` rows) it never trained on; ties and both-bad are left out."""
        from ..preferences.pairs import as_pairs, pair_fingerprint

        model = self._reward_model(reward_model)
        trained = set(model.record.trained_pairs)
        records = self.preferences if preferences is None else preferences
        pairs = [
            row
            for row in as_pairs(records).rows
            if pair_fingerprint(row["prompt"], row["chosen"], row["rejected"]) not in trained
        ]
        chosen = model.score_conversations([row["prompt"] + row["chosen"] for row in pairs])
        rejected = model.score_conversations([row["prompt"] + row["rejected"] for row in pairs])
        agree = sum(c > r for c, r in zip(chosen, rejected))
        return RewardAgreement(agree, len(pairs), model.record.held_out_accuracy)

    def _reward_model(self, reward_model: str | os.PathLike):
        from ..train.reward_model import RewardModelError, load_reward_model

        known = self.reward_models
        if isinstance(reward_model, str) and reward_model in known:
            folder = known[reward_model]
        elif Path(reward_model).is_dir():
            folder = Path(reward_model)
        else:
            names = ", ".join(known) or "none yet: train one with TrainConfig(method='reward')"
            raise RewardModelError(
                f"No reward model named {str(reward_model)!r}; reward models: {names}."
            )
        return load_reward_model(folder, self._model)

    # -- votes --------------------------------------------------------------------------------
    def record_preference(
        self, prompt: Any, chosen: str, rejected: str, **details: Any
    ) -> PreferenceRecord:
        """Append one preference pair (`chosen` better than `rejected` as an answer to `prompt`)
        to preferences.jsonl; it is on disk (fsynced) when this returns. The comparator's clicks
        go through record_vote, which knows which model wrote each answer.

        >>> pair = s.record_preference("Capitalise: river", chosen="RIVER", rejected="river")
        >>> pair.prompt
        [{'role': 'user', 'content': 'Capitalise: river'}]
        """
        self.workspace.require_writable()
        record = PreferenceRecord.create(prompt, chosen, rejected, **details)
        return self._append_preference(record)

    def record_vote(
        self,
        prompt: Prompt,
        a: tuple[str, str],
        b: tuple[str, str],
        vote: str,
        **details: Any,
    ) -> PreferenceRecord:
        """Record a click on "A better", "B better", "tie" or "both bad" (vote "A", "B", "tie",
        "both_bad"); `a` and `b` are (contestant, answer) as shown. Details: comment, settings,
        blind, b_prompt (when B answered another conversation).

        >>> vote = s.record_vote("What is 2+3?", ("base", "6"), ("run-1", "5"), "B")
        >>> vote.chosen, vote.chosen_model, vote.rejected_model
        ('5', 'run-1', 'base')
        """
        self.workspace.require_writable()
        return self._append_preference(PreferenceRecord.from_vote(prompt, a, b, vote, **details))

    def _append_preference(self, record: PreferenceRecord) -> PreferenceRecord:
        self.workspace.preferences_file.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.workspace.preferences_file, record.to_json())
        self._notify("preferences", None, record)
        return record

    @property
    def preferences(self) -> PreferenceSet:
        """Every vote recorded in this workspace, oldest first; `.pairs()` gives the DPO pairs
        (ties and both-bad skipped unless asked) and `.tally()` the votes per contestant pair."""
        records = read_jsonl(self.workspace.preferences_file)
        return PreferenceSet(PreferenceRecord.from_json(r) for r in records)


@dataclass(frozen=True)
class RewardAgreement:
    """A reward model against people's votes it never trained on: `agree` of `total` pairs
    scored chosen above rejected; `held_out_accuracy` as measured at the end of its run."""

    agree: int
    total: int
    held_out_accuracy: float | None = None

    @property
    def rate(self) -> float | None:
        """The share of pairs where the reward model agrees (None without any pair)."""
        return self.agree / self.total if self.total else None


def _is_reward_model(model: Any) -> bool:
    from ..train.reward_model import is_reward_model

    return isinstance(model, (str, os.PathLike)) and is_reward_model(Path(model))


def _settings(settings: dict[str, Any]) -> GenerationSettings:
    from ..answers.generate import GenerationSettings

    return GenerationSettings.from_json(settings)


def _is_batch(prompt: Any) -> bool:
    return isinstance(prompt, (list, tuple)) and bool(prompt) and not isinstance(prompt[0], dict)


def _messages(prompt: Prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
