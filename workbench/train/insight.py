"""What a run's record says beyond its curve: the best evaluation, an overfitting alarm, and a
summary per run and the settings that differ between runs (the launcher's run diff)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .run import Run

OVERFIT_PATIENCE = 2  # evaluations in a row with a rising eval loss before the alarm


def best_evaluation(metrics: list[dict]) -> tuple[int, float] | None:
    """(step, eval loss) of the evaluation with the lowest eval loss, or None before any."""
    evals = [(m["step"], m["eval_loss"]) for m in metrics if "eval_loss" in m]
    return min(evals, key=lambda e: e[1], default=None)


def overfitting_warning(metrics: list[dict], patience: int = OVERFIT_PATIENCE) -> str:
    """A sentence when the eval loss rose at the last `patience` evaluations while the train
    loss fell over the same steps (the classic sign of overfitting), else ''."""
    evals = [(m["step"], m["eval_loss"]) for m in metrics if "eval_loss" in m]
    if len(evals) < patience + 1:
        return ""
    window = evals[-(patience + 1) :]
    if not all(later[1] > earlier[1] for earlier, later in zip(window, window[1:])):
        return ""
    first, last = window[0][0], window[-1][0]
    train = [
        (m["step"], m["loss"]) for m in metrics if "loss" in m and first - 1 <= m["step"] <= last
    ]
    if len(train) < 2 or not _mean(train[len(train) // 2 :]) < _mean(train[: len(train) // 2]):
        return ""
    best_step, best_loss = best_evaluation(metrics)
    return (
        f"Overfitting: the eval loss rose at the last {patience} evaluations (to "
        f"{window[-1][1]:.3f} at step {last}) while the train loss fell. The lowest eval loss was "
        f"{best_loss:.3f} at step {best_step}: keep_best=True keeps that adapter, "
        f"early_stopping_patience={patience} stops the run there."
    )


def forgetting_warning(metrics: list[dict], limit: float | None, replay: float | None = 0) -> str:
    """A sentence when the keep drift passed `limit` (nats per token) while the train loss
    still fell: the run learns its task by forgetting the rest. '' otherwise, or without a limit.
    The remedy it names depends on the run's `replay` share."""
    drifts = [(m["step"], m["keep_drift"]) for m in metrics if "keep_drift" in m]
    if limit is None or not drifts or drifts[-1][1] <= limit:
        return ""
    step, drift = drifts[-1]
    train = [(m["step"], m["loss"]) for m in metrics if "loss" in m and m["step"] <= step]
    recent = train[len(train) // 2 :]
    if len(recent) < 2 or not _mean(recent[len(recent) // 2 :]) < _mean(recent[: len(recent) // 2]):
        return ""
    under = [s for s, d in drifts if d <= limit]
    keep = f"step {under[-1]} was the last under it" if under else "no evaluation was under it"
    return (
        f"Forgetting: the keep drift is {drift:.2f} nats per token at step {step}, past the limit "
        f"of {limit:g}, while the train loss still falls: the run learns its task by changing "
        f"answers to everything else ({keep}). {_remedy(replay)}"
    )


def _remedy(replay: float | None) -> str:
    if not replay:
        return "replay=0.1 mixes in the base's own answers to other keep prompts, which holds them."
    return (
        f"This run already replays {replay:g} of its rows: raise replay (0.2), lower the learning "
        "rate, or keep an earlier checkpoint (keep_best=True)."
    )


def _mean(points: list[tuple[int, float]]) -> float:
    return sum(v for _, v in points) / len(points)


def run_summary(run: Run) -> dict[str, Any]:
    """A run's results in one row: final train and eval loss, best eval step, probe score, keep
    drift (nats per token) and share of keep answers changed, tokens per second, wall time (s);
    None where the run has no such figure."""
    metrics, status = run.metrics, run.status
    train = [m["loss"] for m in metrics if "loss" in m]
    evals = [m["eval_loss"] for m in metrics if "eval_loss" in m]
    probes = [m["probe_score"] for m in metrics if m.get("probe_score") is not None]
    drift = [m["keep_drift"] for m in metrics if "keep_drift" in m]
    changed = [m["keep_changed"] for m in metrics if "keep_changed" in m]
    best = best_evaluation(metrics)
    ended = status.ended or (status.heartbeat if status.active else None)
    return {
        "state": status.state,
        "steps": status.step,
        "train_loss": train[-1] if train else None,
        "eval_loss": evals[-1] if evals else None,
        "best_eval_step": best[0] if best else None,
        "probe_score": probes[-1] if probes else None,
        "keep_drift": drift[-1] if drift else None,
        "keep_changed": changed[-1] if changed else None,
        "tokens_per_s": status.progress.tokens_per_s,
        "wall_s": ended - status.started if ended and status.started else None,
    }


@dataclass
class RunComparison:
    """Runs side by side: only the config fields whose values differ, and each run's summary."""

    names: list[str]
    differing: dict[str, list[Any]] = field(default_factory=dict)  # field -> value per run
    summaries: list[dict[str, Any]] = field(default_factory=list)  # run_summary per run

    def __repr__(self) -> str:
        fields = ", ".join(self.differing) or "none"
        return f"RunComparison({', '.join(self.names)}; differing settings: {fields})"

    def rows(self) -> list[list[str]]:
        """The table as text: a header, then a row per differing field and per summary figure."""
        table = [["", *self.names]]
        table += [[name, *map(_cell, values)] for name, values in self.differing.items()]
        for key in self.summaries[0] if self.summaries else {}:
            table.append([key, *(_cell(s[key]) for s in self.summaries)])
        return table

    def _repr_html_(self) -> str:
        head, *body = self.rows()
        cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        lines = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
        )
        table = f"<thead><tr>{cells}</tr></thead><tbody>{lines}</tbody>"
        return f'<table class="wb-table">{table}</table>'  # the workbench's table style


def compare_runs(runs: list[Run]) -> RunComparison:
    """The config fields that differ between `runs` (planned values; `reasons` left out) and
    each run's summary. Raises ValueError for fewer than two runs."""
    if len(runs) < 2:
        raise ValueError("Comparing runs needs two or more; select more runs.")
    configs = [run.config.to_json() for run in runs]
    differing = {}
    for name in configs[0]:
        values = [c.get(name) for c in configs]
        if name != "reasons" and any(v != values[0] for v in values[1:]):
            differing[name] = values
    return RunComparison([r.name for r in runs], differing, [run_summary(r) for r in runs])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
