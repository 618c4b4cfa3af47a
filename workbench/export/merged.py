"""Merged weights: the base model with its adapters folded in, saved for transformers or vLLM.

The base is reloaded in the dtype the hardware computes in (bfloat16 or float16 on a GPU, float32
on a CPU), never in 4 bits: a QLoRA adapter merges into full weights, not into quantised ones.
The adapters merge in order with PEFT. The folder gets sharded safetensors, the tokenizer with
the training template as its chat_template, and the template's stop tokens in the generation
config, so `generate()` stops where the adapter learned to.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import models
from ..templates.template import Template
from .turns import stop_ids

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def load_with_adapters(spec: models.ModelSpec, adapters: Sequence[Path], device: str):
    """The base model in full precision with the chain attached: all but the last merged, the
    last as a PEFT adapter (so its answers can be checked before it merges too)."""
    from peft import PeftModel

    from ..answers.adapters import AdapterError, check_adapter
    from .config import ExportError

    model = models.load_model(spec, device=device)
    for folder in adapters:
        try:  # never unpickles; refuses an adapter made for another model, naming the file
            check_adapter(folder, spec, model)
        except AdapterError as e:
            raise ExportError(str(e)) from e
    for folder in adapters[:-1]:
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    peft = PeftModel.from_pretrained(model, str(adapters[-1]), adapter_name="export")
    peft.eval()
    return peft


def merge(peft_model):
    """Fold the attached adapter into the weights (PEFT's merge_and_unload); the plain model."""
    model = peft_model.merge_and_unload()
    model.eval()
    return model


def save_merged(
    model,
    tokenizer,
    template: Template,
    out: Path,
    dtype: str = "auto",
    shard_size: str = "5GB",
) -> None:
    """Write the merged model, its tokenizer with the template, and the stop tokens to `out`."""
    import torch

    if dtype != "auto":
        model = model.to(getattr(torch, DTYPES[dtype]))
    bound = template.with_tokenizer(tokenizer)
    stops = stop_ids(bound, tokenizer)
    generation = model.generation_config
    generation.eos_token_id = stops if len(stops) > 1 else stops[0]
    generation.pad_token_id = tokenizer.pad_token_id
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config  # full weights: never written as quantised
    model.save_pretrained(str(out), safe_serialization=True, max_shard_size=shard_size)
    tokenizer.chat_template = bound.serving_jinja  # no training-only marks
    tokenizer.save_pretrained(str(out))
    Template(bound.jinja, template.name, template.train_on).save(out)


def load_merged(folder: Path, device: str):
    """Read a merged export back as a user would, in the dtype this hardware computes in."""
    return models.load_model(models.ModelSpec(str(folder)), device=device)


def saved_dtype(folder: Path) -> str:
    """The dtype a merged export's weights were written in (its config.json says)."""
    from ..persist import read_json

    config = read_json(folder / "config.json")
    return str(config.get("dtype") or config.get("torch_dtype") or "unknown")
