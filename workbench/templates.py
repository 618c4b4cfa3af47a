"""Prompt templates: render a conversation to text, and to the token ids and labels that train.

One function, `tokenize_with_labels`, produces the ids and labels that the template editor shows
and the training runner trains on, so what a person sees is exactly what is trained. Templates are
Jinja, in the format of Hugging Face chat templates, rendered in a sandbox.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

TrainOn = Literal["all_assistant", "last_assistant", "all"]
IGNORE_INDEX = -100

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

PRESETS: dict[str, str] = {"chatml": CHATML}
MODEL_PRESET = "model"


class TemplateError(ValueError):
    """A template does not parse or fails to render; the message names the line."""


@dataclass(frozen=True)
class Template:
    """A chat template: a name, its Jinja source and which turns train.

    `Template.preset("chatml")`, `Template.preset("model")` (the tokenizer's own) or
    `Template(source)` for custom Jinja. Bind a tokenizer with `with_tokenizer` to tokenize.
    """

    source: str | None = None
    name: str = "custom"
    train_on: TrainOn = "all_assistant"
    tokenizer: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.train_on not in ("all_assistant", "last_assistant", "all"):
            raise ValueError(
                f"train_on must be 'all_assistant', 'last_assistant' or 'all'; got {self.train_on!r}."
            )
        if self.source is None and self.name != MODEL_PRESET:
            raise ValueError("A custom Template needs its Jinja source.")
        if self.source is not None:
            compile_template(self.source)

    @classmethod
    def preset(cls, name: str, train_on: TrainOn = "all_assistant") -> Template:
        """A named preset, or "model" for the tokenizer's own chat template."""
        if name == MODEL_PRESET:
            return cls(None, MODEL_PRESET, train_on)
        if name not in PRESETS:
            known = ", ".join([MODEL_PRESET, *PRESETS])
            raise ValueError(f"Unknown template preset {name!r}; choose one of: {known}.")
        return cls(PRESETS[name], name, train_on)

    def with_tokenizer(self, tokenizer) -> Template:
        """This template bound to a tokenizer (whose chat template "model" uses)."""
        return dataclasses.replace(self, tokenizer=tokenizer)

    @property
    def jinja(self) -> str:
        """The Jinja source that renders, resolving "model" through the bound tokenizer."""
        if self.source is not None:
            return self.source
        if self.tokenizer is None:
            raise TemplateError('The "model" template needs a tokenizer: call with_tokenizer().')
        if not getattr(self.tokenizer, "chat_template", None):
            raise TemplateError(
                "This tokenizer has no chat template; choose a preset such as 'chatml'."
            )
        return self.tokenizer.chat_template

    def render(self, example: dict | list, add_generation_prompt: bool = False) -> str:
        """The text of a conversation (a row with "messages", or the messages themselves)."""
        return render(self.jinja, _messages(example), add_generation_prompt, self.tokenizer)

    def render_prompt(self, messages: list[dict]) -> str:
        """The text a model continues from to answer after `messages`."""
        return self.render(messages, add_generation_prompt=True)

    def tokenize(self, example: dict | list, max_length: int | None = None) -> TokenizedExample:
        """Token ids and labels for one conversation (labels are -100 where nothing trains)."""
        return tokenize_with_labels(self, [example], max_length=max_length)[0]

    @property
    def fingerprint(self) -> str:
        """A short hash of what decides the tokens: Jinja, train_on and the tokenizer; keys caches."""
        tok = self.tokenizer
        tok_id = f"{getattr(tok, 'name_or_path', '')}:{len(tok) if tok is not None else 0}"
        key = f"{self.jinja}\0{self.train_on}\0{tok_id}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The template as stored in session.json, run folders and adapters (resolved Jinja)."""
        source = self.source
        if source is None and self.tokenizer is not None:
            source = self.jinja
        return {"name": self.name, "source": source, "train_on": self.train_on}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Template:
        return cls(
            data.get("source"), data.get("name", "custom"), data.get("train_on", "all_assistant")
        )


@dataclass
class TokenizedExample:
    """Token ids and labels of one conversation; labels hold -100 where the loss is masked."""

    input_ids: list[int]
    labels: list[int]
    truncated_trained: int = 0  # trained tokens cut off by max_length

    @property
    def num_trained(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)

    def to_dict(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "labels": self.labels}


_ENV: ImmutableSandboxedEnvironment | None = None


def _environment() -> ImmutableSandboxedEnvironment:
    global _ENV
    if _ENV is None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise jinja2.TemplateError(message)

        env.globals["raise_exception"] = raise_exception
        env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}
        _ENV = env
    return _ENV


_COMPILED: dict[str, jinja2.Template] = {}


def compile_template(source: str) -> jinja2.Template:
    """Parse Jinja in the sandbox; a syntax error becomes a TemplateError naming the line."""
    compiled = _COMPILED.get(source)
    if compiled is None:
        try:
            compiled = _environment().from_string(source)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"Template syntax error on line {e.lineno}: {e.message}") from e
        _COMPILED[source] = compiled
    return compiled


def render(source: str, messages: list[dict], add_generation_prompt: bool, tokenizer=None) -> str:
    """Render Jinja with the variables Hugging Face chat templates expect."""
    special = {}
    if tokenizer is not None:
        special = {"bos_token": tokenizer.bos_token or "", "eos_token": tokenizer.eos_token or ""}
    try:
        return compile_template(source).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **special
        )
    except jinja2.exceptions.SecurityError as e:
        raise TemplateError(f"The template tried something the sandbox forbids: {e}") from e
    except jinja2.TemplateError as e:
        raise TemplateError(f"The template failed to render{_line_of(e)}: {e}") from e
    except Exception as e:  # user Jinja can raise anything (TypeError on bad content, ...)
        raise TemplateError(f"The template failed to render{_line_of(e)}: {e!r}") from e


def _line_of(error: Exception) -> str:
    tb = error.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" on line {line}" if line else ""


def _messages(example: dict | list) -> list[dict]:
    if isinstance(example, dict):
        example = example.get("messages")
    if not isinstance(example, list):
        raise TypeError('Expected a row with "messages" or a list of {"role", "content"} dicts.')
    return example


def trained_spans(template: Template, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans that train (assistant answers and end tokens).

    An assistant span starts where the generation prompt for that turn ends and stops at the end
    of the turn's text, trailing whitespace excluded, so the end-of-turn token is trained.
    """
    source, tok = template.jinja, template.tokenizer
    text = render(source, messages, False, tok)
    if template.train_on == "all":
        return text, [(0, len(text))]
    spans = []
    cursor = 0
    for k, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = render(source, messages[:k], True, tok)
        upto = render(source, messages[: k + 1], False, tok)
        if text.startswith(prompt) and text.startswith(upto) and len(upto) > len(prompt):
            start, end = len(prompt), len(upto.rstrip())
        else:  # a template whose prefixes are not prefixes of the whole: find the answer text
            start = text.find(message.get("content") or "", cursor)
            if start < 0:
                continue
            end = start + len(message.get("content") or "")
        spans.append((start, end))
        cursor = end
    if template.train_on == "last_assistant":
        spans = spans[-1:]
    return text, spans


def tokenize_with_labels(
    template: Template, examples: list[dict | list], max_length: int | None = None
) -> list[TokenizedExample]:
    """Token ids and labels for a batch of conversations, with one fast-tokenizer call.

    This is the only function that tokenises training data: the template editor shows its
    output and the training runner trains on it.
    """
    if template.tokenizer is None:
        raise TemplateError("Bind a tokenizer first: template.with_tokenizer(tokenizer).")
    rendered = [trained_spans(template, _messages(e)) for e in examples]
    encoded = template.tokenizer(
        [text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True
    )
    out = []
    for (_, spans), ids, offsets in zip(rendered, encoded["input_ids"], encoded["offset_mapping"]):
        labels = [
            tid if any(s < end and e > start for start, end in spans) else IGNORE_INDEX
            for tid, (s, e) in zip(ids, offsets)
        ]
        cut = 0
        if max_length is not None and len(ids) > max_length:
            cut = sum(label != IGNORE_INDEX for label in labels[max_length:])
            ids, labels = ids[:max_length], labels[:max_length]
        out.append(TokenizedExample(list(ids), labels, cut))
    return out
