"""Trainer callbacks of the runner: metrics to metrics.jsonl, stop requests, non-finite losses,
GRPO's sample completions to the log, probe answers at each evaluation.

Every process of a run has them; only the main one writes, and stop decisions are agreed by all.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time

from transformers import TrainerCallback

from ...persist import append_jsonl
from ...resources import peak_rss_gb
from ..folder import HEARTBEAT_SECONDS, RunFolder, RunProgress, RunStatus
from ..probes import Probe
from .collate import TokenCounter
from .ranks import any_rank, sum_over_ranks

# What metrics.jsonl keeps of a log record: these keys, and keys under these prefixes.
KEPT_KEYS = frozenset(
    {
        "loss",
        "eval_loss",
        "learning_rate",
        "grad_norm",
        "accuracy",  # reward models: chosen scored above rejected, and the mean margin
        "margin",
        "eval_accuracy",
        "eval_margin",
        "reward",  # GRPO: the weighted reward, its spread, the KL term
        "reward_std",
        "kl",
        "entropy",
        "frac_reward_zero_std",
    }
)
KEPT_PREFIXES = (
    "rewards/",  # DPO's rewards, margins, accuracies; GRPO's rewards/NAME/mean and /std
    "logps/",
    "eval_rewards/",
    "completions/",  # GRPO: completion lengths and the share cut at max_completion_length
)


def kept(key: str, value) -> bool:
    """Whether metrics.jsonl keeps this log entry (a number, under a known key)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False  # TRL logs None where a metric had no valid value
    return key in KEPT_KEYS or key.startswith(KEPT_PREFIXES)


GB = 1024**3
# What status.json's extra keeps of a record, beside the peak memory: the progress line's figures.
STATUS_KEYS = ("eta_s", "tokens_per_s", "epoch")


def peak_memory() -> dict[str, float]:
    """This process's peak memory so far, in GB (1024**3 bytes).

    peak_rss_gb: the resident set (resources.peak_rss_gb); on a GPU also torch's peak allocated and reserved
    bytes. peak_memory_gb is the figure that decides whether a run fits: reserved GPU memory on a
    GPU, the resident set on a CPU.
    """
    found = {"peak_rss_gb": peak_rss_gb()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        found["peak_gpu_allocated_gb"] = torch.cuda.max_memory_allocated() / GB
        found["peak_gpu_reserved_gb"] = torch.cuda.max_memory_reserved() / GB
    found["peak_memory_gb"] = found.get("peak_gpu_reserved_gb", found["peak_rss_gb"])
    return {k: round(v, 4) for k, v in found.items()}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped."""


class MetricsCallback(TrainerCallback):
    """Append one record per logging step: loss, learning rate, grad norm, tokens/s, ETA, and the
    process's peak memory so far (see peak_memory)."""

    def __init__(self, folder: RunFolder, counter: TokenCounter, status: RunStatus):
        self.folder, self.counter, self.status = folder, counter, status
        self.start = time.time()
        self.last_time, self.last_tokens, self.last_trained = self.start, 0, 0
        self.first_step: int | None = None
        self.at_step_end = (0, 0)
        self.step_end_time = self.start
        self.eval_tokens = self.eval_trained = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step = state.global_step  # after a resume, rates count from here

    def on_step_end(self, args, state, control, **kwargs):
        self.at_step_end = (self.counter.tokens, self.counter.trained)
        self.step_end_time = time.time()

    def on_evaluate(self, args, state, control, **kwargs):
        # evaluation batches pass through the same collator: keep them out of the training counts
        tokens, trained = self.at_step_end
        self.eval_tokens += self.counter.tokens - tokens
        self.eval_trained += self.counter.trained - trained
        self.at_step_end = (self.counter.tokens, self.counter.trained)
        self.last_time += time.time() - self.step_end_time  # nor the time spent evaluating

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs and "eval_loss" not in logs:
            return  # the end-of-training summary repeats what was logged
        # every rank logs the same records at the same step: the count is one all-reduce
        tokens, trained = sum_over_ranks(
            self.counter.tokens - self.eval_tokens, self.counter.trained - self.eval_trained
        )
        if "loss" in logs and not math.isfinite(float(logs["loss"])):
            raise NonFiniteLossError(
                f"The loss became {logs['loss']} at step {state.global_step}. Lower the learning "
                f"rate (now {args.learning_rate:g}), or look for broken rows; the last checkpoint "
                "is kept."
            )
        record = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "time": time.time(),
        }
        for key, value in logs.items():
            if kept(key, value):
                record[key] = float(value)
        if "loss" in logs:
            record.update(self._rates(state, tokens, trained))
        record.update(peak_memory())
        if not getattr(state, "is_world_process_zero", True):
            return
        append_jsonl(self.folder.metrics_file, record)
        self.status.step, self.status.max_steps = state.global_step, state.max_steps
        progress = RunProgress(**{k: record[k] for k in STATUS_KEYS if k in record})
        progress.update(peak_memory())
        self.status.progress = progress

    def _rates(self, state, tokens: int, trained: int) -> dict:
        now = time.time()
        span = max(now - self.last_time, 1e-9)
        rates = {
            "tokens_per_s": (tokens - self.last_tokens) / span,
            "trained_tokens_per_s": (trained - self.last_trained) / span,
            "elapsed_s": now - self.start,
            "tokens_seen": tokens,
            "trained_tokens_seen": trained,
        }
        self.last_time, self.last_tokens, self.last_trained = now, tokens, trained
        done = state.global_step - (self.first_step or 0)
        remaining = state.max_steps - state.global_step
        rates["eta_s"] = rates["elapsed_s"] / done * remaining if done > 0 else None
        return rates


class SampleCallback(TrainerCallback):
    """Print a few completions of the latest GRPO batch, with each reward, at every log."""

    def __init__(self, samples):
        self.samples = samples

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in (logs or {}) and getattr(state, "is_world_process_zero", True):
            for line in self.samples.lines(state.global_step):
                print(line, flush=True)


class StopCallback(TrainerCallback):
    """End training after the current step, with a checkpoint, when a stop is requested.

    A request is a signal to any process or the run folder's `stop` file; all processes agree
    on it at the same step, so they save the same checkpoint and none waits on the others.
    """

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.requested = threading.Event()

    def on_step_end(self, args, state, control, **kwargs):
        asked = self.requested.is_set() or self.folder.stop_file.exists()
        if any_rank(asked):
            self.requested.set()
            control.should_save = True
            control.should_training_stop = True


class Heartbeat:
    """Rewrite status.json every few seconds so a reader can tell a live runner from a dead one;
    each beat also brings the process's peak memory up to date (also while the model loads)."""

    def __init__(self, folder: RunFolder, status: RunStatus):
        self.folder, self.status = folder, status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.is_set():
            self.status.heartbeat = time.time()
            # In place: a new dict built from a stale read could undo a record's newer figures.
            self.status.progress.update(peak_memory())
            with contextlib.suppress(OSError):  # a full disk: training meets it and reports it
                self.folder.write_status(self.status)
            self._stop.wait(HEARTBEAT_SECONDS)


class ProbeCallback(TrainerCallback):
    """At each evaluation, answer the probes greedily with the current adapter (batched, no
    gradients, the run's template and stop tokens) and append them to samples.jsonl; the exact
    match of those with a reference goes to metrics.jsonl and the evaluation's metrics as
    `probe_score` (what keep_best can select on), with the seconds the answers took."""

    def __init__(self, folder: RunFolder, probes: list[Probe], tokenizer, max_new_tokens: int):
        from ...templates.stops import stop_token_ids

        self.folder, self.probes, self.tokenizer = folder, probes, tokenizer
        self.max_new_tokens = max_new_tokens
        self.stop_ids = stop_token_ids(tokenizer)

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if not self.probes or model is None or not state.is_world_process_zero:
            return
        from ...answers.evaluate import normalise

        started = time.perf_counter()
        answers = answer_probes(
            model,
            self.tokenizer,
            [p.prompt for p in self.probes],
            self.max_new_tokens,
            self.stop_ids,
        )
        marks = []
        for probe, answer in zip(self.probes, answers):
            correct = None
            if probe.reference is not None:
                correct = normalise(answer) == normalise(probe.reference)
                marks.append(correct)
            append_jsonl(
                self.folder.samples_file,
                {
                    "step": state.global_step,
                    "probe": probe.id,
                    "answer": answer,
                    "reference": probe.reference,
                    "correct": correct,
                },
            )
        record = {"step": state.global_step, "probe_seconds": time.perf_counter() - started}
        if marks:
            record["probe_score"] = sum(marks) / len(marks)
            if metrics is not None:
                metrics["eval_probe_score"] = record["probe_score"]
        append_jsonl(self.folder.metrics_file, record)


def answer_probes(model, tokenizer, prompts: list[str], max_new_tokens: int, stop_ids) -> list[str]:
    """Greedy answers of `model` (in its current state) to rendered `prompts`, in one batch."""
    import torch

    batch = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(model.device)
    settings = {"max_new_tokens": max_new_tokens, "do_sample": False, "eos_token_id": stop_ids}
    with evaluating(model), torch.no_grad():
        out = model.generate(**batch, **settings, pad_token_id=tokenizer.pad_token_id)
    new = out[:, batch["input_ids"].shape[1] :]
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in new]


@contextlib.contextmanager
def evaluating(model):
    """Eval mode (no dropout) for answers and losses taken while a run trains, restored after.
    bitsandbytes' 4-bit layers stay in training mode: on a CPU with AVX512-BF16 their eval-mode
    forward repacks the weights in place for inference, which fails for layers narrower than its
    quantisation block (64) and would have to be undone before the next training step."""
    training = model.training
    model.eval()
    for module in model.modules():
        if getattr(getattr(module, "weight", None), "quant_state", None) is not None:
            module.training = True
    try:
        yield
    finally:
        model.train(training)
