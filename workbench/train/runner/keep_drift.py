"""Keep drift, measured while a run trains: how far the adapter has moved from the base on the
keep set, and which keep answers it changed.

Drift is the mean per-token loss of the base's own answers to the measuring prompts under the
adapter minus under the base, in nats per token: 0 while the model still answers as the base
did (a fresh adapter, whose LoRA B is 0, measures exactly 0), growing as it forgets. Both come
from the one loaded model, the adapter switched off for the base (peft's `disable_adapter`), so
no second copy is held. At the end of the run (and every Nth evaluation if asked) some measuring
prompts are answered greedily with the adapter on and off; the share that changed goes to
metrics.jsonl and the changed pairs to samples.jsonl (not when a person stops the run: a stop stays
quick).
"""

from __future__ import annotations

import contextlib
import threading
import time

from transformers import TrainerCallback

from ...keep.record import KeepRecord
from ...persist import append_jsonl
from ..config import TrainConfig
from ..folder import RunFolder

BATCH = 8
IGNORE = -100
MIN_EVERY = 10  # steps between measurements of a run without an eval split, at least


class KeepDriftCallback(TrainerCallback):
    """Measures `keep_drift` at each evaluation (without an eval split, every eval_steps or about
    five times a run) and at the end; evaluations past the drift limit never count as best (keep_best,
    early stopping), so the best task metric is chosen among those that kept the rest."""

    def __init__(
        self,
        folder: RunFolder,
        record: KeepRecord,
        tokenizer,
        config: TrainConfig,
        has_eval: bool,
        stopped: threading.Event | None = None,
    ):
        import datasets

        from ...templates.stops import stop_token_ids

        self.folder, self.record, self.tokenizer = folder, record, tokenizer
        self.best_metric = f"eval_{config.best_metric.removeprefix('eval_')}"  # as builders.py
        self.has_eval = has_eval
        # an interval a person set; a planned one is only a guide here (at least MIN_EVERY)
        self.eval_steps = None if "eval_steps" in config.reasons else config.eval_steps
        self.stopped = stopped  # set when a person stopped the run: no answers, a quick stop
        self.examples = datasets.load_from_disk(str(folder.data_dir / "keep"))
        self.stop_ids = stop_token_ids(tokenizer)
        self.base_rows: list[tuple[float, int]] | None = None  # the base's, measured once
        self.tuned_rows: list[tuple[float, int]] | None = None  # the adapter's, last measured
        self.evaluations = 0
        self.last_measured = -1

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if not self.has_eval or model is None or not state.is_world_process_zero:
            return
        drift = self._measure(state.global_step, model)
        self.evaluations += 1
        if metrics is not None:
            metrics["eval_keep_drift"] = drift
            limit = self.record.drift_limit
            if limit is not None and drift > limit and self.best_metric in metrics:
                worst = float("inf") if self.best_metric.endswith("loss") else float("-inf")
                metrics[self.best_metric] = worst  # never the best: it forgot too much
        every = self.record.answers_every
        if every and self.evaluations % every == 0:
            self._answer(state.global_step, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        """Without an eval split: every eval_steps, or about five times a run (at most every
        MIN_EVERY steps); the end of the run is always measured."""
        every = self.eval_steps or max(MIN_EVERY, state.max_steps // 5)
        due = not self.has_eval and state.global_step % every == 0
        if due and model is not None and state.is_world_process_zero:
            self._measure(state.global_step, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is None or not state.is_world_process_zero:
            return
        if self.last_measured != state.global_step:
            self._measure(state.global_step, model)
        if self.stopped is None or not self.stopped.is_set():
            self._answer(state.global_step, model)

    def _measure(self, step: int, model) -> float:
        started = time.perf_counter()
        if self.base_rows is None:
            with adapter_off(model):
                self.base_rows = row_losses(model, self.examples, self.tokenizer)
        self.tuned_rows = row_losses(model, self.examples, self.tokenizer)
        drift = mean_loss(self.tuned_rows) - mean_loss(self.base_rows)
        self.last_measured = step
        seconds = time.perf_counter() - started
        record = {"step": step, "keep_drift": drift, "keep_drift_seconds": seconds}
        append_jsonl(self.folder.metrics_file, record)
        return drift

    def _answer(self, step: int, model) -> None:
        """Greedy answers with the adapter on and off; each pair, with the prompt's own drift
        at the last measurement, into samples.jsonl, and the share changed into metrics."""
        from .callbacks import answer_probes

        started = time.perf_counter()
        items = self.record.measure[: self.record.answers]
        prompts = [m.prompt for m in items]
        n = self.record.max_new_tokens
        tuned = answer_probes(model, self.tokenizer, prompts, n, self.stop_ids)
        with adapter_off(model):
            base = answer_probes(model, self.tokenizer, prompts, n, self.stop_ids)
        drifts = self._drift_by_item()
        for k, (item, before, after) in enumerate(zip(items, base, tuned)):
            sample = {"step": step, "keep": item.id, "base": before, "answer": after}
            sample |= {"changed": before != after, "drift": drifts.get(k)}
            append_jsonl(self.folder.samples_file, sample)
        changed = sum(b != t for b, t in zip(base, tuned)) / max(len(items), 1)
        seconds = time.perf_counter() - started
        record = {"step": step, "keep_changed": changed, "keep_answer_seconds": seconds}
        append_jsonl(self.folder.metrics_file, record)

    def _drift_by_item(self) -> dict[int, float]:
        """Each measuring prompt's own drift (by its place in keep.json), from the last
        measurement; prompts whose base answer was empty have none."""
        if self.base_rows is None or self.tuned_rows is None:
            return {}
        pairs = zip(self.examples["row"], self.base_rows, self.tuned_rows)
        return {row: _mean(t) - _mean(b) for row, b, t in pairs}


@contextlib.contextmanager
def adapter_off(model):
    """The base model's forward passes, from the same weights: peft's disable_adapter."""
    peft_model = getattr(model, "module", model)  # under DDP the PeftModel is wrapped
    with peft_model.disable_adapter():
        yield


def row_losses(model, examples, tokenizer) -> list[tuple[float, int]]:
    """(summed loss in nats, trained tokens) of each row of `examples` (input_ids, labels) under
    `model` as it stands, in eval mode and without gradients; batches of BATCH rows of like
    length, padded on the right. Logits are computed only where a trained token is predicted (transformers'
    `logits_to_keep` mask): the vocabulary projection is most of the cost of a small model."""
    import torch

    from .callbacks import evaluating

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = examples[: len(examples)]
    order = sorted(range(len(examples)), key=lambda k: len(rows["input_ids"][k]))  # little padding
    found: dict[int, tuple[float, int]] = {}
    with evaluating(model), torch.no_grad():
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            ids = [rows["input_ids"][k] for k in batch]
            labels = [rows["labels"][k] for k in batch]
            padded = _padded(ids, labels, pad, model.device)
            found.update(zip(batch, _batch_losses(model, *padded)))
    return [found[k] for k in range(len(examples))]


def _batch_losses(model, ids, labels, mask) -> list[tuple[float, int]]:
    """Per row (summed loss, tokens) of one padded batch; positions predicting a label only."""
    import torch
    import torch.nn.functional as F

    predicts = torch.zeros_like(mask, dtype=torch.bool)  # position t predicts label t + 1
    predicts[:, :-1] = labels[:, 1:] != IGNORE
    targets = labels[:, 1:][predicts[:, :-1]]
    try:
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=predicts).logits
        logits = logits.reshape(-1, logits.shape[-1])
        if logits.shape[0] != targets.shape[0]:
            raise ValueError("this model keeps logits differently")
    except (TypeError, ValueError, IndexError, RuntimeError):  # a model without the mask form
        logits = model(input_ids=ids, attention_mask=mask).logits[predicts]
    losses = F.cross_entropy(logits.float(), targets, reduction="none")
    owner = predicts.nonzero()[:, 0]  # the row of each kept position
    sums = torch.zeros(ids.shape[0], dtype=torch.float64).index_add_(0, owner, losses.double())
    counts = predicts.sum(dim=1)
    return list(zip(sums.tolist(), counts.tolist()))


def mean_loss(rows: list[tuple[float, int]]) -> float:
    """Loss per token over all rows (nats): the rows' summed losses over their summed tokens."""
    return sum(total for total, _ in rows) / max(sum(count for _, count in rows), 1)


def _mean(row: tuple[float, int]) -> float:
    return row[0] / max(row[1], 1)


def _padded(ids: list[list[int]], labels: list[list[int]], pad: int, device):
    import torch

    width = max(len(x) for x in ids)
    ids_t = torch.full((len(ids), width), pad, dtype=torch.long)
    labels_t = torch.full((len(ids), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for k, (row, label) in enumerate(zip(ids, labels)):
        ids_t[k, : len(row)] = torch.tensor(row)
        labels_t[k, : len(label)] = torch.tensor(label)
        mask[k, : len(row)] = 1
    return ids_t.to(device), labels_t.to(device), mask.to(device)
