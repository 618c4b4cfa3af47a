"""The tokens that end a turn, and so where generation stops.

A template's answers must end with one of these for a tuned model to stop where it was taught
to (templates.checks), generation stops on them (answers.model_host), and an export declares
them (export.turns): one list for all three.
"""

from __future__ import annotations

END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|endoftext|>",
)


def stop_token_ids(tokenizer) -> list[int]:
    """EOS plus the end-of-turn tokens this vocabulary knows, so answers stop at the turn's end."""
    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return sorted(i for i in ids if i is not None)
