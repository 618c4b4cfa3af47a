"""Probe answers during training: a few prompts answered greedily at each evaluation and kept in
samples.jsonl, so a person sees what a run learns beside its loss curve, not only that it learns.

The launcher resolves `TrainConfig.probes` into probes.json when it writes the run folder; the
runner's ProbeCallback (runner/callbacks.py) answers them with the adapter as it stands at each
evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..persist import atomic_write_json, from_json, read_json, read_jsonl
from .config import TrainConfig
from .folder import RunFolder
from .validation import ConfigError

PROBE_METHODS = ("lora", "qlora", "dpo")  # methods whose model answers prompts while it trains


@dataclass
class Probe:
    """One probe: the conversation up to the answer, the text the model continues from (rendered
    with the run's template), and the reference answer when there is one."""

    id: int
    messages: list[dict]
    prompt: str
    reference: str | None = None


def resolve_probes(config: TrainConfig, template, eval_rows: list[dict]) -> list[Probe]:
    """The probes `config.probes` asks for: the first N eval rows (SFT rows or preference pairs,
    their answer or `chosen` the reference), or the given prompts / message lists.

    Raises ConfigError naming a probe whose prompt is longer than the training length.
    """
    if config.method not in PROBE_METHODS or not config.probes:
        return []
    if isinstance(config.probes, int):
        asked = [_from_row(row) for row in eval_rows[: config.probes]]
    else:
        asked = [_from_given(item) for item in config.probes]
    probes = []
    for number, (messages, reference) in enumerate(asked):
        prompt = template.render_prompt(messages)
        length = len(template.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if config.max_length and length > config.max_length:
            raise ConfigError(
                f"probes: probe {number} is {length} tokens, longer than max_length "
                f"({config.max_length}). Shorten it, drop it, or raise max_length."
            )
        probes.append(Probe(number, messages, prompt, reference))
    return probes


def _from_row(row: dict) -> tuple[list[dict], str | None]:
    if "chosen" in row:  # a preference pair: the prompt, and the chosen answer as reference
        prompt = row["prompt"]
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return list(messages), _text(row["chosen"])
    messages = list(row["messages"])
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1], str(messages[-1].get("content", ""))
    return messages, None


def _from_given(item: str | list[dict]) -> tuple[list[dict], str | None]:
    if isinstance(item, str):
        return [{"role": "user", "content": item}], None
    return _from_row({"messages": item})


def _text(answer: Any) -> str:
    if isinstance(answer, list):  # a conversational answer: its last message
        return str(answer[-1].get("content", "")) if answer else ""
    return str(answer)


def write_probes(folder: RunFolder, probes: list[Probe]) -> None:
    atomic_write_json(folder.probes_file, [asdict(p) for p in probes])


def read_probes(folder: RunFolder) -> list[Probe]:
    """probes.json of a run folder ([] when the run has none)."""
    if not folder.probes_file.exists():
        return []
    source = str(folder.probes_file)
    return [from_json(Probe, p, source=source) for p in read_json(folder.probes_file)]


def probe_history(folder: RunFolder) -> list[dict[str, Any]]:
    """samples.jsonl by evaluation, newest first: {"step", "score", "answers": [{"probe",
    "answer", "reference", "correct", "changed"}]}; `changed`: unlike the previous evaluation's."""
    by_step: dict[int, list[dict]] = {}
    for record in read_jsonl(folder.samples_file):
        if "probe" not in record:  # a keep answer (train/runner/keep_drift.py), not a probe's
            continue
        by_step.setdefault(record["step"], []).append(record)
    history, last = [], {}
    for step in sorted(by_step):
        answers = []
        for record in sorted(by_step[step], key=lambda r: r["probe"]):
            before = last.get(record["probe"])
            answers.append({**record, "changed": before is not None and before != record["answer"]})
            last[record["probe"]] = record["answer"]
        scored = [a["correct"] for a in answers if a.get("correct") is not None]
        score = sum(scored) / len(scored) if scored else None
        history.append({"step": step, "score": score, "answers": answers})
    return history[::-1]
