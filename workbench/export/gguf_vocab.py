"""The tokenizer inside a GGUF file: byte-level BPE ("gpt2") tokens, types, merges and ids.

llama.cpp and transformers' GGUF loader rebuild the tokenizer from these keys, so they must say
exactly what the Hugging Face tokenizer does: every token in id order (padded to the model's
vocabulary size), which ones are control tokens (kept whole, never split), the merges, the split
rule llama.cpp knows by name ("pre"), the special ids, the training template and its stop token.
"""

from __future__ import annotations

import json
from typing import Any

from ..templates.template import Template
from .config import ExportError
from .turns import end_of_turn

# llama.cpp's name for the split rule of a byte-level BPE tokenizer, by its Hugging Face shape.
# Split regexes (Qwen2, Llama 3, ...) are named by transformers' own GGUF table, read at runtime.
BYTE_LEVEL_PRE = {
    "ByteLevel": "gpt2",  # GPT-2's regex, as the embedded SmolLM2 is stored
    "Digits+ByteLevel": "smollm",  # single digits, then GPT-2's regex: SmolLM and StarCoder
}


def check_tokenizer(tokenizer) -> None:
    """Refuse, before any work, a tokenizer the GGUF writer cannot describe (not byte-level BPE)."""
    data = _tokenizer_json(tokenizer)
    model, decoder = data.get("model") or {}, data.get("decoder") or {}
    if (
        model.get("type") != "BPE"
        or model.get("byte_fallback")
        or decoder.get("type") != "ByteLevel"
    ):
        raise ExportError(
            f"The GGUF writer writes byte-level BPE tokenizers (GPT-2 style, as Llama 3, Qwen2 "
            f"and SmolLM use); this one is {model.get('type')!r} with a "
            f"{decoder.get('type')!r} decoder. Export format='merged' and convert it with "
            "llama.cpp's convert_hf_to_gguf.py."
        )
    pre_name(data)


def add_tokenizer(writer, tokenizer, template: Template, vocab_size: int) -> None:
    """Write the tokenizer keys: tokens, types, merges, pre, special ids, chat template."""
    import gguf

    data = _tokenizer_json(tokenizer)
    tokens: list[str | None] = [None] * vocab_size
    types = [gguf.TokenType.NORMAL] * vocab_size
    for token, index in data["model"]["vocab"].items():
        if index < vocab_size:
            tokens[index] = token
    for index, added in tokenizer.added_tokens_decoder.items():
        if index >= vocab_size:
            raise ExportError(
                f"The tokenizer's token {added.content!r} has id {index}, beyond the model's "
                f"{vocab_size} embeddings; the tokenizer does not fit this model."
            )
        tokens[index] = added.content
        types[index] = gguf.TokenType.CONTROL if added.special else gguf.TokenType.USER_DEFINED
    for index, token in enumerate(tokens):
        if token is None:  # embedding rows no token uses (vocabularies padded for speed)
            tokens[index], types[index] = f"[PAD{index}]", gguf.TokenType.UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_name(data))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    _add_ids(writer, tokenizer, template)
    writer.add_chat_template(template.with_tokenizer(tokenizer).serving_jinja)


def _add_ids(writer, tokenizer, template: Template) -> None:
    # The workbench tokenises rendered prompts without adding BOS or EOS: a template that wants
    # BOS writes it (llama3, mistral, gemma), so llama.cpp must not add another.
    for add, token_id in (
        (writer.add_bos_token_id, tokenizer.bos_token_id),
        (writer.add_eos_token_id, tokenizer.eos_token_id),
        (writer.add_unk_token_id, tokenizer.unk_token_id),
        (writer.add_pad_token_id, tokenizer.pad_token_id),
    ):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    stop = end_of_turn(template, tokenizer)
    if stop is not None:
        writer.add_eot_token_id(tokenizer.convert_tokens_to_ids(stop))


def pre_name(data: dict[str, Any]) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer; ExportError when it has none."""
    pre = data.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = "+".join(p.get("type", "?") for p in parts)
    if kinds in BYTE_LEVEL_PRE and all(
        p.get("use_regex", True) and p.get("individual_digits", True) for p in parts
    ):
        return BYTE_LEVEL_PRE[kinds]
    if kinds == "Split+ByteLevel":
        pattern = parts[0].get("pattern", {}).get("Regex")
        named = _split_names().get(pattern)
        if named:
            return named
    raise ExportError(
        f"The tokenizer splits text with {kinds} ({json.dumps(pre)[:200]}), which has no GGUF "
        "name the writer knows, so llama.cpp would tokenise differently. Export "
        "format='merged' and convert it with llama.cpp's convert_hf_to_gguf.py."
    )


def _split_names() -> dict[str, str]:
    """Regex -> the first GGUF pre-tokenizer name transformers' GGUF loader gives it."""
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import (
            GGUF_PRE_TOKENIZER_SPLITS,
        )
    except ImportError:  # another transformers layout: only the byte-level names are known
        return {}
    names: dict[str, str] = {}
    for name, pattern in GGUF_PRE_TOKENIZER_SPLITS.items():
        names.setdefault(pattern, name)
    return names


def _tokenizer_json(tokenizer) -> dict[str, Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportError(
            f"{type(tokenizer).__name__} is not a fast (tokenizers) tokenizer; the GGUF writer "
            "reads the vocabulary and merges from one."
        )
    return json.loads(backend.to_str())
