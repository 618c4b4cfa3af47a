"""Session actions on synthetic data: candidates from a generator, kept only when accepted.

`synthesize` stages candidates in the workspace's candidates.jsonl, never in the dataset. A
person then accepts (each becomes a row through the edit log, its origin recorded), edits or
rejects them. Generators: a session model or adapter (the one model host), an
OpenAI-compatible URL or Endpoint, or a function from prompts to answers.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..synthesis import Candidate, SynthesisResult
    from ..synthesis.filters import CandidateFilter
    from ..synthesis.prompts import Bounds, Seed
    from ..synthesis.run import Answerer
    from ..synthesis.staging import Staging

DEFAULT_SEEDS = 10
# "base", an adapter or run name, an adapter folder, an http(s) URL, an Endpoint, or a function
# from a list of prompts to a list of answers
Generator = str | os.PathLike | Callable[[list[str]], list[str]] | Any


class SynthesisActions:
    """The synthesis part of Session (a mixin over the Session's state)."""

    def synthesize(
        self,
        seed_rows: Iterable[int] | None = None,
        n: int = 10,
        generator: Generator = "base",
        instruction: str | None = None,
        judge: Generator | None = None,
        progress: Callable[[SynthesisResult], None] | None = None,
        stop: threading.Event | None = None,
        **settings: Any,
    ) -> SynthesisResult:
        """Ask `generator` for `n` new rows in the spirit of `seed_rows` (default: the first
        10 rows), then parse, filter, grade (with a `judge`) and stage them as candidates.

        Generator and judge: "base", an adapter or run name, an http(s) URL of an
        OpenAI-compatible server, an Endpoint, or a function from prompts to answers. Settings
        are SynthesisSettings' fields. `progress(result)` hears the counts after each batch;
        `stop` ends the run, keeping what was staged. Raises SynthesisError (with the counts)
        when the generator fails, ValueError for seed rows without an answered user turn.
        """
        from ..synthesis.prompts import Bounds, build_requests
        from ..synthesis.run import Job, SynthesisSettings, run

        self.workspace.require_writable()
        config = SynthesisSettings.from_json(settings)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n is how many candidates to ask for, at least 1; got {n!r}.")
        ds = self._require_dataset()
        seeds = self._seeds(seed_rows)
        stop = stop or threading.Event()
        bounds = Bounds.of(seeds)
        name, answer, document = self._answerer(generator, stop, bounds)
        requests = build_requests(
            seeds,
            n,
            examples=config.examples,
            instruction=instruction,
            rng=random.Random(config.seed),
            document=document,
        )
        job = Job(
            requests=requests,
            generate=answer,
            generator=name,
            check=self._candidate_filter(seeds, config.similarity),
            staging=self._staging(),
            dataset=ds.fingerprint,
            instruction=instruction,
            judge=None if judge is None else self._answerer(judge, stop)[1],
        )
        try:
            return run(job, config, progress, stop)
        finally:
            self._notify("candidates", None, None)  # what was staged, even when stopped

    @property
    def candidates(self) -> list[Candidate]:
        """The staged candidates of the current dataset, oldest first, each with its verdict
        and status ("pending", "dropped", "accepted" or "rejected")."""
        if self._dataset is None:
            return []
        # the edit log decides what is a row: an accept whose log line was lost still counts
        rows = {o.get("candidate"): r for r, o in self._dataset.origins.items()}
        return [
            replace(c, status="accepted", row=rows[c.id]) if c.id in rows else c
            for c in self._staging().candidates(self._dataset.fingerprint)
        ]

    def accept(self, candidate_ids: str | Iterable[str]) -> list[int]:
        """Add candidates to the dataset as rows, through the edit log with their origin;
        returns their row numbers (accepted ones again: their rows). Raises ValueError, adding
        none, when one was dropped by a filter or now repeats a row of the dataset."""
        from ..synthesis.filters import dataset_duplicates

        self.workspace.require_writable()
        staged = self._staged(candidate_ids)
        todo = [c for c in staged if c.status != "accepted"]
        problems = [
            f"{c.id} ({c.verdict.note or c.verdict.dropped})" for c in todo if c.status == "dropped"
        ]
        fit = [c for c in todo if c.status != "dropped"]
        for c, verdict in zip(
            fit, dataset_duplicates(self._require_dataset(), [c.messages for c in fit])
        ):
            if verdict is not None:
                problems.append(f"{c.id} ({verdict.note})")
        if problems:
            raise ValueError(
                f"Nothing was accepted: {'; '.join(problems)} would not be a new row. Edit those "
                "candidates (session.edit_candidate) or leave them out."
            )
        rows = {c.id: c.row for c in staged if c.status == "accepted"}
        for c in todo:
            rows[c.id] = self.add_row(c.messages, origin={**c.origin.to_json(), "candidate": c.id})
            self._staging().decide("accept", [c.id], rows=[rows[c.id]])
        self._notify("candidates", None, [c.id for c in staged])
        return [rows[c.id] for c in staged]

    def reject(self, candidate_ids: str | Iterable[str], reason: str = "rejected") -> None:
        """Mark candidates as rejected, with the reason: they never reach the dataset. Raises
        ValueError for an accepted one, which is a row by now (exclude the row instead)."""
        self.workspace.require_writable()
        staged = self._staged(candidate_ids)
        accepted = [f"{c.id} (row {c.row})" for c in staged if c.status == "accepted"]
        if accepted:
            raise ValueError(
                f"Already rows of the dataset: {', '.join(accepted)}; exclude those rows "
                "(session.exclude) instead. Nothing was rejected."
            )
        self._staging().decide("reject", [c.id for c in staged], reason=str(reason))
        self._notify("candidates", None, [c.id for c in staged])

    def edit_candidate(self, candidate_id: str, messages: list[dict]) -> Candidate:
        """Replace a staged candidate's messages and check them again (a dropped candidate that
        now passes becomes pending); returns it as it stands. Raises ValueError for an
        accepted one (edit its row instead), TypeError for messages that are not chat turns."""
        from ..data.messages import check_messages
        from ..synthesis.parse import Parsed
        from ..synthesis.prompts import seed_of
        from ..synthesis.run import SynthesisSettings

        self.workspace.require_writable()
        (candidate,) = self._staged([candidate_id])
        if candidate.status == "accepted":
            raise ValueError(f"Candidate {candidate.id} is row {candidate.row} now; edit that row.")
        messages = check_messages(messages, f"candidate {candidate.id}")
        ds = self._require_dataset()
        rows = [r for r in candidate.origin.seed_rows if 0 <= r < len(ds)]
        seeds = [s for r in rows if (s := seed_of(r, ds.messages_of(r))) is not None]
        check = self._candidate_filter(
            seeds, SynthesisSettings().similarity, leave_out=candidate.id
        )
        (verdict,) = check.check([f"candidate {candidate.id}"], [Parsed(messages, "sections")])
        self._staging().decide("edit", [candidate.id], messages=messages, verdict=verdict)
        self._notify("candidates", None, [candidate.id])
        return self._staged([candidate.id])[0]

    # -- internals ----------------------------------------------------------------------------
    def _staging(self) -> Staging:
        from ..synthesis.staging import Staging

        return Staging(self.workspace.candidates_file)

    def _seeds(self, seed_rows: Iterable[int] | None) -> list[Seed]:
        """The examples the seed rows give (default: the first rows not excluded)."""
        from ..synthesis.prompts import seed_of

        ds = self._require_dataset()
        if seed_rows is None:
            rows = [r for r in range(min(len(ds), 10 * DEFAULT_SEEDS)) if r not in ds.excluded]
            rows = rows[:DEFAULT_SEEDS]
        else:
            rows = [ds._check_row(r) for r in seed_rows]
        seeds = [s for r in rows if (s := seed_of(r, ds.messages_of(r))) is not None]
        if not seeds:
            raise ValueError(
                f"None of the seed rows {rows[:10]} has a user turn with an assistant answer; "
                "choose rows that show the kind of example you want more of."
            )
        return seeds

    def _candidate_filter(
        self, seeds: Sequence[Seed], threshold: float, *, leave_out: str | None = None
    ) -> CandidateFilter:
        """A filter against the dataset and the staged candidates (but `leave_out`), with the
        seed rows' style for its flags and the session's template for lengths."""
        from ..synthesis.filters import CandidateFilter, References
        from ..synthesis.flags import Style

        references = References(self._require_dataset(), [s.row for s in seeds])
        for c in self.candidates:
            if c.messages and c.id != leave_out and c.status != "accepted":  # accepted: rows
                references.add(f"candidate {c.id}", c.messages)
        template = self.template
        return CandidateFilter(
            references,
            Style.of(seeds, references.words),
            threshold=threshold,
            length=lambda messages: len(template.tokenize({"messages": messages}).input_ids),
            max_length=self._max_length,
        )

    def _answerer(
        self, generator: Generator, stop: threading.Event, bounds: Bounds | None = None
    ) -> tuple[str, Answerer, bool]:
        """A generator's name (for origins), the function that answers prompts with it, and
        whether those prompts are documents to continue: a session model writing examples
        (`bounds` given) continues a few-shot document, stopped at the bounds; an endpoint, a
        function or a judge answers chat requests."""
        from ..synthesis.endpoint import Endpoint
        from ..synthesis.parse import Cut, finished, overrun
        from ..synthesis.prompts import DOCUMENT_OPEN

        if isinstance(generator, str) and generator.startswith(("http://", "https://")):
            generator = Endpoint(generator)
        if isinstance(generator, Endpoint):
            endpoint = generator
            return endpoint.name, lambda prompts, gen: endpoint.generate(prompts, gen, stop), False
        if callable(generator):
            function = generator
            name = getattr(function, "__name__", type(function).__name__)
            return name, lambda prompts, gen: list(function(prompts)), False
        name = self.load_contestant(generator)
        limits = (bounds.ask, bounds.answer) if bounds is not None else ()

        def write(documents: list[str], gen) -> list[str]:
            written = self.generator.complete_batch(
                documents, name, gen, stop, lambda t: finished(DOCUMENT_OPEN + t, *limits)
            )
            if stop.is_set():
                return []  # a batch cut short is not kept
            answers: list[str] = []
            for continuation in written:
                text = DOCUMENT_OPEN + continuation.text
                ran_out = f"it reached max_new_tokens ({gen.max_new_tokens}) before it ended"
                why = overrun(text, *limits) or (ran_out if continuation.ran_out else None)
                answers.append(Cut(text, why) if why else text)
            return answers

        def answer(prompts: list[str], gen) -> list[str]:
            answers = self.generator.generate_batch(prompts, name, gen, stop=stop)
            return [] if stop.is_set() else answers

        return name, (answer if bounds is None else write), bounds is not None

    def _staged(self, candidate_ids: str | Iterable[str]) -> list[Candidate]:
        """The candidates with these ids, in the order given; KeyError names unknown ones."""
        ids = [candidate_ids] if isinstance(candidate_ids, str) else list(candidate_ids)
        known = {c.id: c for c in self.candidates}
        missing = [str(i) for i in ids if i not in known]
        if missing:
            raise KeyError(
                f"No staged candidate {', '.join(missing)} for the current dataset; "
                "session.candidates lists them with their ids."
            )
        return [known[i] for i in ids]
