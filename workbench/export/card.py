"""The model card (README.md) of an export: what it is, what made it, how well it does.

It states the base model and its licence, the data (source, fingerprint, rows trained), the
template in full, the train config, the evaluation figures the workspace already has for this
model (read from the answer cache, never computed here), the parity line and how to run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import models
from ..templates.template import Template
from .result import Parity

EMBEDDED_ORGANIZATION = "HuggingFaceTB"  # who published the embedded SmolLM2 on the Hub


@dataclass(frozen=True)
class CardFacts:
    """What the workspace knows about an exported model, for its card."""

    name: str
    base_model: models.ModelSpec
    license: str | None = None
    data_source: str | None = None
    data_fingerprint: str | None = None
    train_rows: int | None = None
    train_config: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None  # {"scorer", "rows", "scores": {model: share}}
    notes: list[str] = field(default_factory=list)


def base_license(spec: models.ModelSpec) -> str | None:
    """The base model's licence from its metadata (GGUF, README front matter), or None."""
    try:
        if spec.is_embedded:
            header = models.gguf_header(models.embedded_gguf_path(), ["general.license"])
            return header.get("general.license")
        readme = Path(spec.name_or_path) / "README.md"
        if not readme.is_file():
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(spec.name_or_path, "README.md", revision=spec.revision)
            readme = Path(cached) if isinstance(cached, str) else readme
        if readme.is_file():
            from huggingface_hub.repocard import metadata_load

            return (metadata_load(readme) or {}).get("license")
    except Exception:  # a licence we cannot read is reported as unknown, never fatal
        return None
    return None


def hub_id(spec: models.ModelSpec) -> str | None:
    """The base model's Hub repo id for the card's front matter; None for a local folder."""
    if spec.is_embedded:
        return f"{EMBEDDED_ORGANIZATION}/{spec.display_name}"
    name = spec.name_or_path
    return name if name.count("/") == 1 and not Path(name).exists() else None


def model_card(
    facts: CardFacts, template: Template, export_format: str, parity: Parity, usage: list[str]
) -> str:
    """The README.md text: YAML front matter the Hub reads, then the facts for people."""
    base = facts.base_model.display_name
    front = {
        "base_model": hub_id(facts.base_model),
        "license": facts.license,
        "library_name": {"adapter": "peft", "merged": "transformers"}.get(export_format, "gguf"),
        "tags": ["tuning-workbench", "lora", export_format],
    }
    lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in front.items() if v is not None), "---"]
    lines += [
        f"# {facts.name}",
        "",
        f"A LoRA fine-tune of **{base}**, exported as {export_format}.",
    ]
    lines += ["", "## Base model", f"- {base} (licence: {facts.license or 'unknown: check it'})"]
    lines += ["", "## Data", *_data_lines(facts)]
    lines += ["", "## Template", f"`{template.name}`, training on `{template.train_on}`:"]
    lines += ["```jinja", template.jinja, "```"]
    if facts.train_config:
        lines += ["", "## Train config", "```json", json.dumps(facts.train_config, indent=2), "```"]
    lines += ["", "## Evaluation", *_evaluation_lines(facts)]
    lines += ["", "## Parity", parity.line()]
    lines += [f"- {note}" for note in facts.notes]
    lines += ["", "## Use", "```", *usage, "```", ""]
    return "\n".join(lines)


def _data_lines(facts: CardFacts) -> list[str]:
    return [
        f"- source: {facts.data_source or 'unknown'}",
        f"- fingerprint: {facts.data_fingerprint or 'unknown'}",
        f"- rows trained: {facts.train_rows if facts.train_rows is not None else 'unknown'}",
    ]


def _evaluation_lines(facts: CardFacts) -> list[str]:
    found = facts.evaluation
    if not found:
        return [
            "No evaluation of this model is cached in the workspace; run "
            f"`session.evaluate({facts.name!r})` before exporting to record one here."
        ]
    lines = [f"{found['scorer']} on {found['rows']} eval rows (greedy):"]
    lines += [f"- {model}: {score:.1%}" for model, score in found["scores"].items()]
    return lines


def cached_evaluation(generator, names: list[str], rows: list[dict], cache) -> dict | None:
    """Exact-match scores of `names` on `rows` from cached answers only, or None when any
    answer is missing (nothing is generated: the card reports what the workspace knows)."""
    from ..answers.evaluate import AnswerCache, exact_match, split_turns
    from ..answers.generate import GenerationSettings

    if cache is None or not rows:
        return None
    settings = GenerationSettings()  # session.evaluate's defaults
    scores = {}
    for name in names:
        fingerprint = generator.fingerprint(name)
        results = []
        for row in rows:
            prompt, _ = split_turns(row)
            key = AnswerCache.key(fingerprint, generator.render(name, prompt, settings), settings)
            answer = cache.get(key)
            if answer is None:
                return None
            results.append(float(exact_match(row, answer)))
        scores[name] = sum(results) / len(results)
    return {"scorer": "exact_match", "rows": len(rows), "scores": scores}
