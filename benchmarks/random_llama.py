"""A randomly initialised ~1B-parameter Llama for benchmarks on machines that cannot download one."""

from __future__ import annotations

import sys
from pathlib import Path


def write_random_llama(out: Path) -> str:
    """A ~1B-parameter Llama with random weights and the embedded model's tokenizer (no download)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from workbench import models

    if (
        not (out / "model.safetensors").exists()
        and not (out / "model.safetensors.index.json").exists()
    ):
        tokenizer = AutoTokenizer.from_pretrained(models.ensure_embedded_converted())
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=2048,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = LlamaForCausalLM(config).to(torch.bfloat16)
        print(f"random Llama: {model.num_parameters() / 1e9:.2f}B parameters", file=sys.stderr)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    return str(out)
