"""GGUF: the merged weights in one file for llama.cpp, LM Studio and Ollama, written in-process.

Written with the `gguf` package (its GGUFWriter, its tensor-name map and its own quantiser), for
the architectures transformers can also read back from GGUF, so the parity check can load the
file through transformers' GGUF loader. Tensors are converted and written one at a time, so the
file never sits in memory whole. Llama's q/k projections are stored in llama.cpp's rotary
layout (the heads' two halves interleaved), which transformers' loader undoes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models import gguf_header
from ..templates.template import Template
from .config import ExportError
from .gguf_vocab import add_tokenizer, check_tokenizer

# transformers model_type -> GGUF architecture name; both read back by transformers' GGUF loader.
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2"}
Q8_BLOCK = 32  # Q8_0 quantises rows in blocks of 32 values; other rows stay F16


def check_architecture(config) -> None:
    """Refuse, before any work, a model the GGUF writer cannot write or read back faithfully."""
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise ExportError(
            f"The GGUF writer does not know the {model_type!r} architecture; it writes "
            f"{sorted(ARCHITECTURES)} (the ones transformers also reads back from GGUF, which "
            "the parity check needs). Export format='merged' instead."
        )
    rope = rope_parameters(config)
    if rope.get("rope_type", "default") != "default":
        raise ExportError(
            f"This {model_type} model scales its rotary embedding ({rope.get('rope_type')!r}), "
            "which the GGUF writer does not write; export format='merged' instead."
        )
    for flag in ("attention_bias", "mlp_bias"):
        if model_type == "llama" and getattr(config, flag, False):
            raise ExportError(
                f"This llama model sets {flag}=True, which transformers' GGUF loader does not "
                "read back; export format='merged' instead."
            )
    if model_type == "qwen2" and getattr(config, "use_sliding_window", False):
        raise ExportError(
            "This qwen2 model uses sliding-window attention, which the GGUF writer does not "
            "write; export format='merged' instead."
        )


def check_model(config, tokenizer) -> None:
    """Every refusal of a GGUF export that needs only the config and the tokenizer."""
    check_architecture(config)
    check_tokenizer(tokenizer)


def rope_parameters(config) -> dict[str, Any]:
    """The rotary settings, from transformers 5's rope_parameters or older rope_theta/scaling."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        return params
    scaling = getattr(config, "rope_scaling", None) or {}
    return {**scaling, "rope_theta": getattr(config, "rope_theta", 10000.0)}


def write_gguf(
    model,
    tokenizer,
    template: Template,
    out: Path,
    quantization: str,
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `model` (merged, any float dtype) with its tokenizer and template to the file `out`.

    `quantization`: "f16", "bf16" or "q8_0" (1-D tensors stay F32, as llama.cpp keeps them).
    `progress(done, total)` hears of each tensor written.
    """
    import gguf
    import numpy as np

    config = model.config
    check_model(config, tokenizer)
    tensors = _tensor_plan(model, quantization)
    writer = gguf.GGUFWriter(str(out), ARCHITECTURES[config.model_type])
    try:
        _add_model_keys(writer, config, quantization, name)
        add_tokenizer(writer, tokenizer, template, config.vocab_size)
        for gguf_name, _, shape, qtype in tensors:
            size = _nbytes(shape, qtype)
            writer.add_tensor_info(gguf_name, shape, np.float32, size, raw_dtype=qtype)
        writer.write_header_to_file(out)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        state = model.state_dict()
        for done, (gguf_name, hf_name, _, qtype) in enumerate(tensors, start=1):
            writer.write_tensor_data(_convert(state[hf_name], gguf_name, config, qtype))
            if progress is not None:
                progress(done, len(tensors))
    finally:
        writer.close()
    return out


def _tensor_plan(model, quantization: str) -> list[tuple[str, str, tuple[int, ...], Any]]:
    """(GGUF name, transformers name, shape, GGML type) of every tensor, in writing order."""
    import gguf

    config = model.config
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[config.model_type]
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    wide = {
        "f16": gguf.GGMLQuantizationType.F16,
        "bf16": gguf.GGMLQuantizationType.BF16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
    }[quantization]
    plan = []
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # a GGUF without output.weight ties it to the embedding, as the model does
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ExportError(
                f"The GGUF tensor-name map has no name for {hf_name!r} of this "
                f"{config.model_type} model; export format='merged' instead."
            )
        shape = tuple(tensor.shape)
        qtype = wide if len(shape) == 2 else gguf.GGMLQuantizationType.F32
        if qtype == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % Q8_BLOCK:
            qtype = gguf.GGMLQuantizationType.F16
        plan.append((gguf_name, hf_name, shape, qtype))
    return plan


def _nbytes(shape: tuple[int, ...], qtype) -> int:
    import math

    import gguf

    return math.prod(gguf.quant_shape_to_byte_shape(shape, qtype))


def _convert(tensor, gguf_name: str, config, qtype):
    """One tensor as the bytes GGUF stores: rotary layout for llama q/k, then the GGML type."""
    import gguf
    import numpy as np

    data = tensor.detach().float().cpu().numpy()
    if config.model_type == "llama" and (".attn_q." in gguf_name or ".attn_k." in gguf_name):
        heads = config.num_attention_heads
        if ".attn_k." in gguf_name:
            heads = config.num_key_value_heads
        data = interleave_rotary_halves(data, heads)
    if qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


def interleave_rotary_halves(weights, heads: int):
    """Reorder q/k rows from transformers' rotary layout (each head's first half, then its
    second) to llama.cpp's (the halves' rows interleaved in pairs); works on biases too.

    The inverse of what transformers' GGUF loader does when it reads a llama file.
    """
    half = weights.shape[0] // heads // 2
    split = weights.reshape(heads, 2, half, *weights.shape[1:])
    return split.swapaxes(1, 2).reshape(weights.shape)


def declared_stops(path: Path) -> list[int]:
    """The end-of-generation ids a GGUF file declares (EOS, end of turn), read from its header."""
    keys = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
    return [int(value) for value in gguf_header(path, keys).values()]


def model_keys(config) -> dict[str, Any]:
    """The architecture's hyper-parameters as GGUF keys (for the model card and the tests)."""
    head_dim = getattr(config, "head_dim", None) or (
        config.hidden_size // config.num_attention_heads
    )
    return {
        "context_length": config.max_position_embeddings,
        "embedding_length": config.hidden_size,
        "block_count": config.num_hidden_layers,
        "feed_forward_length": config.intermediate_size,
        "head_count": config.num_attention_heads,
        "head_count_kv": config.num_key_value_heads,
        "head_dim": head_dim,
        "rope_freq_base": float(rope_parameters(config)["rope_theta"]),
        "layer_norm_rms_eps": float(config.rms_norm_eps),
        "vocab_size": config.vocab_size,
    }


def _add_model_keys(writer, config, quantization: str, name: str) -> None:
    import gguf

    keys = model_keys(config)
    writer.add_name(name)
    writer.add_context_length(keys["context_length"])
    writer.add_embedding_length(keys["embedding_length"])
    writer.add_block_count(keys["block_count"])
    writer.add_feed_forward_length(keys["feed_forward_length"])
    writer.add_head_count(keys["head_count"])
    writer.add_head_count_kv(keys["head_count_kv"])
    writer.add_rope_dimension_count(keys["head_dim"])
    if keys["head_dim"] * keys["head_count"] != keys["embedding_length"]:
        writer.add_key_length(keys["head_dim"])
        writer.add_value_length(keys["head_dim"])
    writer.add_rope_freq_base(keys["rope_freq_base"])
    writer.add_layer_norm_rms_eps(keys["layer_norm_rms_eps"])
    writer.add_vocab_size(keys["vocab_size"])
    file_type = {
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[quantization]
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
