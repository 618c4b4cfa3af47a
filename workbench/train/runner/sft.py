"""Supervised fine-tuning (SFT): LoRA or QLoRA on the tokenised rows the launcher wrote.

The labels come from the template (-100 on every token that does not train), so the mean loss
over labelled tokens is the completion-only loss TRL's SFTTrainer computes. It is computed from
the last hidden states a chunk of trained positions at a time (loss.py), never from the full
logits: the same value and gradients as transformers' loss, without its largest tensors.
"""

from __future__ import annotations

from ...models import ModelSpec, load_tokenizer
from ..config import TrainConfig
from ..folder import RunFolder
from .builders import build_peft_model, training_arguments
from .collate import FlatCollator, PaddedCollator, TokenCounter, packed_blocks


def sft_trainer(
    folder: RunFolder,
    config: TrainConfig,
    spec: ModelSpec,
    device: str,
    callbacks: list,
    counter: TokenCounter,
):
    """A transformers Trainer over the run's snapshot (padded, padding-free or packed batches)
    whose loss skips the full logits (loss.ChunkedLoss)."""
    from transformers import Trainer

    from .loss import ChunkedLoss

    class ChunkedLossTrainer(ChunkedLoss, Trainer):
        """transformers' Trainer with the chunked causal-LM loss."""

    tokenizer = load_tokenizer(spec)
    model = build_peft_model(spec, config, device)
    train_set, eval_set = load_snapshot(folder, config)
    if config.batching == "padded":
        collator = PaddedCollator(counter, tokenizer.pad_token_id)
    else:
        collator = FlatCollator(counter, config.max_length, tokenizer.pad_token_id)
    return ChunkedLossTrainer(
        model=model,
        args=training_arguments(folder, config, device, has_eval=eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        callbacks=callbacks,
    )


def load_snapshot(folder: RunFolder, config: TrainConfig):
    """The tokenised train (and eval) rows written by the launcher, packed if asked."""
    import datasets

    columns = ["input_ids", "labels"]  # not the bookkeeping: row numbers, replay marks
    train_set = datasets.load_from_disk(str(folder.data_dir / "train")).select_columns(columns)
    if config.batching == "packed":
        train_set = packed_blocks(train_set, config.max_length)
    eval_path = folder.data_dir / "eval"
    eval_set = None
    if eval_path.exists():
        eval_set = datasets.load_from_disk(str(eval_path)).select_columns(columns)
    return train_set, eval_set
