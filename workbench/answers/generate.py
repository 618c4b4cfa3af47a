"""Generation: contestants (a base model and adapters on it) answering with shared settings.

One base model is loaded per Generator and serves every adapter as a PEFT named adapter
(load_adapter, set_adapter, disable_adapter): memory is the base plus the small adapters, never a
copy per contestant. A second base model may join as its own contestant. Prompts are batched with
left padding; tokens stream to a callback as they are made, and a threading.Event stops them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import models
from ..persist import fields_from_json
from ..settings import documented, setting
from ..templates.stops import END_OF_TURN_TOKENS, stop_token_ids
from ..templates.template import Template
from .model_host import Continuation, ModelHost, TextCallback

__all__ = [
    "BASE",
    "END_OF_TURN_TOKENS",
    "Contestant",
    "GenerationSettings",
    "Generator",
    "TextCallback",
    "as_messages",
    "stop_token_ids",
]

BASE = "base"


SAMPLING: dict[str, tuple[str, dict[str, Any]]] = {
    "max_new_tokens": ("Most tokens each answer may have.", {"min": 1, "max": 4096}),
    "temperature": (
        "0: greedy and reproducible; higher: more varied answers.",
        {"min": 0.0, "max": 5.0, "step": 0.1},
    ),
    "top_p": (
        "Sample only from the most likely tokens whose probabilities add up to this, in (0, 1].",
        {"min": 0.01, "max": 1.0, "step": 0.05},
    ),
    "top_k": (
        "Sample only from the k most likely tokens (0: no limit). Also the cheap way to sample "
        "on a CPU: top-p alone sorts the whole vocabulary every token.",
        {"min": 0, "max": 1000},
    ),
}
"""The sampling settings every config that samples shares: help and bounds, written once."""


def sampling_setting(name: str, default: Any) -> Any:
    """The field of sampling setting `name` (a key of SAMPLING) with this config's default."""
    help, bounds = SAMPLING[name]
    return setting(default, help, **bounds)


@documented
@dataclass(frozen=True)
class GenerationSettings:
    """Settings every contestant shares; temperature 0 means greedy (reproducible).

    Each field's help and bounds are field metadata, from which the comparator's form is built.
    """

    max_new_tokens: int = sampling_setting("max_new_tokens", 256)
    temperature: float = sampling_setting("temperature", 0.0)
    top_p: float = sampling_setting("top_p", 1.0)
    top_k: int = sampling_setting("top_k", 0)
    repetition_penalty: float = setting(
        1.0,
        "Above 1 discourages repeating tokens; 1 leaves them as they are.",
        min=0.5,
        max=3.0,
        step=0.05,
    )
    seed: int = setting(0, "Seed of sampling (temperature above 0).")
    system_prompt: str | None = setting(
        None, "A system message put before every prompt that has none.", rows=2
    )

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1; got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more; got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1]; got {self.top_p}.")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be 0 (no limit) or more; got {self.top_k!r}.")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be above 0; got {self.repetition_penalty}.")

    @property
    def greedy(self) -> bool:
        """Whether answers are greedy (temperature 0), hence reproducible and cacheable."""
        return self.temperature == 0

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (`from_json` reads it back)."""
        return asdict(self)

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, source: str = "generation settings"
    ) -> GenerationSettings:
        """Settings from `to_json` output or keyword arguments; an unknown name raises TypeError
        (as an unknown keyword argument does), naming it and the known ones."""
        try:
            values = fields_from_json(cls, data, source=source)
        except ValueError as e:
            raise TypeError(str(e)) from e
        return cls(**values)


def as_messages(prompt: str | list[dict], system_prompt: str | None = None) -> list[dict]:
    """A prompt as chat messages, with the system prompt first when one is set and none is given."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system_prompt and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


@dataclass(frozen=True)
class Contestant:
    """One answerer: a loaded base model (`host`), maybe an adapter on it, and its template.

    `template` is None for an adapter that stored none: it then answers with its host's.
    """

    name: str
    host: str
    spec: models.ModelSpec
    template: Template | None
    adapter: Path | None = None
    adapter_sha256: str | None = None
    weights_stamp: tuple[int, int] | None = field(default=None, compare=False)
    slot: str | None = None  # the adapter's name inside PEFT; None for a bare base model


class Generator:
    """The contestants of a comparison: "base", the adapters on it, and any added base models.

    Each base model is loaded once; its adapters are PEFT named adapters on that one instance.
    """

    def __init__(self, spec: models.ModelSpec, template: Template, *, tokenizer=None, model=None):
        self.spec = spec
        tokenizer = tokenizer if tokenizer is not None else models.load_tokenizer(spec)
        model = model if model is not None else models.load_model(spec)
        model.eval()
        self._hosts = {BASE: ModelHost(spec, tokenizer, model)}
        bound = template.with_tokenizer(tokenizer)
        self._contestants = {BASE: Contestant(BASE, BASE, spec, bound)}
        self._slots = 0

    @property
    def tokenizer(self):
        """The tokenizer of the session's base model."""
        return self._hosts[BASE].tokenizer

    @property
    def model(self):
        """The base model instance that every adapter of "base" runs on."""
        return self._hosts[BASE].model

    @property
    def base_host(self) -> ModelHost:
        """The host of "base": its one model instance, with every adapter trained on it."""
        return self._hosts[BASE]

    def set_base_template(self, template: Template) -> None:
        """Answer as "base" (and with adapters that stored no template) with `template`."""
        bound = template.with_tokenizer(self.tokenizer)
        if self._contestants[BASE].template != bound:
            self._contestants[BASE] = Contestant(BASE, BASE, self.spec, bound)

    @property
    def contestants(self) -> dict[str, Contestant]:
        """Every contestant by name, "base" first."""
        return dict(self._contestants)

    def contestant(self, name: str) -> Contestant:
        """The contestant called `name`; a KeyError lists the known ones."""
        if name not in self._contestants:
            known = ", ".join(self._contestants)
            raise KeyError(f"No contestant named {name!r}; this generator serves: {known}.")
        return self._contestants[name]

    def template_of(self, name: str) -> Template:
        """The template `name` answers with: its adapter's own, else its base model's."""
        contestant = self.contestant(name)
        return contestant.template or self._contestants[contestant.host].template

    def add_adapter(self, name: str, folder: str | Path, on: str = BASE) -> Contestant:
        """Attach the adapter in `folder` to base model `on` as contestant `name`.

        The folder is checked first (adapter_files.check_adapter); a changed adapter file
        (a resumed run) is reloaded, an unchanged one is kept.
        """
        from .adapters import WEIGHTS_FILE, check_adapter

        folder = Path(folder)
        stamp = _stamp(folder / WEIGHTS_FILE)
        old = self._contestants.get(name)
        if old is not None and old.adapter is None:
            raise ValueError(f"{name!r} is a base model contestant; give the adapter another name.")
        if old is not None and old.adapter == folder and old.weights_stamp == stamp:
            return old
        host_name = self.contestant(on).host
        host = self._hosts[host_name]
        files = check_adapter(folder, host.spec, host.model)
        if old is not None:
            self.remove(name)
        self._slots += 1
        slot = f"adapter_{self._slots}"  # PEFT adapter names cannot hold dots; run names can
        host.attach(slot, folder)
        template = files.template.with_tokenizer(host.tokenizer) if files.template else None
        contestant = Contestant(
            name, host_name, host.spec, template, folder, files.sha256, stamp, slot
        )
        self._contestants[name] = contestant
        return contestant

    def add_base(
        self, name: str, spec: models.ModelSpec, template: Template | None = None
    ) -> Contestant:
        """Load a second base model as contestant `name` (its own memory; adapters may join it)."""
        if name in self._contestants:
            raise ValueError(f"A contestant named {name!r} exists already; choose another name.")
        tokenizer = models.load_tokenizer(spec)
        model = models.load_model(spec)
        model.eval()
        self._hosts[name] = ModelHost(spec, tokenizer, model)
        bound = (template or Template.preset("model")).with_tokenizer(tokenizer)
        self._contestants[name] = Contestant(name, name, spec, bound)
        return self._contestants[name]

    def remove(self, name: str) -> None:
        """Take a contestant out: an adapter leaves its base model; a base model leaves memory."""
        contestant = self.contestant(name)
        if name == BASE:
            raise ValueError('"base" is the session\'s model and always takes part.')
        if contestant.adapter is not None:
            self._hosts[contestant.host].detach(contestant.slot)
        else:
            for other in [
                c for c in self._contestants.values() if c.host == name and c is not contestant
            ]:
                self.remove(other.name)
            del self._hosts[name]
        del self._contestants[name]

    def describe(self, name: str) -> dict[str, Any]:
        """What a report shows of a contestant: base model, adapter and template with hashes."""
        contestant = self.contestant(name)
        template = self.template_of(name)
        return {
            "name": name,
            "base_model": contestant.spec.display_name,
            "adapter": str(contestant.adapter) if contestant.adapter else None,
            "adapter_sha256": contestant.adapter_sha256,
            "template": template.name,
            "template_sha": template.fingerprint,
        }

    def fingerprint(self, name: str) -> str:
        """A hash of everything that decides `name`'s answers but the prompt and the settings."""
        spec = self.contestant(name).spec
        key = json.dumps([self.describe(name), spec.to_json(), _weights_stamp(spec)])
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def render(
        self, name: str, prompt: str | list[dict] | dict, settings: GenerationSettings
    ) -> str:
        """The text contestant `name` continues from to answer `prompt` (a row with "messages"
        gives the template its tools and documents too)."""
        if isinstance(prompt, dict):
            row = {**prompt, "messages": as_messages(prompt["messages"], settings.system_prompt)}
            return self.template_of(name).render_prompt(row)
        return self.template_of(name).render_prompt(as_messages(prompt, settings.system_prompt))

    def stop_token_ids(self) -> list[int]:
        """The tokens that end an answer of "base"."""
        return list(self._hosts[BASE].stop_ids)

    def generate(
        self,
        prompt: str | list[dict],
        model: str,
        settings: GenerationSettings,
        on_text: TextCallback | None = None,
        stop: threading.Event | None = None,
    ) -> str:
        """One answer from one contestant."""
        return self.generate_batch([prompt], model, settings, on_text, stop)[0]

    def generate_batch(
        self,
        prompts: list[str | list[dict]],
        model: str,
        settings: GenerationSettings,
        on_text: TextCallback | None = None,
        stop: threading.Event | None = None,
        done: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Answers of one contestant to several prompts, generated together with left padding;
        `done(text)` ends a row early once its answer so far is whole (model_host.StopWhenDone)."""
        contestant = self.contestant(model)
        texts = [self.render(model, p, settings) for p in prompts]
        slots = [contestant.slot] * len(texts)
        return self._hosts[contestant.host].run(texts, slots, settings, on_text, stop, done)

    def complete_batch(
        self,
        documents: list[str],
        model: str,
        settings: GenerationSettings,
        stop: threading.Event | None = None,
        done: Callable[[str], bool] | None = None,
    ) -> list[Continuation]:
        """Continuations of plain documents by one contestant, no chat template: a few-shot
        document, as Self-Instruct asked GPT-3 for new tasks. `done` as in generate_batch;
        each says whether it ran out of tokens before it ended."""
        contestant = self.contestant(model)
        host = self._hosts[contestant.host]
        texts = [host.document_start + d for d in documents]
        return host.complete(texts, contestant.slot, settings, stop, done)

    def answer_each(
        self,
        jobs: list[tuple[str, str | list[dict]]],
        settings: GenerationSettings,
        on_text: TextCallback | None = None,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """Answers to (contestant, prompt) pairs, e.g. each contestant's own conversation.

        Greedy: the contestants of one base model answer in one mixed-adapter batch, so they
        stream side by side. Sampling: one call each, seeded alike, so a contestant's answer
        does not depend on who else answers.
        """
        answers = [""] * len(jobs)
        by_host: dict[str, list[int]] = {}
        for i, (name, _) in enumerate(jobs):
            by_host.setdefault(self.contestant(name).host, []).append(i)
        for host, indices in by_host.items():
            for chunk in [indices] if settings.greedy else [[i] for i in indices]:
                if stop is not None and stop.is_set():
                    return answers
                texts = [self.render(jobs[i][0], jobs[i][1], settings) for i in chunk]
                slots = [self.contestant(jobs[i][0]).slot for i in chunk]
                relay = None if on_text is None else _relay(on_text, chunk)
                for i, answer in zip(
                    chunk, self._hosts[host].run(texts, slots, settings, relay, stop)
                ):
                    answers[i] = answer
        return answers


def _relay(on_text: TextCallback, indices: list[int]) -> TextCallback:
    return lambda k, text: on_text(indices[k], text)


def _weights_stamp(spec: models.ModelSpec) -> list:
    """Names, sizes and times of a local model's weight files: a changed file changes the key."""
    folder = Path(models.resolve(spec))
    if not folder.is_dir():
        return []
    return sorted([p.name, *_stamp(p)] for p in folder.glob("*.safetensors"))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
