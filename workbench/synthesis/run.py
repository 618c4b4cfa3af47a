"""One synthesis run: requests out in batches, answers parsed, filtered, judged and staged.

Every batch is staged as soon as it is checked, so a Stop, or a generator that fails half way,
keeps all that was done; the counts (asked, parsed, kept, dropped by reason) reach `progress`
after each batch. A malformed answer is counted and staged as dropped, never raised.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..answers.generate import GenerationSettings, sampling_setting
from ..persist import fields_from_json
from ..settings import documented, setting
from .filters import DROP_REASONS, CandidateFilter, Verdict
from .judge import judge_prompt, read_grade
from .parse import Cut, Malformed, Parsed, parse_candidate
from .prompts import Request
from .staging import CandidateRecord, Origin, Staging

# prompts and settings in, one answer per prompt out (fewer when stopped part way); an answer
# that was cut short is a parse.Cut
Answerer = Callable[[list[str], GenerationSettings], list[str]]
MAX_RAW_CHARS = 2000  # of a malformed answer, kept for a person to see what the model wrote
JUDGE_TOKENS = 96


@documented
@dataclass(frozen=True)
class SynthesisSettings:
    """How candidates are asked for and filtered; each field's help and bounds are metadata."""

    examples: int = setting(3, "Seed rows shown as examples in each request.", min=1, max=10)
    batch_size: int = setting(10, "Requests generated together (then staged).", min=1, max=256)
    temperature: float = sampling_setting("temperature", 0.7)  # varied, as Self-Instruct samples
    top_p: float = sampling_setting("top_p", 0.95)
    top_k: int = sampling_setting("top_k", 50)  # a local model's generation: a third faster
    max_new_tokens: int = sampling_setting("max_new_tokens", 256)
    similarity: float = setting(
        0.7,
        "Drop a candidate whose instruction has at least this ROUGE-L F1 with one already "
        "there (Self-Instruct: 0.7); 1 drops only identical instructions.",
        min=0.0,
        max=1.0,
        step=0.05,
    )
    seed: int = setting(0, "Seed of the draws of examples and of sampling.")

    def __post_init__(self) -> None:
        if not isinstance(self.examples, int) or self.examples < 1:
            raise ValueError(f"examples must be at least 1; got {self.examples!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {self.batch_size!r}.")
        if not 0 <= self.similarity <= 1:
            raise ValueError(f"similarity is a ROUGE-L F1 in [0, 1]; got {self.similarity}.")
        self.generation(0)  # temperature, top_p and max_new_tokens checked there

    def generation(self, batch: int) -> GenerationSettings:
        """The sampling settings of batch number `batch` (its own seed, so batches differ)."""
        return GenerationSettings(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            seed=self.seed + batch,
        )

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, source: str = "synthesis settings"
    ) -> SynthesisSettings:
        """Settings from keyword arguments; an unknown name raises TypeError naming it."""
        try:
            return cls(**fields_from_json(cls, data, source=source))
        except ValueError as e:
            if "unknown" in str(e):
                raise TypeError(str(e)) from e
            raise


@dataclass
class SynthesisResult:
    """The counts of a run so far: requests asked, answers parsed, candidates kept, dropped by
    reason (malformed included), flagged for a person, graded by the judge; and the ids staged."""

    n: int
    asked: int = 0
    answered: int = 0
    parsed: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    judged: int = 0
    candidates: list[str] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """The counts as one sentence."""
        drops = ", ".join(
            f"{count} {reason.replace('_', ' ')}" for reason, count in self.dropped.items()
        )
        text = f"Asked {self.asked} of {self.n}, parsed {self.parsed}, kept {self.kept}"
        text += f" (dropped: {drops})" if drops else ""
        text += f", {self.flagged} flagged" if self.flagged else ""
        return text + (" — stopped." if self.stopped else ".")

    def to_json(self) -> dict[str, Any]:
        """As a JSON object."""
        return asdict(self)


class SynthesisError(RuntimeError):
    """A run ended early because its generator failed; `result` counts what was staged."""

    def __init__(self, message: str, result: SynthesisResult):
        super().__init__(message)
        self.result = result


@dataclass
class Job:
    """Everything a run needs, put together by the Session."""

    requests: list[Request]
    generate: Answerer
    generator: str  # its name, for the origin of each candidate
    check: CandidateFilter
    staging: Staging
    dataset: str  # fingerprint
    instruction: str | None = None
    judge: Answerer | None = None


def run(
    job: Job,
    settings: SynthesisSettings,
    progress: Callable[[SynthesisResult], None] | None = None,
    stop: threading.Event | None = None,
) -> SynthesisResult:
    """Ask, parse, filter, judge and stage every request of `job`, batch by batch. Raises
    SynthesisError (with the counts) when the generator or judge fails; staged stays staged."""
    result = SynthesisResult(n=len(job.requests))
    started = time.monotonic()
    size = settings.batch_size
    for number, start in enumerate(range(0, len(job.requests), size)):
        if stop is not None and stop.is_set():
            result.stopped = True
            break
        batch = job.requests[start : start + size]
        result.asked += len(batch)
        failure = None
        try:
            answers = job.generate([r.prompt for r in batch], settings.generation(number))
        except Exception as e:  # staged stays staged; the message says what failed
            failure, answers = e, list(getattr(e, "answers", []))
        answers = [a if isinstance(a, str) else "" for a in answers[: len(batch)]]
        try:
            _stage(job, batch[: len(answers)], answers, result)
        except Exception as e:
            failure = failure or e
        result.seconds = time.monotonic() - started
        if failure is not None:
            raise SynthesisError(
                f"{failure} {result.summary()} What was staged stays.", result
            ) from failure
        if progress is not None:
            progress(result)
        if len(answers) < len(batch):
            result.stopped = True
            break
    result.seconds = time.monotonic() - started
    return result


def _stage(job: Job, batch: list[Request], answers: list[str], result: SynthesisResult) -> None:
    """Parse, check, judge and stage the answers to `batch`, counting as it goes; a judge that
    fails leaves the batch staged ungraded, then raises."""
    result.answered += len(answers)
    ids = [uuid.uuid4().hex[:12] for _ in answers]
    parsed: dict[int, Parsed] = {}
    verdicts: dict[int, Verdict] = {}
    for k, (request, answer) in enumerate(zip(batch, answers)):
        try:
            parsed[k] = parse_candidate(answer, request.system)
        except Malformed as e:
            verdicts[k] = Verdict("malformed", str(e))
            continue
        if isinstance(answer, Cut):
            verdicts[k] = Verdict("too_long", answer.why)  # kept to read and edit, not a row
    order = [k for k in sorted(parsed) if k not in verdicts]
    labels = [f"candidate {ids[k]}" for k in order]
    for k, verdict in zip(order, job.check.check(labels, [parsed[k] for k in order])):
        verdicts[k] = verdict
    failure = None
    if job.judge is not None:
        try:
            _judge(job.judge, [(parsed[k], verdicts[k]) for k in order if verdicts[k].kept])
        except Exception as e:  # stage the batch ungraded, then say what failed
            failure = e
        result.judged += sum(verdicts[k].grade is not None for k in order)
    now = time.time()
    for k, answer in enumerate(answers):
        verdict = verdicts[k]
        origin = Origin(job.generator, list(batch[k].seed_rows), now, job.instruction, ids[k])
        messages = parsed[k].messages if k in parsed else None
        raw = answer[:MAX_RAW_CHARS] if k not in parsed else None
        job.staging.add(
            CandidateRecord(
                ids[k], job.dataset, messages, origin.to_json(), verdict.to_json(), raw, now
            )
        )
        result.candidates.append(ids[k])
        result.parsed += k in parsed
        result.kept += verdict.kept
        result.flagged += bool(verdict.flags)
        if verdict.dropped:
            result.dropped[verdict.dropped] = result.dropped.get(verdict.dropped, 0) + 1
    result.dropped = {r: result.dropped[r] for r in DROP_REASONS if r in result.dropped}
    if failure is not None:
        raise failure


def _judge(judge: Answerer, items: list[tuple[Parsed, Verdict]]) -> None:
    """Grade each kept candidate in place (greedy, so a grade can be asked again alike)."""
    if not items:
        return
    settings = GenerationSettings(max_new_tokens=JUDGE_TOKENS, temperature=0.0)
    answers = judge([judge_prompt(p.messages) for p, _ in items], settings)
    for (_, verdict), answer in zip(items, answers):
        verdict.grade, verdict.judge_reason = read_grade(answer)
