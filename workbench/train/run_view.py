"""How a Run shows itself in a notebook: its state, progress, last loss, adapter and what to do.

`Run._repr_html_` returns `run_html(run)`: one short, escaped block, so `run` as the last line of
a cell reads as a sentence and a few figures instead of a bare repr. Pure: no widgets, no
plotting; the live view is widgets.TrainingLauncher.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from ..data.excerpt import clip

if TYPE_CHECKING:
    from .folder import RunStatus
    from .run import Run

MESSAGE_CHARS = 500  # a failed run's message as the notebook shows it


def progress_facts(run: Run, status: RunStatus, step: int | None = None) -> list[str]:
    """The run's progress in words, as every view shows it: step of max_steps, then the ETA
    (while active), tokens/s and peak memory as far as known. `step`: a later step than the
    status's (the launcher's chart may be ahead of status.json)."""
    total = status.max_steps or run.config.max_steps
    step = max(status.step, step or 0)
    facts = [f"step {step:,}/{total:,}" if total and total > 0 else f"step {step:,}"]
    progress = status.progress
    if status.active and progress.eta_s is not None:
        facts.append(f"ETA {progress.eta_s / 60:.1f} min")
    if progress.tokens_per_s:
        facts.append(f"{progress.tokens_per_s:.0f} tokens/s")
    if progress.peak_memory_gb:  # the runner's own peak, measured
        facts.append(f"peak {progress.peak_memory_gb:.2f} GB")
    return facts


def run_html(run: Run) -> str:
    """The run's name and state, its progress (progress_facts) with its method and last train
    and eval loss, the adapter folder once written, and a failed run's message with what to do."""
    status = run.status
    step, *rest = progress_facts(run, status)
    losses = _last_losses(run.metrics)
    facts = [step, f"method {run.config.method}"]
    facts += [f"{name} {value:.4g}" for name, value in losses.items()]
    facts += rest
    lines = [
        f"<b>{html.escape(run.name)}</b>: {html.escape(status.state)} · "
        + html.escape(" · ".join(facts))
    ]
    if run.adapter_path is not None:
        lines.append(f"Adapter: <code>{html.escape(str(run.adapter_path))}</code>")
    if status.state in ("failed", "died", "cancelled") and status.message:
        lines.append(html.escape(clip(status.message, MESSAGE_CHARS)))
    elif status.active:
        lines.append("run.wait() blocks until it ends; run.stop() stops it after this step.")
    return "<div>" + "<br>".join(lines) + "</div>"


def _last_losses(records: list[dict]) -> dict[str, float]:
    """The latest finite train loss and eval loss in the metrics records."""
    found: dict[str, float] = {}
    for record in reversed(records):
        for key, label in (("loss", "loss"), ("eval_loss", "eval loss")):
            value = record.get(key)
            if label not in found and isinstance(value, (int, float)) and math.isfinite(value):
                found[label] = float(value)
        if len(found) == 2:
            break
    return dict(sorted(found.items(), key=lambda item: item[0] != "loss"))
