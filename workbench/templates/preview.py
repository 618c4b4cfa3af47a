"""What one conversation trains on, token by token: the data the template editor draws.

The ids and labels come from `tokenize_with_labels`, the function training uses, so the preview
is exactly what trains; only the text of each token is looked up here, for display.

Training keeps the first max_length tokens, so the preview (and the checks) render and tokenise
only that much plus a margin: `trim_to_length` cuts each message too long to matter to a head
that certainly holds more than max_length tokens (counted by the tokenizer), so the kept ids and
labels are those training gets, and a 10 MB row previews as fast as a short one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .jinja import tested_strings
from .template import IGNORE_INDEX, Template, messages_of, tokenize_with_labels

MARGIN_TOKENS = 64  # tokens a cut message's head holds beyond max_length
FIRST_CHARS_PER_TOKEN = 4  # the first guess of a head's size; it doubles until it holds enough
TAIL_CHARS = 256  # a cut message keeps its end too, for templates that test how content ends


@dataclass(frozen=True)
class TokenView:
    """One token: its id, the text it covers, whether it trains and whether it is special."""

    id: int
    text: str
    trained: bool
    special: bool


@dataclass(frozen=True)
class TemplatePreview:
    """A rendered conversation and its tokens, with the counts the editor shows.

    `unlocated_turns`: messages that should train (or be masked) but that the template does not
    write as given, so that could not be done (TokenizedExample.unlocated_turns). `left_out`:
    characters of messages too long to matter that were not rendered (see `trim_to_length`);
    where there are any, `truncated_trained` counts only the trained tokens of what was rendered.
    """

    text: str
    tokens: list[TokenView]
    truncated_trained: int = 0
    unlocated_turns: tuple[int, ...] = ()
    left_out: dict[int, int] = field(default_factory=dict)  # message -> characters not rendered

    @property
    def num_trained(self) -> int:
        """Tokens that carry a loss."""
        return sum(t.trained for t in self.tokens)

    @property
    def num_tokens(self) -> int:
        """Tokens in the training sequence (after max_length)."""
        return len(self.tokens)

    def segments(self) -> list[tuple[str, bool]]:
        """The text as (piece, trained) runs, split where training starts or stops."""
        out: list[tuple[str, bool]] = []
        for token in self.tokens:
            if out and out[-1][1] == token.trained:
                out[-1] = (out[-1][0] + token.text, token.trained)
            else:
                out.append((token.text, token.trained))
        return out


@dataclass(frozen=True)
class Trimmed:
    """Messages cut to what training can see; `left_out` maps a cut message to the characters
    of it that were left out."""

    messages: list[dict]
    left_out: dict[int, int] = field(default_factory=dict)


def trim_to_length(template: Template, messages: list[dict], max_length: int | None) -> Trimmed:
    """`messages` with each content too long to matter cut to a head and its last TAIL_CHARS.

    A head holds at least max_length + MARGIN_TOKENS tokens by the tokenizer's own count, so it
    ends past the last token training keeps wherever the template writes it, and the kept ids
    and labels are those of the whole row. A content is left whole where the part cut out holds
    a string the template tests for (`'</think>' in content`), which could change what renders
    before it. max_length None keeps every message whole.
    """
    if max_length is None or template.tokenizer is None:
        return Trimmed(list(messages))
    need = max_length + MARGIN_TOKENS
    tested = tested_strings(template.jinja)
    out, left_out = [], {}
    for k, message in enumerate(messages):
        content = message.get("content")
        head = _head_size(template.tokenizer, content, need) if isinstance(content, str) else None
        if head is not None:
            cut = content[:head] + content[-TAIL_CHARS:]
            if all(content.count(s) == cut.count(s) for s in tested):
                message = {**message, "content": cut}
                left_out[k] = len(content) - len(cut)
        out.append(message)
    return Trimmed(out, left_out)


def _head_size(tokenizer, content: str, need: int) -> int | None:
    """The length of a head of `content` that holds at least `need` tokens, or None when the
    content is not that much longer than such a head (nothing worth cutting)."""
    size = need * FIRST_CHARS_PER_TOKEN
    while size + TAIL_CHARS < len(content):
        if len(tokenizer(content[:size], add_special_tokens=False)["input_ids"]) >= need:
            return size
        size *= 2
    return None


def preview(
    template: Template, example: dict | list, max_length: int | None = None
) -> TemplatePreview:
    """The preview of one row (or list of messages) under a template bound to a tokenizer.

    Turns flagged not to train ("weight": 0, "loss"/"train": false) show as masked. With a
    max_length, messages too long to matter are cut first (`trim_to_length`): the tokens shown
    are still exactly the first max_length that train, and `left_out` says what was cut.
    """
    trimmed = trim_to_length(template, messages_of(example), max_length)
    row = (
        {**example, "messages": trimmed.messages} if isinstance(example, dict) else trimmed.messages
    )
    tokenized = tokenize_with_labels(template, [row], max_length)[0]
    text = template.render(row)
    pieces = _token_texts(template.tokenizer, text, tokenized.input_ids)
    special = _special_ids(template.tokenizer)
    tokens = [
        TokenView(i, piece, label != IGNORE_INDEX, i in special)
        for i, label, piece in zip(tokenized.input_ids, tokenized.labels, pieces)
    ]
    return TemplatePreview(
        text, tokens, tokenized.truncated_trained, tokenized.unlocated_turns, trimmed.left_out
    )


def _token_texts(tokenizer, text: str, ids: list[int]) -> list[str]:
    """The text each token covers; characters between tokens join the token before them."""
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # slow tokenizers have no offsets
        encoded = None
    if encoded is None or encoded["input_ids"][: len(ids)] != ids:
        return [tokenizer.decode([i]) for i in ids]
    offsets = encoded["offset_mapping"]
    starts = [start for start, _ in offsets] + [len(text)]
    starts[0] = 0
    for k in range(1, len(starts)):  # overlapping offsets (a character split over tokens)
        starts[k] = max(starts[k], starts[k - 1])
    return [text[starts[k] : starts[k + 1]] for k in range(len(ids))]


def _special_ids(tokenizer) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    ids.update(i for i, token in decoder.items() if getattr(token, "special", False))
    return ids
