"""Adapter folders: check one before PEFT opens it, hash it, and write random ones for tests.

An adapter folder (a run's adapter/) holds adapter_model.safetensors, adapter_config.json, and
the template, train config and base model it was trained with. `check_adapter` refuses, naming
the file, whatever would fail later or unsafely: a missing or corrupt file, pickle weights (never
opened: PEFT would torch.load an adapter_model.bin), or weights made for another base model.
Everything PEFT saves for a LoRA of this base passes: modules_to_save copies, embedding LoRA,
DoRA magnitudes, rank and alpha patterns, biases and trainable tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
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
LORA_PARTS = {  # a saved LoRA tensor's suffix -> (its axis, the base layer's side it must fit)
    "lora_A.weight": (1, "inputs"),
    "lora_B.weight": (0, "outputs"),
    "lora_B.bias": (0, "outputs"),
    "lora_embedding_A": (1, "inputs"),
    "lora_embedding_B": (0, "outputs"),
    "lora_magnitude_vector": (0, "outputs"),
    "token_adapter.trainable_tokens_delta": (1, "outputs"),
}
RANKED = {"lora_A.weight": 0, "lora_embedding_A": 0, "lora_B.weight": 1, "lora_embedding_B": 1}
"""The axis that holds the rank r in the two LoRA matrices."""


class AdapterError(ValueError):
    """An adapter folder cannot be served; the message names the file and what to do."""


class AdapterBaseWarning(UserWarning):
    """An adapter's config names another base model than the one loaded, though its shapes fit."""


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

    Nothing here unpickles: only JSON and the safetensors header are read. An adapter whose
    adapter_config.json names another base model but whose shapes fit loads with a warning.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AdapterError(f"No adapter folder at {folder}; pass a run name or an adapter folder.")
    config = _read_config(folder / CONFIG_FILE)
    weights = _weights_file(folder)
    shapes = _tensor_shapes(weights)
    recorded = _check_base_model(folder / BASE_MODEL_FILE, spec)
    claimed = config.get("base_model_name_or_path") or None
    made_for = f" (its adapter_config.json names {claimed!r})" if claimed else ""
    _check_shapes(weights, shapes, base_model, config, made_for)
    if not recorded and claimed and not names_model(str(claimed), spec):
        warnings.warn(
            f"{folder / CONFIG_FILE} says this adapter was made for {claimed!r}, but it is loaded "
            f"on {spec.display_name!r}. Its shapes fit, so it loads; its answers are only "
            "meaningful if the two are the same weights.",
            AdapterBaseWarning,
            stacklevel=3,
        )
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


def _check_base_model(path: Path, spec: models.ModelSpec) -> bool:
    """Refuse an adapter whose workbench record names another model; whether there is a record."""
    if not path.is_file():
        return False  # adapters from elsewhere carry no record; the shape check still applies
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
    return True


def same_model(a: models.ModelSpec, b: models.ModelSpec) -> bool:
    """Whether two specs name the same weights (a folder and the embedded model may coincide)."""
    if a == b:
        return True
    if a.revision != b.revision:
        return False
    return _where(a) == _where(b)


def names_model(name_or_path: str, spec: models.ModelSpec) -> bool:
    """Whether a base_model_name_or_path (hub id, folder, hub cache folder) may name `spec`'s
    weights: the same id or folder, or the same model name at the end of both."""
    theirs, ours = _names(name_or_path), _names(spec.name_or_path) | {_where(spec)}
    if spec.is_embedded:
        ours |= _names(spec.display_name)
    return bool(theirs & ours)


def _names(name_or_path: str) -> set[str]:
    """A model's id, resolved folder, hub id (from a hub cache folder) and bare model name."""
    names = {name_or_path.rstrip("/"), _where(models.ModelSpec(name_or_path))}
    cached = re.search(r"models--([^/]+)--([^/]+)", name_or_path)
    if cached:
        names.add(f"{cached[1]}/{cached[2]}")
    names |= {n.rstrip("/").rpartition("/")[2] for n in list(names)}
    return {n for n in names if n}


def _where(spec: models.ModelSpec) -> str:
    if spec.is_embedded:
        return str(models.ensure_embedded_converted().resolve())
    path = Path(spec.name_or_path)
    return str(path.resolve()) if path.exists() else spec.name_or_path


def _check_shapes(weights: Path, shapes: dict[str, list[int]], base_model, config, made_for):
    """Every saved tensor must fit a layer of the base model: a cheap proof of the same
    architecture, which names the first misfits (module, the adapter's shape, the base's)."""
    modules = dict(base_model.named_modules())
    params = dict(base_model.named_parameters(remove_duplicate=False))
    problems, ranks = [], {}
    for key, shape in shapes.items():
        problem = _misfit(key.removeprefix(PEFT_PREFIX), shape, modules, params, ranks)
        if problem:
            problems.append(f"{key!r} {problem}")
    problems += _rank_problems(ranks, config)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise AdapterError(
            f"{weights} does not fit the base model loaded here: "
            + "; ".join(problems[:3])
            + f"{more}. The adapter was made for another model{made_for}; load that model "
            "with session.set_model(...) to use it."
        )


def _misfit(path: str, shape: list[int], modules, params, ranks) -> str | None:
    """Why one saved tensor does not fit the base model, or None when it fits."""
    for part, (axis, side) in LORA_PARTS.items():
        if not path.endswith("." + part):
            continue
        name = path[: -len(part) - 1]
        module = modules.get(name)
        if module is None:
            return "belongs to a layer the base model does not have"
        if part in RANKED and len(shape) > RANKED[part]:
            ranks.setdefault(name, {})[part] = shape[RANKED[part]]
        sizes = _sizes(module)
        if sizes is None or len(shape) <= axis or shape[axis] == sizes[side]:
            return None
        return (
            f"of shape {shape} needs {shape[axis]} {side}, but the base model's {name} "
            f"({type(module).__name__}) has {sizes[side]}"
        )
    name = path.replace(".base_layer.", ".")
    if name in params:  # a whole tensor: modules_to_save, a bias, an embedding base layer
        expected = list(params[name].shape)
        if shape == expected or hasattr(params[name], "quant_state"):
            return None
        return f"of shape {shape} replaces the base model's {name} of shape {expected}"
    owner = name.rpartition(".")[0]
    while owner and owner not in modules:
        owner = owner.rpartition(".")[0]
    return None if owner else "matches no layer of the base model"


def _sizes(module) -> dict[str, int] | None:
    """The inputs and outputs of a layer LoRA can wrap (linear, embedding, convolution)."""
    for inputs, outputs in (
        ("in_features", "out_features"),
        ("num_embeddings", "embedding_dim"),
        ("in_channels", "out_channels"),
        ("nx", "nf"),  # transformers' Conv1D (GPT-2)
    ):
        if hasattr(module, inputs) and hasattr(module, outputs):
            return {
                "inputs": int(getattr(module, inputs)),
                "outputs": int(getattr(module, outputs)),
            }
    return None


def _rank_problems(ranks: dict[str, dict[str, int]], config: dict[str, Any]) -> list[str]:
    """LoRA matrices whose rank disagrees between A and B or with r / rank_pattern of the config."""
    from peft.utils.other import get_pattern_key

    pattern = config.get("rank_pattern") or {}
    problems = []
    for name, found in ranks.items():
        expected = pattern.get(get_pattern_key(pattern.keys(), name), config.get("r"))
        if len(set(found.values())) > 1 or (expected and {expected} != set(found.values())):
            problems.append(
                f"the LoRA of {name} has rank {sorted(set(found.values()))}, but "
                f"{CONFIG_FILE} says r={expected} for it (r and rank_pattern)"
            )
    return problems


def base_tensors(folder: str | os.PathLike, config) -> dict[str, Any]:
    """The tensors of an adapter file that replace the base model's own when PEFT loads it
    (biases saved with bias="all" or "lora_only", an embedding's base layer), by base name."""
    from safetensors import safe_open

    keep = list(getattr(config, "modules_to_save", None) or [])
    found = {}
    with safe_open(str(Path(folder) / WEIGHTS_FILE), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118
            path = key.removeprefix(PEFT_PREFIX)
            owner = path.rpartition(".")[0]
            if any(path.endswith("." + part) for part in LORA_PARTS) or any(
                owner == m or owner.endswith("." + m) for m in keep
            ):
                continue  # the adapter's own tensors, or its copy of a whole module
            found[path.replace(".base_layer.", ".")] = f.get_tensor(key)
    return found


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
