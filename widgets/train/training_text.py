"""The words and lines of the training launcher: the plan's reasons, the estimate, a run's line
in the table and its status line, and why Stop or Resume cannot act. Pure functions of core
objects (no widgets), every piece of text from a run or a setting escaped.
"""

from __future__ import annotations

import html

from workbench.data.excerpt import clip
from workbench.train import Run, TrainConfig
from workbench.train.folder import RunStatus
from workbench.train.launch import resume_refusal
from workbench.train.run_view import progress_facts

from ..common.theme import plural

NOTE_CHARS = 2_000  # a note in the progress line
STOP_DOES = "Stop {run} after its current step (it saves a checkpoint)."
RESUME_DOES = "Continue {run} from its last checkpoint, to the form's max steps."


def plan_html(planned: TrainConfig) -> str:
    """The values plan decided for the form's config, each with its reason (escaped)."""
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        f"<td>{html.escape(repr(getattr(planned, name, '')))}</td>"
        f"<td>{html.escape(reason)}</td></tr>"
        for name, reason in planned.reasons.items()
    )
    return (
        "<details><summary>Planned for this model and hardware (why each value)</summary>"
        f"<table class='wb-table'>{rows}</table></details>"
    )


def estimate_html(est, busy: list[str]) -> str:
    """Memory by part and time per step; while runs train here the time is not given, since it
    would be measured against them (the figure would read two or three times too slow)."""
    memory = (
        f"Estimate: about <b>{est.total_gb:.2f} GB</b> (runtime {est.runtime_gb:.2f}, weights "
        f"{est.weights_gb:.2f}, LoRA + optimizer {est.lora_gb + est.optimizer_gb:.2f}, "
        f"activations {est.activations_gb:.2f}, logits {est.logits_gb:.2f})"
    )
    if est.disk_free_gb is not None:  # what the run writes, against the runs folder's disk
        memory += (
            f", disk about {est.disk_gb * 1024:,.0f} MB of the {est.disk_free_gb * 1024:,.0f} MB "
            "free"
        )
    if busy:
        names = html.escape(", ".join(busy))
        verb = "is" if len(busy) == 1 else "are"
        return (
            f"{memory}. Time per step: not estimated while {names} {verb} training on this "
            "machine (a step would look slower than it is); it shows again when the machine is "
            "idle."
        )
    return (
        f"{memory} and <b>{est.seconds_per_step:.1f} s per step</b> on {html.escape(est.device)}."
    )


def run_label(run: Run, status: RunStatus | None = None, plotted_step: int | None = None) -> str:
    """One line of the runs table; a run waiting in the queue shows its place and what it
    waits for. Its step is the later of the status's and `plotted_step`, as in status_line."""
    status = status or run.status
    state, progress = status.state, status.progress
    step = max(status.step, plotted_step or 0)
    if status.waiting and progress.position is not None:
        state = f"queued #{progress.position}, waits for {progress.waits_for}"
    peak = progress.peak_memory_gb
    memory = f" · peak {peak:.2f} GB" if peak else ""
    return f"{run.name} · {state} · step {step}/{status.max_steps} · {run.config.method}{memory}"


def started_line(run: Run) -> str:
    """What a started run trains on, in rows: the count tokenising showed, beside the rows held
    out for eval, so neither reads as a row lost."""
    data = run.info.data
    trained = plural(data["train"]["rows"], "row")
    held = f", {plural(data['eval']['rows'], 'row')} held out for eval" if "eval" in data else ""
    return f"{run.name} trains on {trained}{held}: its loss appears below as it trains."


def status_line(run: Run, status: RunStatus, plotted_step: int | None) -> str:
    """The progress line: state, step, ETA, speed, peak memory. The step is the later of the
    status's and the last one plotted, so the line never lags the chart above it."""
    step, *rest = progress_facts(run, status, plotted_step)
    parts = [f"{html.escape(run.name)}: {html.escape(status.state)}, {step}", *rest]
    if run.metrics_problem:  # a torn metrics file: what was complete still shows
        parts.append(html.escape(clip(run.metrics_problem, NOTE_CHARS)))
    return " · ".join(parts)


def progress_of(run: Run, status: RunStatus, plotted_step: int | None) -> float:
    """The progress bar's fraction (0 to 1), from the same step as the status line."""
    total = status.max_steps or run.config.max_steps
    step = max(status.step, plotted_step or 0)
    return min(step / total, 1.0) if total and total > 0 else 0.0


def why_not_stop(run: Run | None, status: RunStatus | None) -> str:
    """Why Stop cannot act on the selected run ("" when it can)."""
    if run is None:
        return "Select a run in the table below to stop it."
    if not status.active:
        return f"{run.name} already {status.state}: there is nothing to stop."
    return ""


def why_not_resume(run: Run | None, config: TrainConfig | None) -> str:
    """Why Resume cannot act on the selected run with the form's step budget ("" when it can:
    train.launch.resume_refusal)."""
    if run is None:
        return "Select a stopped, failed or finished run in the table below to resume it."
    return resume_refusal(run, config)


def describe_hardware(device: str, name: str, memory: float | None) -> str:
    """The hardware line: the card and its memory, or the CPU with a word about speed."""
    size = f", {memory:.0f} GB" if memory else ""
    return f"{name}{size}" if device == "cuda" else f"CPU{size} (no GPU found: training is slow)"
