"""Adapter folders: check one before PEFT opens it, hash it, and write random ones for tests.

An adapter folder (a run's adapter/) holds adapter_model.safetensors, adapter_config.json, and
the template, train config and base model it was trained with. `check_adapter` refuses, naming
the file, whatever would fail later or unsafely: a missing or corrupt file, pickle weights (never
opened: PEFT would torch.load an adapter_model.bin), or weights made for another base model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import models
from ..templates.template import TEMPLATE_FILE, Template

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
BASE_MODEL_FILE = "base_model.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
PEFT_PREFIX = "base_model.model."


class AdapterError(ValueError):
    """An adapter folder cannot be served; the message names the file and what to do."""


@dataclass(frozen=True)
class AdapterFiles:
    """A checked adapter folder: its config, its weights' hash and its stored template (or None)."""

    folder: Path
    config: dict[str, Any]
    sha256: str
    template: Template | None

    @property
    def weights(self) -> Path:
        """The adapter's safetensors file."""
        return self.folder / WEIGHTS_FILE


def check_adapter(folder: str | os.PathLike, spec: models.ModelSpec, base_model) -> AdapterFiles:
    """Validate an adapter folder against the loaded base model; raise AdapterError if unusable.

    Nothing here unpickles: only JSON and the safetensors header are read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AdapterError(f"No adapter folder at {folder}; pass a run name or an adapter folder.")
    config = _read_config(folder / CONFIG_FILE)
    weights = _weights_file(folder)
    shapes = _tensor_shapes(weights)
    _check_base_model(folder / BASE_MODEL_FILE, spec)
    _check_shapes(weights, shapes, base_model)
    template = Template.load(folder) if (folder / TEMPLATE_FILE).is_file() else None
    return AdapterFiles(folder, config, file_sha256(weights)[:16], template)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise AdapterError(
            f"{path} is missing, so {path.parent} is not a complete adapter folder; "
            "use the adapter/ folder of a finished run."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise AdapterError(f"{path} is not valid JSON ({e}); the adapter cannot be read.") from e
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(
            f"{path} does not describe a LoRA adapter (peft_type {config.get('peft_type')!r}); "
            "only LoRA adapters can be compared."
        )
    return config


def _weights_file(folder: Path) -> Path:
    weights = folder / WEIGHTS_FILE
    if weights.is_file():
        return weights
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterError(
            f"{folder / pickles[0]} is a pickle weight file, which can run code when loaded; it "
            f"was not opened. Save the adapter as {WEIGHTS_FILE} (save_pretrained with "
            "safe_serialization=True) to use it."
        )
    raise AdapterError(f"{weights} is missing; the adapter has no weights to load.")


def _tensor_shapes(weights: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            return {key: list(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    except Exception as e:  # safetensors raises its own error type for every kind of damage
        raise AdapterError(
            f"{weights} is damaged or not a safetensors file ({e}); copy or train the adapter again."
        ) from e


def _check_base_model(path: Path, spec: models.ModelSpec) -> None:
    if not path.is_file():
        return  # adapters from elsewhere carry no record; the shape check still applies
    try:
        stored = models.ModelSpec.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as e:
        raise AdapterError(f"{path} is not a valid model record ({e}).") from e
    if not same_model(stored, spec):
        raise AdapterError(
            f"{path} says this adapter was trained on {stored.display_name!r}, but the base "
            f"model here is {spec.display_name!r}; choose that model with "
            "session.set_model(...) to use it."
        )


def same_model(a: models.ModelSpec, b: models.ModelSpec) -> bool:
    """Whether two specs name the same weights (a folder and the embedded model may coincide)."""
    if a == b:
        return True
    if a.revision != b.revision:
        return False
    return _where(a) == _where(b)


def _where(spec: models.ModelSpec) -> str:
    if spec.is_embedded:
        return str(models.ensure_embedded_converted().resolve())
    path = Path(spec.name_or_path)
    return str(path.resolve()) if path.exists() else spec.name_or_path


def _check_shapes(weights: Path, shapes: dict[str, list[int]], base_model) -> None:
    """Every LoRA matrix must fit a layer of the base model: a cheap proof of the same architecture."""
    modules = dict(base_model.named_modules())
    for key, shape in shapes.items():
        name, _, kind = key.removeprefix(PEFT_PREFIX).rpartition(".lora_")
        module = modules.get(name)
        if not name or module is None:
            raise AdapterError(
                f"{weights} holds {key!r}, which matches no layer of the base model; the adapter "
                "was made for another model."
            )
        expected = _expected_dim(module, kind)
        got = shape[1] if kind.startswith("A") else shape[0]
        if expected is not None and expected != got:
            raise AdapterError(
                f"{weights} holds {key!r} of shape {shape}, which does not fit the base model's "
                f"layer ({expected}); the adapter was made for another model."
            )


def _expected_dim(module, kind: str) -> int | None:
    if kind.startswith("A.") and hasattr(module, "in_features"):
        return int(module.in_features)
    if kind.startswith("B.") and hasattr(module, "out_features"):
        return int(module.out_features)
    return None


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_random_adapter(
    base_model,
    folder: str | os.PathLike,
    spec: models.ModelSpec,
    template: Template,
    *,
    r: int = 16,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised LoRA adapter (all linear layers) the way a run saves one.

    For tests and benchmarks: its answers differ from the base model's without any training.
    The base model is left unchanged.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from ..persist import atomic_write_json

    torch.manual_seed(seed)
    lora = LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(base_model, lora)
    try:
        folder = Path(folder)
        peft_model.save_pretrained(str(folder), safe_serialization=True)
        template.save(folder)
        atomic_write_json(folder / BASE_MODEL_FILE, spec.to_json())
        return folder
    finally:
        peft_model.unload()  # takes the LoRA layers out again, leaving the base model as it was
