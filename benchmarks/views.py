"""The speed a person feels in the views: the app on the page, and two answers side by side.

Prints one JSON object; each figure is measured in a fresh Python process (as a new kernel), with
the demo data loaded into a new workspace, and is set beside a baseline measured in the same run:

  app        `Workbench(s)` until it returns (what stands between the cell and the first paint),
             then until its background part is loaded (tokenizer, template preview, estimate);
             baseline: the four views built eagerly, each doing its slow part before returning
             (how the app was built before it painted first).
  compare    the comparator's Send until both answers are done, and each pane's time to first
             token, for a first question (the model loads on it) and a second; baseline: the
             same two answers from `session.generate`, one after the other, no view.
  start      the launcher's Start (default settings) until the first loss point is in its chart,
             split into: Start returning (snapshot, handover), the runner's main (imports when
             cold), the first loss written (model, data, Trainer, first step), and the chart's
             poll. Start is clicked once the launcher's warm runner is ready (a person reads the
             form meanwhile; how long that took is reported); also with a cold runner
             (WORKBENCH_WARM_RUNNER=0), and `session.train` (cold) until the first loss record.

    python benchmarks/views.py                 # the embedded default model (SmolLM2-135M)
    python benchmarks/views.py --tiny          # a 2-layer random Llama: quick, for a look
    python benchmarks/views.py --tokens 48 --skip-compare
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROMPT = "Sort these words alphabetically: pear, apple, fig, banana, cherry."
TARGET_FIRST_PAINT_S = 3.0
TARGET_FIRST_LOSS_S = 8.0


def open_session(folder: Path, model: str | None):
    """A new workspace with the demo data loaded (and `model` set when given)."""
    import workbench as wb

    session = wb.Session.open(folder / "ws")
    if model:
        session.set_model(model)
    session.load_dataset(wb.demo_data.demo_path())
    return session


# -- app: one process each ------------------------------------------------------------------
def app_ours(folder: Path, model: str | None) -> dict:
    session = open_session(folder, model)
    from widgets import Workbench

    started = time.perf_counter()
    app = Workbench(session)
    painted = time.perf_counter() - started
    app.wait_until_loaded()
    return {
        "first_paint_s": painted,
        "loaded_s": time.perf_counter() - started,
        "error": app.message.text,
    }


def app_eager(folder: Path, model: str | None) -> dict:
    session = open_session(folder, model)
    from widgets import ChatComparator, DatasetBrowser, TemplateEditor, TrainingLauncher

    started = time.perf_counter()
    views = [
        DatasetBrowser(session),
        TemplateEditor(session),
        TrainingLauncher(session),
        ChatComparator(session),
    ]
    views[0].quality.lengths_button.click()  # the histogram the eager browser drew at once (plotly)
    took = time.perf_counter() - started
    return {"first_paint_s": took, "loaded_s": took}


# -- compare: one process each ----------------------------------------------------------------
def with_adapter(session) -> str:
    """A finished run with a random LoRA adapter, as a run saves one: a second contestant."""
    from workbench import TrainConfig, models
    from workbench.answers.adapters import write_random_adapter
    from workbench.train import RunStatus

    run = session.prepare(TrainConfig(method="lora", max_steps=1, batch_size=2))
    base = models.load_model(session.model, device="cpu")
    write_random_adapter(base, run.folder.adapter_dir, session.model, session.template)
    run.folder.write_status(RunStatus("finished", step=1, max_steps=1))
    session.check_runs()
    return run.name


def compare_ours(folder: Path, model: str | None, tokens: int) -> dict:
    session = open_session(folder, model)
    name = with_adapter(session)
    from widgets import ChatComparator

    view = ChatComparator(session)
    view.pickers[1].value = name
    view.settings_form.fields["max_new_tokens"].value = tokens
    first: dict[str, float] = {}
    on_text, lock = view._on_text, threading.Lock()

    def timed(contestant: str, text: str) -> None:
        with lock:
            first.setdefault(contestant, time.perf_counter())
        on_text(contestant, text)

    view._on_text = timed
    figures = {}
    for turn in ("first_question", "second_question"):
        first.clear()
        started = time.perf_counter()
        view.prompt.value = PROMPT
        view.send_button.click()
        view.wait()
        done = time.perf_counter() - started
        figures[turn] = {
            "both_answers_s": done,
            "first_token_s": {c: t - started for c, t in first.items()},
            "answer_tokens": {
                c: len(session.tokenizer(p.text)["input_ids"])
                for c, p in zip(view.shown, view.panes)
            },
            "message": view.message.text,
        }
        view.reset()
    return figures


def compare_plain(folder: Path, model: str | None, tokens: int) -> dict:
    session = open_session(folder, model)
    name = with_adapter(session)
    figures = {}
    for turn in ("first_question", "second_question"):
        started = time.perf_counter()
        for contestant in ("base", name):
            session.generate(PROMPT, model=contestant, max_new_tokens=tokens)
        figures[turn] = {"both_answers_s": time.perf_counter() - started}
    return figures


# -- start: one process each ------------------------------------------------------------------
def start_ours(folder: Path, model: str | None, steps: int, warm: bool = True) -> dict:
    import os

    os.environ["WORKBENCH_WARM_RUNNER"] = "1" if warm else "0"
    session = open_session(folder, model)
    from widgets import TrainingLauncher

    shown = time.perf_counter()
    view = TrainingLauncher(session)
    view.fields["max_steps"].value = steps
    ready_s = None
    if warm:  # a person reads the form meanwhile; Start comes once the runner waits
        while not session._warm.ready:
            time.sleep(0.05)
        ready_s = time.perf_counter() - shown
    wall, started = time.time(), time.perf_counter()
    view.start_button.click()
    returned = time.perf_counter() - started
    run = view.current_run
    while view.plot.point_count() < 1 and run.status.active:
        time.sleep(0.02)
    plotted = time.perf_counter() - started
    return {
        "first_loss_point_s": plotted,
        "start_returned_s": returned,
        "warm_runner_ready_after_shown_s": ready_s,
        **runner_stages(run, wall),
        "message": view.message.text,
    }


def start_plain(folder: Path, model: str | None, steps: int) -> dict:
    import workbench as wb

    session = open_session(folder, model)
    wall, started = time.time(), time.perf_counter()
    run = session.train(wb.TrainConfig(max_steps=steps))
    while not any("loss" in m for m in run.metrics) and run.status.active:
        time.sleep(0.02)
    return {"first_loss_record_s": time.perf_counter() - started, **runner_stages(run, wall)}


def runner_stages(run, wall: float) -> dict:
    """When the runner's main began and its first loss was written, from Start (seconds); the
    run is then left to finish."""
    losses = [m for m in run.metrics if "loss" in m]
    status = run.wait(timeout=600)
    return {
        "runner_main_s": (status.started or wall) - wall,
        "first_loss_written_s": losses[0]["time"] - wall if losses else None,
        "state": status.state,
    }


# -- driver -------------------------------------------------------------------------------------
def in_subprocess(name: str, **kwargs) -> dict:
    """Run contender `name` in a fresh interpreter; its JSON result."""
    with tempfile.TemporaryDirectory() as folder:
        arguments = json.dumps({"name": name, "folder": folder, **kwargs})
        done = subprocess.run(
            [sys.executable, __file__, "--child", arguments],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        return {"failed": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(arguments: str) -> None:
    args = json.loads(arguments)
    contender = CONTENDERS[args.pop("name")]
    folder = Path(args.pop("folder"))
    print(json.dumps(contender(folder, **args)))


CONTENDERS = {
    "app_ours": app_ours,
    "app_eager": app_eager,
    "compare_ours": compare_ours,
    "compare_plain": compare_plain,
    "start_ours": start_ours,
    "start_plain": start_plain,
}


def tiny_model() -> str:
    from benchmarks.random_llama import write_random_llama

    return write_random_llama(Path(tempfile.gettempdir()) / "workbench-views-tiny", size="tiny")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer random Llama")
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per answer")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--skip-start", action="store_true")
    parser.add_argument("--steps", type=int, default=3, help="steps of the runs that start")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    model = tiny_model() if args.tiny else None
    result = {
        "model": model or "embedded default (SmolLM2-135M-Instruct)",
        "target_first_paint_s": TARGET_FIRST_PAINT_S,
        "app": {
            "ours": in_subprocess("app_ours", model=model),
            "baseline_eager_views": in_subprocess("app_eager", model=model),
        },
    }
    if not args.skip_compare:
        result["compare"] = {
            "tokens": args.tokens,
            "ours": in_subprocess("compare_ours", model=model, tokens=args.tokens),
            "baseline_session_generate": in_subprocess(
                "compare_plain", model=model, tokens=args.tokens
            ),
        }
    if not args.skip_start:
        result["start"] = {
            "target_first_loss_point_s": TARGET_FIRST_LOSS_S,
            "ours": in_subprocess("start_ours", model=model, steps=args.steps),
            "ours_cold_runner": in_subprocess(
                "start_ours", model=model, steps=args.steps, warm=False
            ),
            "baseline_session_train": in_subprocess("start_plain", model=model, steps=args.steps),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
