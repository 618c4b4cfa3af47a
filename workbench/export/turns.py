"""The tokens an answer ends on: the template's end-of-turn token, then the workbench's stops.

A served model must stop where it learned to: on the token its training template writes right
after every assistant answer (<|im_end|> for chatml, <|eot_id|> for llama3, EOS for alpaca).
Exports write these as the generation config's stop tokens, GGUF's end-of-turn token and
Ollama's stop strings; the workbench's own stops (EOS and the end-of-turn tokens its vocabulary
knows) follow, so an exported model stops wherever the adapter stopped in the workbench.
"""

from __future__ import annotations

from ..templates.stops import END_OF_TURN_TOKENS, stop_token_ids
from ..templates.template import PROBE_ANSWER, Template


def end_of_turn(template: Template, tokenizer) -> str | None:
    """The special token the template writes right after an assistant answer, or None.

    Read from the template itself: render a probe answer and take the token that follows it,
    if that token is one of the tokenizer's special tokens or a known end-of-turn token.
    """
    probe = [
        {"role": "user", "content": "A question?"},
        {"role": "assistant", "content": PROBE_ANSWER},
    ]
    text = template.with_tokenizer(tokenizer).render(probe)
    after = text[text.index(PROBE_ANSWER) + len(PROBE_ANSWER) :].lstrip(" ")
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    if not ids:
        return None
    token = tokenizer.convert_ids_to_tokens(ids[0])
    special = set(tokenizer.all_special_tokens) | set(END_OF_TURN_TOKENS)
    return token if token in special else None


def stop_ids(template: Template, tokenizer) -> list[int]:
    """Token ids that end an answer: the template's end of turn first, then the workbench's."""
    ids = stop_token_ids(tokenizer)
    token = end_of_turn(template, tokenizer)
    first = tokenizer.convert_tokens_to_ids(token) if token else None
    return ([first] if first is not None else []) + [i for i in ids if i != first]
