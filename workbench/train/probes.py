"""Probe answers during training: a few prompts answered greedily at each evaluation and kept in
samples.jsonl, so a person sees what a run learns beside its loss curve, not only that it learns.

The launcher resolves `TrainConfig.probes` into probes.json when it writes the run folder; the
runner's ProbeCallback answers them with the adapter as it stands at each evaluation.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from transformers import TrainerCallback

from ..persist import append_jsonl, atomic_write_json, from_json, read_json, read_jsonl
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


class ProbeCallback(TrainerCallback):
    """At each evaluation, answer the probes greedily with the current adapter (batched, no
    gradients, the run's template and stop tokens) and append them to samples.jsonl; the exact
    match of those with a reference goes to metrics.jsonl and the evaluation's metrics as
    `probe_score` (what keep_best can select on), with the seconds the answers took."""

    def __init__(self, folder: RunFolder, probes: list[Probe], tokenizer, max_new_tokens: int):
        from ..answers.model_host import stop_token_ids

        self.folder, self.probes, self.tokenizer = folder, probes, tokenizer
        self.max_new_tokens = max_new_tokens
        self.stop_ids = stop_token_ids(tokenizer)

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if not self.probes or model is None or not state.is_world_process_zero:
            return
        from ..answers.evaluate import normalise

        started = time.perf_counter()
        answers = answer_probes(model, self.tokenizer, [p.prompt for p in self.probes],
                                self.max_new_tokens, self.stop_ids)  # fmt: skip
        marks = []
        for probe, answer in zip(self.probes, answers):
            correct = None
            if probe.reference is not None:
                correct = normalise(answer) == normalise(probe.reference)
                marks.append(correct)
            append_jsonl(self.folder.samples_file, {"step": state.global_step, "probe": probe.id,
                         "answer": answer, "reference": probe.reference, "correct": correct})  # fmt: skip
        record = {"step": state.global_step, "probe_seconds": time.perf_counter() - started}
        if marks:
            record["probe_score"] = sum(marks) / len(marks)
            if metrics is not None:
                metrics["eval_probe_score"] = record["probe_score"]
        append_jsonl(self.folder.metrics_file, record)


def answer_probes(model, tokenizer, prompts: list[str], max_new_tokens: int, stop_ids) -> list[str]:
    """Greedy answers of `model` (in its current state) to rendered `prompts`, in one batch."""
    import torch

    training = model.training
    batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False).to(model.device)  # fmt: skip
    model.eval()
    try:
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    finally:
        model.train(training)
    new = out[:, batch["input_ids"].shape[1] :]
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in new]
