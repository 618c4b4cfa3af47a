"""Prompt templates: render a conversation to text, and to the token ids and labels that train.

One function, `tokenize_with_labels`, produces the ids and labels that the template editor shows
and the training runner trains on, so what a person sees is exactly what is trained. Templates are
Jinja, in the format of Hugging Face chat templates, rendered in a sandbox (templates.jinja);
which characters train is decided in templates.spans, the checks live in templates.checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..persist import atomic_write_json, fields_from_json, read_json
from ..progress import progress, quiet_datasets
from .context import row_context
from .jinja import TemplateError, compile_template, render, serving_source, template_variables
from .presets import CHATML, PRESETS
from .spans import spans_batch, trained_spans
from .special_text import prompt_text, special_strings, spelled, tokenize_as_text

__all__ = [
    "CHATML",
    "IGNORE_INDEX",
    "MODEL_PRESET",
    "PRESETS",
    "TEMPLATE_FILE",
    "Template",
    "TemplateError",
    "TokenizedExample",
    "compile_template",
    "messages_of",
    "render",
    "tokenize_dataset",
    "tokenize_with_labels",
    "trained_spans",
    "validate_template",
]

TrainOn = Literal["all_assistant", "last_assistant", "all"]
TRAIN_ON: tuple[str, ...] = ("all_assistant", "last_assistant", "all")
IGNORE_INDEX = -100
MODEL_PRESET = "model"
TEMPLATE_FILE = "template.json"


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
        if self.train_on not in TRAIN_ON:
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

    def with_train_on(self, train_on: TrainOn) -> Template:
        """The same template training other turns (every assistant turn, the last, or all)."""
        return dataclasses.replace(self, train_on=train_on)

    @property
    def serving_jinja(self) -> str:
        """The Jinja an export carries: `jinja` with the training-only `{% generation %}` marks
        made plain blocks (jinja.serving_source), so every server's Jinja reads it."""
        return serving_source(self.jinja)

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
        """The text of a conversation (a row with "messages", or the messages themselves); a
        row's `tools` and `documents` reach the template as apply_chat_template passes them."""
        variables = {**template_variables(self.tokenizer), **row_context(example)}
        return render(self.jinja, messages_of(example), add_generation_prompt, variables=variables)

    def render_prompt(self, messages: list[dict] | dict) -> str:
        """The text a model continues from to answer after `messages` (or a row's messages,
        with its tools and documents). Messages that spell a special token give a PromptText
        that says which special tokens are the template's (templates.special_text)."""
        variables = {**template_variables(self.tokenizer), **row_context(messages)}
        text = render(self.jinja, messages_of(messages), True, variables=variables)
        if self.tokenizer is None:
            return text
        return prompt_text(self.tokenizer, self.jinja, messages_of(messages), text, variables)

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
    def from_json(cls, data: dict[str, Any], *, source: str = "template.json") -> Template:
        """The template `to_json` stored (without a tokenizer: bind one to tokenize).

        Raises ValueError naming `source` for a key other than source, name and train_on.
        """
        values = fields_from_json(cls, data, source=source)
        return cls(
            values.get("source"),
            values.get("name", "custom"),
            values.get("train_on", "all_assistant"),
        )

    def save(self, folder: str | os.PathLike) -> Path:
        """Write template.json into a run or adapter folder, atomically, with the Jinja in full.

        A "model" template is stored resolved, so generation uses the text that trained even if
        the tokenizer's own template changes later; bind the tokenizer before saving it.
        """
        data = self.to_json()
        if data["source"] is None:
            raise TemplateError(
                'Bind the tokenizer before saving the "model" template, so its Jinja is stored.'
            )
        path = Path(folder) / TEMPLATE_FILE
        atomic_write_json(path, data)
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Template:
        """The template a run or adapter folder stored with `save`."""
        path = Path(folder) / TEMPLATE_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: this folder was not saved with its template; "
                "choose the template by hand with session.set_template(...)."
            )
        return cls.from_json(read_json(path))


@dataclass
class TokenizedExample:
    """Token ids and labels of one conversation; labels hold -100 where the loss is masked."""

    input_ids: list[int]
    labels: list[int]
    truncated_trained: int = 0  # trained tokens cut off by max_length
    # messages that should train (train_on="all": be masked) but that the template does not
    # write as given, so that could not be done (see templates.spans; check "answer_not_found")
    unlocated_turns: tuple[int, ...] = ()

    @property
    def num_trained(self) -> int:
        """How many tokens carry a loss."""
        return sum(label != IGNORE_INDEX for label in self.labels)

    def to_dict(self) -> dict[str, list[int]]:
        """The columns a trainer reads."""
        return {"input_ids": self.input_ids, "labels": self.labels}


def messages_of(example: dict | list) -> list[dict]:
    """The messages of a row (a dict with "messages") or of a list of messages itself."""
    if isinstance(example, dict):
        example = example.get("messages")
    if not isinstance(example, list) or not all(isinstance(m, dict) for m in example):
        raise TypeError('Expected a row with "messages" or a list of {"role", "content"} dicts.')
    return example


PROBE_ANSWER = "The probe answer is 42."


def validate_template(template: Template) -> None:
    """Raise TemplateError unless the template renders a conversation and writes its answer.

    Catches what a person must fix before training: Jinja that fails, renders nothing, or never
    writes the assistant's text (so nothing would train).
    """
    probe = [
        {"role": "user", "content": "A question?"},
        {"role": "assistant", "content": PROBE_ANSWER},
    ]
    text = template.render(probe)
    template.render_prompt(probe[:1])
    if not text.strip():
        raise TemplateError("The template renders an empty string; it needs to write the messages.")
    if PROBE_ANSWER not in text:
        raise TemplateError(
            "The template never writes the assistant's answer, so nothing would train; "
            "write message['content'] for assistant turns."
        )


def tokenize_with_labels(
    template: Template, examples: list[dict | list], max_length: int | None = None
) -> list[TokenizedExample]:
    """Token ids and labels for a batch of conversations, with one fast-tokenizer call.

    This is the only function that tokenises training data: the template editor shows its
    output and the training runner trains on it. A message's training flag ("train",
    "training", "loss", "weight") overrides train_on for that message.
    """
    tokenizer = template.tokenizer
    if tokenizer is None:
        raise TemplateError("Bind a tokenizer first: template.with_tokenizer(tokenizer).")
    conversations = [messages_of(e) for e in examples]
    if not conversations:
        return []
    variables = template_variables(tokenizer)
    contexts = [row_context(e) for e in examples]
    rendered = spans_batch(template.jinja, conversations, template.train_on, variables, contexts)
    texts = [r.text for r in rendered]
    ids_per_row, token_spans = _token_spans(tokenizer, texts, [r.spans for r in rendered])
    strings = special_strings(tokenizer) if getattr(tokenizer, "is_fast", False) else ()
    for k, conversation in enumerate(conversations):
        if strings and spelled(conversation, strings):
            row_variables = {**variables, **contexts[k]}
            found = tokenize_as_text(
                tokenizer, template.jinja, conversation, rendered[k], row_variables, strings
            )
            ids_per_row[k], token_spans[k] = found or (ids_per_row[k], token_spans[k])
    out = []
    for ids, spans, found in zip(ids_per_row, token_spans, rendered):
        labels = [IGNORE_INDEX] * len(ids)
        for first, stop in spans:
            labels[first:stop] = ids[first:stop]
        cut = 0
        if max_length is not None and len(ids) > max_length:
            cut = sum(label != IGNORE_INDEX for label in labels[max_length:])
            ids, labels = ids[:max_length], labels[:max_length]
        out.append(TokenizedExample(list(ids), labels, cut, found.unlocated))
    return out


def _token_spans(
    tokenizer, texts: list[str], char_spans: list[list[tuple[int, int]]]
) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids of each text, and each character span as the tokens that overlap it."""
    encoded = tokenizer(
        texts, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False
    )
    ids_per_row = encoded["input_ids"]
    encodings = getattr(encoded, "encodings", None)
    if not encodings:
        return ids_per_row, [
            [t for t in (_tokens_by_prefix(tokenizer, text, ids, s) for s in spans) if t[1] > t[0]]
            for text, ids, spans in zip(texts, ids_per_row, char_spans)
        ]
    token_spans = []
    for encoding, spans in zip(encodings, char_spans):
        found = []
        for start, end in spans:
            first = _token_at(encoding, range(start, end))
            last = _token_at(encoding, range(end - 1, start - 1, -1))
            if first is not None and last is not None and last >= first:
                found.append((first, last + 1))
        token_spans.append(found)
    return ids_per_row, token_spans


def _token_at(encoding, chars: range) -> int | None:
    for char in chars:  # usually the first: only characters no token covers are skipped
        token = encoding.char_to_token(char)
        if token is not None:
            return token
    return None


def _tokens_by_prefix(tokenizer, text: str, ids: list[int], span: tuple[int, int]):
    # Slow (Python) tokenizers give no offsets: count the tokens of the text before each end.
    def tokens_before(char: int) -> tuple[int, bool]:
        head = tokenizer(text[:char], add_special_tokens=False)["input_ids"]
        common = 0
        for a, b in zip(head, ids):
            if a != b:
                break
            common += 1
        return common, common == len(head)

    first, _ = tokens_before(span[0])
    stop, whole = tokens_before(span[1])
    return first, min(len(ids), stop if whole else stop + 1)


LABELS_VERSION = 2  # bump when the labelling changes, so cached tokenisations are rebuilt
BATCH_ROWS = 1000


def tokenize_dataset(
    template: Template,
    rows: Iterable[dict | list],
    cache_dir: str | os.PathLike,
    dataset_fingerprint: str,
    max_length: int | None = None,
):
    """Every row's input_ids and labels as a datasets.Dataset, cached on disk.

    The cache is keyed by the dataset's fingerprint, the template's fingerprint (Jinja, train_on,
    tokenizer) and max_length, so a second run with the same three loads in well under a second.
    Tokenising shows its progress (workbench.progress); it is `tokenize_with_labels` in batches.
    """
    import datasets

    key = f"{dataset_fingerprint}\0{template.fingerprint}\0{max_length}\0{LABELS_VERSION}"
    folder = Path(cache_dir) / f"tokenized-{hashlib.sha1(key.encode()).hexdigest()[:20]}"
    if (folder / "dataset_info.json").is_file():
        return datasets.load_from_disk(str(folder))
    input_ids, labels = _tokenize_all(template, rows, max_length)
    table = _as_table(input_ids, labels)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with quiet_datasets():
            datasets.Dataset(table).save_to_disk(str(staging))
        try:
            staging.rename(folder)
        except OSError:  # another process cached it first; its copy is as good as ours
            if not (folder / "dataset_info.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return datasets.load_from_disk(str(folder))


def _tokenize_all(template: Template, rows: Iterable[dict | list], max_length: int | None):
    total = len(rows) if isinstance(rows, Sized) else None
    input_ids: list[list[int]] = []
    labels: list[list[int]] = []
    with progress(total, "Tokenizing") as advance:
        for batch in _batches(rows, BATCH_ROWS):
            for example in tokenize_with_labels(template, batch, max_length):
                input_ids.append(example.input_ids)
                labels.append(example.labels)
            advance(len(batch))
    return input_ids, labels


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _as_table(input_ids: list[list[int]], labels: list[list[int]]):
    import pyarrow as pa

    column = pa.list_(pa.int32())
    return pa.table(
        {"input_ids": pa.array(input_ids, type=column), "labels": pa.array(labels, type=column)}
    )
