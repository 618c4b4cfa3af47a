"""Llamas with random weights and the embedded model's tokenizer: no download, any size.

One builder for the tests (a 2-layer "tiny" model that loads in a blink), the GPU check's dry
run ("small": 4-bit on the CPU needs 64-wide layers) and the benchmarks (a ~1B-parameter
model, the size of a small real one).
"""

from __future__ import annotations

import sys
from pathlib import Path

SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    ),
    "small": dict(  # the smallest whose layers bitsandbytes' CPU 4-bit kernels take (64-wide blocks)
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    ),
    "1b": dict(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=2048,
    ),
}


def random_llama(tokenizer, size: str = "tiny", seed: int = 0):
    """A LlamaForCausalLM of `size` (a key of SIZES) with random weights for `tokenizer`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SIZES[size],
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def write_random_llama(out: Path, size: str = "1b") -> str:
    """Save a random Llama of `size` (bfloat16 for "1b") to `out` once; returns the folder."""
    import torch
    from transformers import AutoTokenizer

    from workbench import models

    out = Path(out)
    if (out / "model.safetensors").exists() or (out / "model.safetensors.index.json").exists():
        return str(out)
    tokenizer = AutoTokenizer.from_pretrained(models.ensure_embedded_converted())
    model = random_llama(tokenizer, size)
    if size == "1b":
        model = model.to(torch.bfloat16)
        print(f"random Llama: {model.num_parameters() / 1e9:.2f}B parameters", file=sys.stderr)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return str(out)
