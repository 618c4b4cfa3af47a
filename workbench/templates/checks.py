"""Checks for the template failures that train a model silently wrong.

Each check returns warnings that say what is wrong in one sentence, why it matters, and the fix:
the inference prompt is not a prefix of the training sequence, answers do not end with the token
generation stops on, a doubled BOS, rows that train nothing, turns the template does not write as
given (so they cannot train), a dropped system turn, and a pad token that is also EOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .preview import trim_to_length
from .spans import train_flag
from .stops import END_OF_TURN_TOKENS
from .stops import stop_token_ids as generation_stop_ids
from .template import (
    IGNORE_INDEX,
    Template,
    TemplateError,
    TokenizedExample,
    messages_of,
    tokenize_with_labels,
)

if TYPE_CHECKING:
    from ..data import InstructionDataset

Severity = Literal["warning", "info"]
CHECKED_ROWS = 32
EXAMPLE = {  # what the editor previews and checks while no dataset is loaded
    "messages": [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "5"},
        {"role": "user", "content": "And 4 + 4?"},
        {"role": "assistant", "content": "8"},
    ]
}


@dataclass(frozen=True)
class TemplateWarning:
    """One finding: `message` says what is wrong, `explanation` why it matters, `fix` what to do."""

    check: str
    message: str
    explanation: str
    fix: str
    rows: tuple[int, ...] = ()
    severity: Severity = "warning"


def stop_token_ids(tokenizer) -> set[int]:
    """The tokens generation stops on (generation's own rule), as a set for the checks."""
    return set(generation_stop_ids(tokenizer))


def rows_to_check(
    dataset: InstructionDataset | None, selected_row: int = 0, limit: int = CHECKED_ROWS
) -> tuple[list[dict], list[int]]:
    """The rows the template checks look at, and their row numbers: the first `limit` rows
    and the selected one (clamped to the last row). With no rows, the EXAMPLE as row 0."""
    if dataset is None or len(dataset) == 0:
        return [EXAMPLE], [0]
    selected = max(0, min(selected_row, len(dataset) - 1))
    numbers = sorted({*range(min(limit, len(dataset))), selected})
    return [dataset[i] for i in numbers], numbers


def check_template(
    template: Template,
    examples: list[dict | list],
    rows: list[int] | None = None,
    max_length: int | None = None,
) -> list[TemplateWarning]:
    """Every check over a sample of rows; `rows` are their row numbers, for the messages.
    With a max_length, each row is checked as far as training sees it (`trim_to_length`), so a
    10 MB row costs what a short one does."""
    if template.tokenizer is None:
        raise TemplateError("Bind a tokenizer first: template.with_tokenizer(tokenizer).")
    rows = list(rows) if rows is not None else list(range(len(examples)))
    conversations = [
        trim_to_length(template, messages_of(e), max_length).messages for e in examples
    ]
    tokenized, failures = _tokenize_each(template, conversations, None)
    found = [_render_failures(failures, rows)] if failures else []
    ok = [i for i in range(len(conversations)) if tokenized[i] is not None]
    sample = _Sample(
        template,
        [conversations[i] for i in ok],
        [tokenized[i] for i in ok],
        [rows[i] for i in ok],
    )
    truncated = sample.tokenized
    if max_length is not None:
        truncated = _tokenize_each(template, sample.conversations, max_length)[0]
    found += [
        *_check_prompt_prefix(sample),
        *_check_stop_token(sample),
        *_check_double_bos(sample),
        *_check_all_masked(sample, truncated, max_length),
        *_check_unlocated(sample),
        *_check_system_dropped(sample),
        *_check_pad_is_eos(sample),
    ]
    return sorted(found, key=lambda w: w.severity != "warning")


class _Sample:
    """The rows a check looks at, tokenised once, with the tokenizer's helpers."""

    def __init__(
        self, template: Template, conversations: list, tokenized: list, rows: list[int]
    ) -> None:
        self.template = template
        self.tokenizer = template.tokenizer
        self.conversations: list[list[dict]] = conversations
        self.tokenized: list[TokenizedExample] = tokenized
        self.rows = rows

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def _tokenize_each(template: Template, conversations: list, max_length: int | None):
    try:
        return tokenize_with_labels(template, conversations, max_length), []
    except TemplateError:
        pass
    out, failures = [], []
    for i, messages in enumerate(conversations):
        try:
            out.append(tokenize_with_labels(template, [messages], max_length)[0])
        except TemplateError as e:
            out.append(None)
            failures.append((i, e))
    return out, failures


def _render_failures(failures: list, rows: list[int]) -> TemplateWarning:
    first_row, first_error = rows[failures[0][0]], failures[0][1]
    return TemplateWarning(
        "render_error",
        f"The template fails on {len(failures)} row(s); row {first_row}: {first_error}",
        "Rows the template cannot render cannot be trained on; training would stop at the "
        "first of them.",
        "Fix the template line the error names, or edit or exclude those rows.",
        tuple(rows[i] for i, _ in failures),
    )


def _check_prompt_prefix(s: _Sample) -> list[TemplateWarning]:
    parted = []
    for row, messages, tok in zip(s.rows, s.conversations, s.tokenized):
        if len(messages) < 2 or messages[-1].get("role") != "assistant":
            continue
        try:
            prompt = s.encode(s.template.render_prompt(messages[:-1]))
        except TemplateError as e:
            return [_prompt_render_failure(row, e)]
        if tok.input_ids[: len(prompt)] != prompt:
            at = next(i for i, (a, b) in enumerate(zip(prompt, tok.input_ids + [None])) if a != b)
            parted.append((row, at, prompt, tok.input_ids))
    if not parted:
        return []
    row, at, prompt, trained = parted[0]
    return [
        TemplateWarning(
            "prompt_prefix",
            f"The inference prompt is not a prefix of the training sequence in {len(parted)} "
            f"row(s): in row {row} they part at token {at}, "
            f"{s.decode(prompt[at : at + 4])!r} at inference against "
            f"{s.decode(trained[at : at + 4])!r} in training.",
            "The model learns to continue one token sequence and is asked to continue another, "
            "so its answers start off the path it was trained on. Typical causes: a generation "
            "prompt that ends in a space or half a word, or one the template writes differently "
            "with add_generation_prompt.",
            "Make add_generation_prompt write exactly the text that starts an assistant turn in "
            "training, ending where a token ends (for example without a trailing space).",
            tuple(r for r, *_ in parted),
        )
    ]


def _prompt_render_failure(row: int, error: TemplateError) -> TemplateWarning:
    return TemplateWarning(
        "prompt_prefix",
        f"The generation prompt fails to render for row {row}: {error}",
        "Generation renders the conversation with add_generation_prompt=True; it would fail.",
        "Fix the template where it handles add_generation_prompt.",
        (row,),
    )


def _trained_runs(labels: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, label in enumerate([*labels, IGNORE_INDEX]):
        if label != IGNORE_INDEX and start is None:
            start = i
        elif label == IGNORE_INDEX and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _check_stop_token(s: _Sample) -> list[TemplateWarning]:
    stops = stop_token_ids(s.tokenizer)
    tokenized = s.tokenized
    if s.template.train_on == "all":  # every token trains: look at the assistant turns
        assistant = s.template.with_train_on("all_assistant")
        tokenized = tokenize_with_labels(assistant, s.conversations)
    bad = []
    for row, tok in zip(s.rows, tokenized):
        for start, end in _trained_runs(tok.labels):
            while end - 1 > start and not s.decode(tok.input_ids[end - 1 : end]).strip():
                end -= 1  # whitespace after the end token does not count
            if tok.input_ids[end - 1] not in stops:
                bad.append((row, s.decode(tok.input_ids[start:end]).rstrip()))
                break
    if not bad:
        return []
    names = ", ".join(repr(s.decode([i])) for i in sorted(stops))
    ending = bad[0][1]
    as_text = next((t for t in END_OF_TURN_TOKENS if ending.endswith(t)), None)
    why = (
        f" {as_text!r} is written as text, not as one token: this template was made for "
        "another model family."
        if as_text
        else ""
    )
    ending = ending if len(ending) <= 24 else "..." + ending[-24:]
    return [
        TemplateWarning(
            "stop_token",
            f"Trained answers do not end with a token generation stops on ({names}); "
            f"row {bad[0][0]} ends with {ending!r}.",
            "A model that never trains on its stop token never learns to stop: it runs on to "
            f"the length limit, often inventing the next turn.{why}",
            "Write the end-of-turn token right after message['content'] for assistant turns "
            '(e.g. {{ eos_token }}), or choose the "model" template.',
            tuple(r for r, _ in bad),
        )
    ]


def _check_double_bos(s: _Sample) -> list[TemplateWarning]:
    bos = s.tokenizer.bos_token_id
    if bos is None:
        return []
    doubled = [r for r, t in zip(s.rows, s.tokenized) if t.input_ids[:2] == [bos, bos]]
    if not doubled:
        return []
    return [
        TemplateWarning(
            "double_bos",
            f"{len(doubled)} row(s) start with two BOS tokens ({s.tokenizer.bos_token!r}).",
            "The model never saw a doubled BOS in pretraining; it shifts every position after "
            "it and degrades answers.",
            "Write {{ bos_token }} once, at the very start of the template, or not at all.",
            tuple(doubled),
        )
    ]


def _check_all_masked(
    s: _Sample, truncated: list[TokenizedExample], max_length: int | None
) -> list[TemplateWarning]:
    empty = [(r, t) for r, t in zip(s.rows, truncated) if t.num_trained == 0]
    if not empty:
        return []
    cut = [r for r, t in empty if t.truncated_trained]
    off = _rows_with_answers_flagged_off(s)
    flagged = [r for r, _ in empty if r in off]
    if cut:
        reason = f"max_length ({max_length} tokens) cuts off the answers of {len(cut)} of them"
    elif flagged:
        reason = f'{len(flagged)} of them have answers flagged not to train ("weight": 0 and alike)'
    else:
        reason = "they have no assistant answer the template writes"
    return [
        TemplateWarning(
            "all_masked",
            f"{len(empty)} of {len(truncated)} row(s) train nothing: every label is -100.",
            f"Such rows cost time and add no loss; {reason}.",
            "Give every row an assistant answer, raise max_length or shorten the rows, and make "
            "sure the template writes message['content'] for assistant turns.",
            tuple(r for r, _ in empty),
        )
    ]


def _rows_with_answers_flagged_off(s: _Sample) -> set[int]:
    return {
        row
        for row, messages in zip(s.rows, s.conversations)
        if any(train_flag(m, k) is False for k, m in enumerate(messages))
    }


def _check_unlocated(s: _Sample) -> list[TemplateWarning]:
    rows_of: dict[tuple[int, str], list[int]] = {}
    for row, messages, tok in zip(s.rows, s.conversations, s.tokenized):
        for k in tok.unlocated_turns:
            rows_of.setdefault((k, str(messages[k].get("role"))), []).append(row)
    if not rows_of:
        return []
    named = [
        f"message {k} ({role}) of row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}"
        for (k, role), rows in sorted(rows_of.items())
    ]
    listed = "; ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    one = len(named) == 1
    if s.template.train_on == "all":
        outcome = f"{'its' if one else 'their'} flag not to train cannot be applied"
    else:
        outcome = f"{'it does' if one else 'they do'} not train"
    return [
        TemplateWarning(
            "answer_not_found",
            f"M{listed[1:]} {'is' if one else 'are'} not written as given by this template, "
            f"so {outcome}.",
            "What trains is the text the template writes for each turn. This template drops, "
            "moves or rewrites these turns beyond recognition, so their text could not be found "
            "in the rendered conversation, and training a guessed span would train wrong tokens.",
            "Make the template write every answer's message['content'] (or mark answers with "
            "{% generation %} blocks), or train only the last answer (train_on="
            '"last_assistant"), or give those turns "train": false.',
            tuple(sorted({r for rows in rows_of.values() for r in rows})),
        )
    ]


def _check_system_dropped(s: _Sample) -> list[TemplateWarning]:
    dropped = []
    for row, messages in zip(s.rows, s.conversations):
        text = None
        for m in messages:
            content = m.get("content")
            if m.get("role") == "system" and isinstance(content, str) and content.strip():
                text = text if text is not None else s.template.render(messages)
                if content.strip() not in text:
                    dropped.append(row)
                    break
    if not dropped:
        return []
    return [
        TemplateWarning(
            "system_dropped",
            f"The template drops the system turn of {len(dropped)} row(s).",
            "Their system prompt is not in the text that trains, so the model never learns to "
            "follow it, and a system prompt at inference goes nowhere.",
            'Choose a template that writes system turns (chatml or "model"), or fold the '
            "system text into the first user turn in the template.",
            tuple(dropped),
        )
    ]


def _check_pad_is_eos(s: _Sample) -> list[TemplateWarning]:
    tok = s.tokenizer
    eos = tok.eos_token_id
    if eos is None or tok.pad_token_id != eos:
        return []
    trained = any(eos in t.labels for t in s.tokenized)
    if trained:
        return [
            TemplateWarning(
                "pad_is_eos",
                f"The pad token is the EOS token ({tok.eos_token!r}); EOS stays trained here.",
                "A collator that masks padding by token id would also mask every EOS, and the "
                "model would never learn to stop. The workbench takes labels from the template "
                "and masks padding by position, so EOS keeps its loss.",
                "Nothing to do in the workbench; elsewhere, mask padding by attention mask, not "
                "by token id.",
                severity="info",
            )
        ]
    return [
        TemplateWarning(
            "pad_is_eos",
            f"The pad token is the EOS token ({tok.eos_token!r}), and EOS is never trained.",
            "Padding uses the same token, so nothing teaches the model where an answer ends.",
            "End assistant turns with {{ eos_token }} in the template, or set a separate pad "
            "token on the tokenizer.",
        )
    ]
