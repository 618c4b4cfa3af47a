"""What one conversation trains on, token by token: the data the template editor draws.

The ids and labels come from `tokenize_with_labels`, the function training uses, so the preview
is exactly what trains; only the text of each token is looked up here, for display.
"""

from __future__ import annotations

from dataclasses import dataclass

from .template import IGNORE_INDEX, Template, messages_of, tokenize_with_labels


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
    write as given, so that could not be done (TokenizedExample.unlocated_turns).
    """

    text: str
    tokens: list[TokenView]
    truncated_trained: int = 0
    unlocated_turns: tuple[int, ...] = ()

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


def preview(
    template: Template, example: dict | list, max_length: int | None = None
) -> TemplatePreview:
    """The preview of one row (or list of messages) under a template bound to a tokenizer.

    Turns flagged not to train ("weight": 0, "loss"/"train": false) show as masked.
    """
    tokenized = tokenize_with_labels(template, [example], max_length)[0]
    text = template.render(messages_of(example))
    pieces = _token_texts(template.tokenizer, text, tokenized.input_ids)
    special = _special_ids(template.tokenizer)
    tokens = [
        TokenView(i, piece, label != IGNORE_INDEX, i in special)
        for i, label, piece in zip(tokenized.input_ids, tokenized.labels, pieces)
    ]
    return TemplatePreview(text, tokens, tokenized.truncated_trained, tokenized.unlocated_turns)


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
