"""ExportConfig: how a tuned model leaves the workbench, with each field's help as metadata.

The formats, the merged weights' dtypes and the GGUF tensor types are listed here once; the
Session method, the export pipeline and the Export panel's form all read them from this module.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from ..persist import fields_from_json
from ..settings import documented, setting
from .modelfile_values import ModelfileValueError, quoted

FORMATS = ("merged", "gguf", "ollama", "adapter")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# The GGUF tensor types the `gguf` package can write itself. Its quantiser also makes the old
# 4/5-bit types (Q4_0, Q5_1, ...), which K-quants replaced, and ternary/MXFP4 types, which only
# suit models trained for them; the K-quants people use (Q4_K_M, Q5_K_M, Q6_K) it can only read.
# For those, run llama.cpp's `llama-quantize` on the F16 file this writes.
QUANTIZATIONS = ("f16", "bf16", "q8_0")
UNQUANTIZED = ("f16", "bf16")
SHARD_SIZE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$", re.IGNORECASE)


class ExportError(ValueError):
    """An export was refused or failed; the message names what and what to do. Nothing is
    left at the export path."""


@documented
@dataclass(frozen=True)
class ExportConfig:
    """Settings of one export; every field has help (and choices) for the Export panel's form."""

    format: str = setting(
        "merged",
        "merged: safetensors for transformers or vLLM; gguf: one file for llama.cpp or LM "
        "Studio; ollama: the GGUF plus a Modelfile; adapter: the LoRA adapter alone.",
        choices=FORMATS,
    )
    dtype: str = setting(
        "auto",
        "Merged weights' dtype. auto: the dtype the merge computes in (float32 on a CPU, "
        "bfloat16 or float16 on a GPU); bfloat16 halves a CPU export's size.",
        choices=DTYPES,
    )
    quantization: str = setting(
        "f16",
        "GGUF tensor type. f16 and bf16 keep the merged weights (parity is required); q8_0 "
        "is about half the size (parity is reported, not required).",
        choices=QUANTIZATIONS,
    )
    shard_size: str = setting(
        "5GB", "Largest safetensors file of a merged export, e.g. '2GB' or '500MB'."
    )
    probes: int = setting(
        8, "Eval prompts the exported model must answer as the adapter does.", min=1, max=64
    )
    max_new_tokens: int = setting(
        48, "Tokens of each probe answer compared in the parity check.", min=1, max=1024
    )
    system_prompt: str | None = setting(
        None, "Ollama's SYSTEM line; None: the template's own default system message, if any."
    )
    overwrite: bool = setting(
        False, "Replace a non-empty folder at the export path (only once the export succeeds)."
    )

    def __post_init__(self) -> None:
        for name, allowed in (
            ("format", FORMATS),
            ("dtype", DTYPES),
            ("quantization", QUANTIZATIONS),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ExportError(f"{name} must be one of {list(allowed)}; got {value!r}.")
        if not isinstance(self.shard_size, str) or not SHARD_SIZE.match(self.shard_size):
            raise ExportError(
                f"shard_size is a size such as '5GB' or '500MB'; got {self.shard_size!r}."
            )
        if self.format == "ollama" and self.system_prompt is not None:
            try:
                quoted(self.system_prompt)
            except ModelfileValueError as e:
                raise ExportError(
                    f"system_prompt cannot be Ollama's SYSTEM as given: {e}."
                ) from None
        for name in ("probes", "max_new_tokens"):
            value, meta = getattr(self, name), _field(name).metadata
            if not isinstance(value, int) or not meta["min"] <= value <= meta["max"]:
                raise ExportError(
                    f"{name} must be an int in [{meta['min']}, {meta['max']}]; got {value!r}."
                )

    @property
    def writes_gguf(self) -> bool:
        """Whether this export writes a GGUF file (gguf and ollama)."""
        return self.format in ("gguf", "ollama")

    @property
    def parity_required(self) -> bool:
        """Whether a differing probe answer fails the export (every format but quantised GGUF)."""
        return not self.writes_gguf or self.quantization in UNQUANTIZED

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (`from_json` reads it back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "export settings") -> ExportConfig:
        """Settings from `to_json` output; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))


def _field(name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(ExportConfig) if f.name == name)
