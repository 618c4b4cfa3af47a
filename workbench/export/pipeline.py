"""One export from start to finish: load, record the reference, write, read back, check.

Everything is written into a staging folder beside the target and renamed when the parity check
has passed (or, for a quantised GGUF, has been reported), so a failure leaves nothing at the
target. One model copy is in memory at a time: the base with its adapter while the reference is
recorded and the export written, then (freed first) the export read back from disk. The Session
gathers what it knows into an ExportJob; this module needs no Session.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import models
from ..persist import atomic_write_json
from ..resources import release_freed_memory
from ..templates.template import Template
from . import adapter as adapter_format
from . import merged, ollama, parity
from .card import CardFacts, model_card
from .config import ExportConfig
from .result import Export, Parity, ParityError
from .source import ExportSource
from .staging import folder_files, staged
from .turns import stop_ids

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""`progress(stage, done, total)`: the export's stages, counted (for a progress bar)."""

STAGES = ("load", "reference", "write", "check", "finish")
STAGE_WORDS = {  # what each stage does, as a progress line says it
    "load": "loading the model and its adapter",
    "reference": "recording the reference answers",
    "write": "writing the files",
    "check": "reading the export back and comparing its answers",
    "finish": "writing the model card",
}


@dataclass
class ExportJob:
    """Everything one export needs, gathered by the Session before any work starts."""

    source: ExportSource
    path: Path
    config: ExportConfig
    template: Template  # the template the adapter answers with in the workbench
    prompts: list[list[dict]]
    probe_source: str
    card: CardFacts
    evaluation: Callable[[], dict[str, Any] | None] | None = None  # cached figures, read last


@dataclass
class Written:
    """What a format wrote: its main file (GGUF) and notes for people."""

    file: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def run_export(job: ExportJob, progress: Progress | None = None) -> Export:
    """Write the export of `job` to job.path; raises ParityError (nothing written) when an
    unquantised export answers differently, ExportError for other refusals."""
    started = time.time()
    tell = _teller(progress)
    spec, config = job.source.spec, job.config
    device = models.best_device()
    with staged(job.path, config.overwrite) as folder:
        tell("load")
        tokenizer = models.load_tokenizer(spec)
        bound = job.template.with_tokenizer(tokenizer)
        template = Template(bound.jinja, bound.name, bound.train_on)  # resolved, unbound
        stops = stop_ids(bound, tokenizer)
        peft = merged.load_with_adapters(spec, job.source.adapters, device)
        tell("reference")
        scratch = folder / ".parity"  # the reference logits; removed before the rename
        ref = parity.reference(peft, tokenizer, bound, job.prompts, config.max_new_tokens, scratch)
        tell("write")
        written = WRITERS[config.format](job, peft, tokenizer, bound, folder)
        # The model and the base tokenizer go before the export is read back (with its own
        # tokenizer): one copy of each at a time, and their freed pages back to the OS.
        del peft, tokenizer, bound
        release_freed_memory()
        tell("check")
        result = READERS[config.format](job, folder, written, stops, ref, device)
        shutil.rmtree(scratch)
        tell("finish")
        if config.parity_required and not result.passed:
            raise ParityError(result.error_message(job.path), result)
        commands = usage(config.format, job.path, written.file, job.source.name)
        export = Export(job.path, config.format, job.source.name, {}, result, commands)
        export.notes = list(written.notes)
        _write_card(folder, job, template, export)
        _write_record(folder, job, result, ref)
        export.files = folder_files(folder)
    export.seconds = time.time() - started
    return export


# -- writers: the adapter (with the reference recorded) is in memory ---------------------------
def _write_adapter(job, peft, tokenizer, template, folder) -> Written:
    adapter_format.save_adapter(job.source.adapter, tokenizer, template, folder)
    return Written()


def _write_merged(job, peft, tokenizer, template, folder) -> Written:
    model = merged.merge(peft)
    merged.save_merged(model, tokenizer, template, folder, job.config.dtype, job.config.shard_size)
    return Written()


def _write_gguf(job, peft, tokenizer, template, folder) -> Written:
    from .gguf import write_gguf

    config = job.config
    name = gguf_file_name(job.source.name, config.quantization)
    write_gguf(
        merged.merge(peft), tokenizer, template, folder / name, config.quantization, job.source.name
    )
    notes = []
    if config.format == "ollama":
        text, note = ollama.modelfile(name, template, tokenizer, config.system_prompt)
        (folder / "Modelfile").write_text(text, encoding="utf-8")
        notes += [note] if note else []
    return Written(name, notes)


WRITERS = {"adapter": _write_adapter, "merged": _write_merged, "gguf": _write_gguf}
WRITERS["ollama"] = _write_gguf


# -- readers: the export read back from disk, as a user would, and checked ---------------------
def _check_adapter(job, folder, written, stops, ref, device) -> Parity:
    from peft import PeftModel

    base = models.load_model(job.source.spec, device=device)
    model = PeftModel.from_pretrained(base, str(folder))
    exported = models.load_tokenizer(models.ModelSpec(str(folder)))
    return _check(job, model, exported, ref, "adapter", "float32", device)


def _check_merged(job, folder, written, stops, ref, device) -> Parity:
    model = merged.load_merged(folder, device)
    exported = models.load_tokenizer(models.ModelSpec(str(folder)))
    declared = model.generation_config.eos_token_id  # what generate() will stop on
    declared = [declared] if isinstance(declared, int) else list(declared or [])
    dtype = merged.saved_dtype(folder)
    return _check(job, model, exported, ref, f"merged {dtype}", dtype, device, stops=declared)


def _check_gguf(job, folder, written, stops, ref, device) -> Parity:
    from .gguf import declared_stops

    model, exported = read_gguf(folder, written.file, device)
    kind = job.config.quantization
    result = _check(job, model, exported, ref, f"GGUF {kind.upper()}", kind, device)
    if stops[0] not in declared_stops(folder / written.file):
        result.problems.append(f"the GGUF does not declare token {stops[0]} as its end of turn")
    return result


READERS = {"adapter": _check_adapter, "merged": _check_merged, "gguf": _check_gguf}
READERS["ollama"] = _check_gguf


def _check(job, model, tokenizer, ref, artefact: str, tensors: str, device, stops=None) -> Parity:
    """Parity of an export read back: `tensors` is its weights' type ("float32", "f16", "q8_0"),
    run in the device's compute dtype; their rounding sets the tolerance."""
    config = job.config
    compute = str(models.compute_dtype(device)).removeprefix("torch.")
    return parity.check(
        model,
        tokenizer,
        tokenizer.chat_template,
        ref,
        config.max_new_tokens,
        artefact,
        config.parity_required,
        parity.tolerance(tensors, compute),
        stops=stops,
    )


def read_gguf(folder: Path, name: str, device: str):
    """The GGUF's model and tokenizer, read back through transformers' own GGUF loader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = models.compute_dtype(device)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name, dtype=dtype)
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def gguf_file_name(name: str, quantization: str) -> str:
    """The GGUF file's name: the model's name and its tensor type, as llama.cpp names them."""
    return f"{ollama.ollama_name(name)}.{quantization.upper()}.gguf"


def usage(export_format: str, path: Path, artefact: str | None, name: str) -> list[str]:
    """The commands (or lines of Python) that load or serve the export."""
    if export_format == "merged":
        return [
            f"python -c \"from transformers import pipeline; print(pipeline('text-generation', "
            f"{str(path)!r})([{{'role': 'user', 'content': 'Hi'}}]))\"",
            f"vllm serve {path}",
        ]
    if export_format == "adapter":
        return [
            f'python -c "from peft import AutoPeftModelForCausalLM; '
            f'AutoPeftModelForCausalLM.from_pretrained({str(path)!r})"',
        ]
    lines = [f"llama-server -m {path / str(artefact)} --jinja"]
    if export_format == "ollama":
        lines = [*ollama.commands(str(path), name), *lines]
    return lines


def _write_card(folder: Path, job: ExportJob, template: Template, export: Export) -> None:
    evaluation = None
    if job.evaluation is not None:
        try:
            evaluation = job.evaluation()
        except Exception:  # the card says "not evaluated"; the export itself is fine
            log.warning("Could not read the cached evaluation for the card", exc_info=True)
    notes = [*job.card.notes, *export.notes]
    facts = dataclasses.replace(job.card, evaluation=evaluation, notes=notes)
    card = model_card(facts, template, job.config.format, export.parity, export.commands)
    (folder / "README.md").write_text(card, encoding="utf-8")


def _write_record(folder: Path, job: ExportJob, result: Parity, ref: parity.Reference) -> None:
    from ..answers.adapters import file_sha256

    atomic_write_json(
        folder / "export.json",
        {
            "model": job.source.name,
            "format": job.config.format,
            "config": job.config.to_json(),
            "base_model": job.source.spec.to_json(),
            "adapter_sha256": file_sha256(job.source.adapter / "adapter_model.safetensors"),
            "template": job.template.name,
            "probe_source": job.probe_source,
            "probes": [{"prompt": p, "answer": a} for p, a in zip(ref.prompts, ref.answers)],
            "parity": result.to_json(),
            "created": time.time(),
        },
    )


def _teller(progress: Progress | None) -> Callable[[str], None]:
    def tell(stage: str) -> None:
        if progress is not None:
            progress(stage, STAGES.index(stage), len(STAGES))

    return tell
