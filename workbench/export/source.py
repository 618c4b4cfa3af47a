"""What is exported: an adapter, the run that made it, its base model; refusals before any work.

An export starts from a finished run's adapter (or an adapter folder), checks that its base model
can still be loaded and, for GGUF, that the writer knows the architecture and the tokenizer.
Every refusal happens here, before a weight is loaded or a file written.

The adapter chain: a DPO run on top of an SFT adapter does not add a second adapter. The runner
loads the SFT adapter trainable (`PeftModel.from_pretrained(..., is_trainable=True)`) and keeps
training those same LoRA matrices, so the DPO run's adapter/ already holds SFT and DPO combined.
Its chain is that one adapter; merging the SFT adapter as well would apply it twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import models
from ..persist import read_json
from .config import ExportConfig, ExportError

BASE_MODEL_FILE = "base_model.json"
TRAIN_CONFIG_FILE = "train_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class ExportSource:
    """A checked adapter to export: its name, the adapters merged in order, its base model."""

    name: str
    adapters: tuple[Path, ...]
    spec: models.ModelSpec
    train: dict[str, Any] | None  # train_config.json, when the adapter has one
    note: str | None = None  # how the chain was formed (a DPO run continuing an SFT adapter)

    @property
    def adapter(self) -> Path:
        """The last adapter of the chain: the one the workbench serves."""
        return self.adapters[-1]


def check_run_state(name: str, state: str, message: str = "") -> None:
    """Refuse a run that is still training, failed or died (a stopped run saved its adapter)."""
    if state in ("queued", "running"):
        raise ExportError(
            f"{name} is still {state}; wait for it to finish (run.wait()) or stop it "
            "(run.stop(), which saves its adapter), then export."
        )
    if state in ("failed", "died"):
        raise ExportError(
            f"{name} {state}: {message or 'see its log'} Its adapter is not a finished model; "
            "resume the run or train again, then export."
        )


def adapter_source(
    name: str, folder: str | os.PathLike, default_spec: models.ModelSpec
) -> ExportSource:
    """The adapter in `folder` as an ExportSource; ExportError when it is not a whole adapter."""
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / "adapter_config.json").is_file():
        raise ExportError(
            f"{folder} holds no complete adapter ({WEIGHTS_FILE} and adapter_config.json); "
            "export a finished run or an adapter folder."
        )
    spec = default_spec
    if (folder / BASE_MODEL_FILE).is_file():
        spec = models.ModelSpec.from_json(
            read_json(folder / BASE_MODEL_FILE), source=str(folder / BASE_MODEL_FILE)
        )
    train = (
        read_json(folder / TRAIN_CONFIG_FILE) if (folder / TRAIN_CONFIG_FILE).is_file() else None
    )
    note = None
    if train and train.get("method") == "dpo" and train.get("base_adapter"):
        note = (
            f"DPO continued training the SFT adapter {train['base_adapter']}; this adapter "
            "holds both, so it is merged alone."
        )
    return ExportSource(name, (folder,), spec, train, note)


def check_base_available(spec: models.ModelSpec):
    """The base model's config, proving it can be loaded; ExportError when it is gone."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(models.resolve(spec), revision=spec.revision)
    except (OSError, ValueError, models.ModelNotAvailableError) as e:
        raise ExportError(
            f"The base model {spec.display_name!r} this adapter was trained on is no longer "
            f"available ({str(e).splitlines()[0][:300]}). Put it back at that path, or go "
            "online to download it, then export again."
        ) from e


def check_format(config: ExportConfig, base_config, spec: models.ModelSpec) -> None:
    """Refusals that depend on the format: the GGUF writer's architectures and tokenizers."""
    if not config.writes_gguf:
        return
    from .gguf import check_architecture
    from .gguf_vocab import check_tokenizer

    check_architecture(base_config)  # before the tokenizer loads: it names the architecture
    check_tokenizer(models.load_tokenizer(spec))
