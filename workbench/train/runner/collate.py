"""Batching trained rows: padded, or padding-free (rows laid end to end, positions restarting).

Padding-free batches carry `position_ids` that restart at 0 for every row and no attention mask;
transformers then builds a block-diagonal causal mask from them, so packed rows never attend to
one another. The model must run with `use_cache=False` for that detection to apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100


@dataclass
class TokenCounter:
    """Tokens the collator has handed out, read by the metrics callback for tokens per second."""

    tokens: int = 0
    trained: int = 0


@dataclass
class FlatCollator:
    """Lay a batch's rows end to end, in as few sequences of at most `max_length` tokens as fit.

    Rows are never split; each sequence's positions restart at every row, so attention stays
    within a row. Capping a sequence at `max_length` keeps the attention cost (quadratic in a
    sequence's length on kernels without variable-length support) at that of padded batches.
    The tail of a shorter sequence is filler: its own segment, with nothing trained.
    """

    counter: TokenCounter
    max_length: int
    pad_token_id: int = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        pieces = [_as_piece(f) for f in features]
        groups = pack_rows([len(ids) for ids, _, _ in pieces], max(self.max_length, 1))
        longest = max(sum(len(pieces[i][0]) for i in group) for group in groups)
        ids, labels, positions = [], [], []
        for group in groups:
            row_ids, row_labels, row_positions = [], [], []
            for i in group:
                piece_ids, piece_labels, piece_positions = pieces[i]
                row_ids += piece_ids
                row_labels += piece_labels
                row_positions += piece_positions
            filler = longest - len(row_ids)
            self.counter.tokens += len(row_ids)
            self.counter.trained += sum(v != IGNORE_INDEX for v in row_labels)
            ids.append(row_ids + [self.pad_token_id] * filler)
            labels.append(row_labels + [IGNORE_INDEX] * filler)
            positions.append(row_positions + list(range(filler)))
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "position_ids": torch.tensor(positions),
        }


def _as_piece(feature: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """A row (or a packed block of rows) as ids, labels and positions restarting per row."""
    ids, labels = list(feature["input_ids"]), list(feature["labels"])
    if "position_ids" in feature:  # a packed block: its rows are already delimited
        return ids, labels, list(feature["position_ids"])
    labels[0] = IGNORE_INDEX  # never predict a row's first token from what came before
    return ids, labels, list(range(len(ids)))


@dataclass
class PaddedCollator:
    """Pad each batch to its longest row (right padding, masked labels), as TRL does by default."""

    counter: TokenCounter
    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for f in features:
            n = len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * (longest - n))
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * (longest - n))
            mask.append([1] * n + [0] * (longest - n))
            self.counter.tokens += n
            self.counter.trained += sum(v != IGNORE_INDEX for v in f["labels"])
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }


def pack_rows(lengths: list[int], max_length: int) -> list[list[int]]:
    """Group row indices into blocks of at most `max_length` tokens (first-fit decreasing)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    blocks: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for b, free in enumerate(room):
            if lengths[i] <= free:
                blocks[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            blocks.append([i])
            room.append(max_length - lengths[i])
    return blocks


def packed_blocks(table, max_length: int):
    """The rows of a tokenised table packed into blocks, each with restarting positions."""
    import datasets

    blocks = pack_rows([len(x) for x in table["input_ids"]], max_length)
    out: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": []}
    for block in blocks:
        ids, labels, positions = [], [], []
        for i in block:
            row = table[i]
            ids += row["input_ids"]
            labels += [IGNORE_INDEX] + list(row["labels"][1:])
            positions += list(range(len(row["input_ids"])))
        out["input_ids"].append(ids)
        out["labels"].append(labels)
        out["position_ids"].append(positions)
    return datasets.Dataset.from_dict(out)
