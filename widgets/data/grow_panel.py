"""GrowPanel: grow the instruction data with a model, and keep only what a person accepts.

Seed rows (typed, or the browser's current search or selection through `use_rows`), a generator
(a session contestant, or the URL of an OpenAI-compatible server), how many, an optional topic;
Start runs Session.synthesize in the background with a progress bar and its counts, Stop keeps
what was staged. Candidates are listed with their verdicts; accept, edit or reject each, or the
ticked ones at once. Each button is one Session call; all text from models is escaped.
"""

from __future__ import annotations

import threading

import ipywidgets as widgets

from workbench import Session
from workbench.synthesis import Candidate, Endpoint, SynthesisResult

from ..common.compat import with_tooltip
from ..common.html_text import escape_text, transcript
from ..common.notice import Notice
from ..common.parts import make_button
from ..common.theme import line, plural

PAGE = 10  # candidates listed at once
SHOW = [
    ("waiting for a decision", "pending"),
    ("dropped by a filter", "dropped"),
    ("accepted", "accepted"),
    ("rejected", "rejected"),
    ("all", ""),
]
NO_JUDGE = ("no judge", "")


def parse_rows(text: str) -> list[int]:
    """Row numbers typed as "0-9, 12, 15": ranges include both ends. ValueError names a bad part."""
    rows: list[int] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            rows += list(range(int(low), int(high) + 1)) if dash else [int(part)]
        except ValueError:
            raise ValueError(
                f"Seed rows: {part!r} is not a row number or a range like 0-9."
            ) from None
    return rows


class GrowPanel(widgets.VBox):
    """Seeds, generator and counts above; the staged candidates, to accept or reject, below."""

    def __init__(self, session: Session):
        self.session = session
        self.message = Notice()
        self.page = 0
        self.last: SynthesisResult | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._shown: list[Candidate] = []
        self._editing: Candidate | None = None
        self._build_controls()
        self._build_list()
        self._build_editor()
        session.observe(lambda _: self.refresh(), names=["dataset", "edits", "candidates"])
        session.observe(lambda _: self.refresh_generators(), names=["runs", "model"])
        super().__init__([self.controls, self.message, self.candidates_box, self.editor])
        self.add_class("wb-grow")
        self.refresh_generators()
        self.refresh()

    # -- building -----------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.seed_rows = widgets.Text(
            description="Seed rows", placeholder="the first 10, or 0-9, 12"
        )
        self.seed_note = widgets.HTML()
        self.generator = widgets.Dropdown(description="Generator")
        self.url = widgets.Text(description="or URL", placeholder="http://127.0.0.1:8080/v1")
        self.endpoint_model = widgets.Text(description="model", placeholder="the server's first")
        self.key_env = widgets.Text(description="key in $", placeholder="OPENAI_API_KEY")
        self.judge = widgets.Dropdown(description="Judge")
        self.n = widgets.BoundedIntText(10, min=1, max=10_000, description="How many")
        self.max_new_tokens = with_tooltip(
            widgets.BoundedIntText(256, min=16, max=4096, description="Max tokens"),
            "Most tokens of each example",
        )
        self.instruction = widgets.Text(
            description="About", placeholder="e.g. questions a support agent gets about invoices"
        )
        self.instruction.layout.width = "80%"
        self.start_button = make_button("Start", self.start, button_style="primary", icon="play")
        self.stop_button = make_button("Stop", self.stop, icon="stop", disabled=True)
        self.progress = widgets.IntProgress(0, min=0, max=1, description="Asked")
        self.counts = widgets.HTML()
        self.controls = widgets.VBox(
            [
                widgets.HBox([self.seed_rows, self.seed_note]),
                widgets.HBox([self.generator, self.url, self.endpoint_model, self.key_env]),
                widgets.HBox([self.n, self.max_new_tokens, self.judge]),
                self.instruction,
                widgets.HBox([self.start_button, self.stop_button, self.progress, self.counts]),
            ]
        )

    def _build_list(self) -> None:
        self.show = widgets.Dropdown(options=SHOW, description="Show")
        self.show.observe(lambda _: self._to_page(0), names="value")
        self.prev_button = make_button("◀", lambda: self._to_page(self.page - 1))
        self.next_button = make_button("▶", lambda: self._to_page(self.page + 1))
        self.page_label = widgets.HTML()
        self.select_all = make_button("Tick all shown", self._tick_all)
        self.reason = widgets.Text(description="Reason", placeholder="why they are rejected")
        self.accept_ticked = make_button(
            "Accept ticked", self.accept_selected, button_style="primary"
        )
        self.reject_ticked = make_button("Reject ticked", self.reject_selected)
        self.ticks = [widgets.Checkbox(indent=False, layout={"width": "2em"}) for _ in range(PAGE)]
        self.views = [widgets.HTML(layout={"width": "100%"}) for _ in range(PAGE)]
        self.accept_buttons = [self._row_button(k, "Accept", self.accept) for k in range(PAGE)]
        self.edit_buttons = [self._row_button(k, "Edit", self.open_editor) for k in range(PAGE)]
        self.reject_buttons = [self._row_button(k, "Reject", self.reject) for k in range(PAGE)]
        self.lines = [
            line(t, widgets.VBox([a, e, r]), text=v)
            for t, v, a, e, r in zip(
                self.ticks, self.views, self.accept_buttons, self.edit_buttons, self.reject_buttons
            )
        ]
        self.candidates_box = widgets.VBox(
            [
                widgets.HBox([self.show, self.prev_button, self.next_button, self.page_label]),
                widgets.HBox(
                    [self.select_all, self.accept_ticked, self.reason, self.reject_ticked]
                ),
                *self.lines,
            ]
        )

    def _row_button(self, k: int, label: str, action) -> widgets.Button:
        button = widgets.Button(description=label, layout={"width": "6em"})
        button.on_click(lambda _: k < len(self._shown) and action([self._shown[k].id]))
        return button

    def _build_editor(self) -> None:
        self.editor_title = widgets.HTML()
        self.edit_prompt = widgets.Textarea(
            description="Instruction", rows=3, layout={"width": "95%"}
        )
        self.edit_answer = widgets.Textarea(description="Answer", rows=5, layout={"width": "95%"})
        self.save_button = make_button(
            "Save and check again", self.save_edit, button_style="primary"
        )
        self.cancel_button = make_button("Cancel", self.close_editor)
        self.editor = widgets.VBox(
            [
                self.editor_title,
                self.edit_prompt,
                self.edit_answer,
                widgets.HBox([self.save_button, self.cancel_button]),
            ]
        )
        self.editor.layout.display = "none"

    # -- seeds and generators -----------------------------------------------------------------
    def use_rows(self, rows, label: str = "") -> None:
        """Seed from these rows (e.g. the browser's search result or selection); the first
        hundred are kept, written as ranges."""
        rows = sorted(int(r) for r in list(rows)[:100])
        self.seed_rows.value = _as_ranges(rows)
        self.seed_note.value = f"<i>{escape_text(label)}</i>" if label else ""

    def refresh_generators(self) -> None:
        """Offer the session's contestants (base, adapters) as generator and judge."""
        names = self.session.contestants
        current = self.generator.value
        self.generator.options = names
        self.generator.value = current if current in names else names[0]
        judge = self.judge.value
        self.judge.options = [NO_JUDGE, *[(n, n) for n in names]]
        self.judge.value = judge if judge in names else ""

    def _generator(self):
        url = self.url.value.strip()
        if not url:
            return self.generator.value
        model, key = self.endpoint_model.value.strip(), self.key_env.value.strip()
        return Endpoint(url, model=model or None, api_key_env=key or None)

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Ask for candidates in the background (Session.synthesize)."""
        if self._thread is not None and self._thread.is_alive():
            return self.message.warn("Still growing; wait for it, or press Stop.")
        try:
            kwargs = {
                "seed_rows": parse_rows(self.seed_rows.value) or None,
                "n": self.n.value,
                "generator": self._generator(),
                "instruction": self.instruction.value.strip() or None,
                "judge": self.judge.value or None,
                "max_new_tokens": self.max_new_tokens.value,
            }
        except ValueError as e:
            return self.message.error(e)
        self._stop.clear()
        self.progress.value, self.progress.max = 0, kwargs["n"]
        self.counts.value = ""
        self._set_running(True)
        self.message.say(f"Asking for {plural(kwargs['n'], 'candidate')}…")
        self._thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the run: what was staged stays."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run in progress ends (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, **kwargs) -> None:
        try:
            with self.message.guard("Growing stopped") as outcome:
                result = self.session.synthesize(
                    progress=self._show_progress, stop=self._stop, **kwargs
                )
            if outcome.failed:
                self._show_progress(getattr(outcome.error, "result", None))
            else:
                self._show_progress(result)
                self.message.say(result.summary())
        finally:
            self._set_running(False)
            self.refresh()

    def _show_progress(self, result: SynthesisResult | None) -> None:
        if result is None:
            return
        self.last = result
        self.progress.max, self.progress.value = max(1, result.n), result.asked
        self.counts.value = escape_text(result.summary())

    def _set_running(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running

    # -- decisions ----------------------------------------------------------------------------
    def accept(self, ids: list[str]) -> None:
        """Add these candidates to the dataset (Session.accept)."""
        self._decide(lambda: self.session.accept(ids), f"Accepted {len(ids)} as new rows.")

    def reject(self, ids: list[str]) -> None:
        """Reject these candidates with the reason typed (Session.reject)."""
        reason = self.reason.value.strip() or "rejected"
        self._decide(lambda: self.session.reject(ids, reason), f"Rejected {len(ids)}.")

    def accept_selected(self) -> None:
        """Accept every ticked candidate."""
        self.accept(self._ticked())

    def reject_selected(self) -> None:
        """Reject every ticked candidate."""
        self.reject(self._ticked())

    def _decide(self, action, done: str) -> None:
        with self.message.guard() as outcome:
            action()
        if not outcome.failed:
            self.message.say(done)
        self.refresh()

    def _ticked(self) -> list[str]:
        return [c.id for c, tick in zip(self._shown, self.ticks) if tick.value]

    def _tick_all(self) -> None:
        for k, tick in enumerate(self.ticks):
            tick.value = k < len(self._shown)

    # -- editing ------------------------------------------------------------------------------
    def open_editor(self, ids: list[str]) -> None:
        """Show a candidate's instruction and answer for editing."""
        found = [c for c in self._shown if c.id == ids[0]]
        if not found or not found[0].messages:
            return self.message.warn(
                "This candidate has no messages to edit (the answer was malformed)."
            )
        self._editing = candidate = found[0]
        self.editor_title.value = f"<b>Editing candidate {escape_text(candidate.id)}</b>"
        self.edit_prompt.value = _content(candidate.messages, "user")
        self.edit_answer.value = _content(candidate.messages, "assistant")
        self.editor.layout.display = ""

    def save_edit(self) -> None:
        """Keep the edited texts (Session.edit_candidate); the filters check them again."""
        candidate = self._editing
        if candidate is None:
            return
        messages = _with_contents(
            candidate.messages, self.edit_prompt.value, self.edit_answer.value
        )
        with self.message.guard() as outcome:
            edited = self.session.edit_candidate(candidate.id, messages)
        if outcome.failed:
            return
        verdict = edited.verdict
        result = "it passes the filters" if verdict.kept else f"still dropped: {verdict.note}"
        self.message.say(f"Saved; {result}.")
        self.close_editor()
        self.refresh()

    def close_editor(self) -> None:
        """Hide the editor without saving."""
        self._editing = None
        self.editor.layout.display = "none"

    # -- the list -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the staged candidates and show the current page."""
        self._to_page(self.page)

    def _to_page(self, number: int) -> None:
        found = []
        with self.message.guard():  # a hand-edited candidates.jsonl: it says which line
            wanted = self.show.value
            found = [c for c in self.session.candidates if not wanted or c.status == wanted]
        last = max(0, (len(found) - 1) // PAGE)
        self.page = min(max(0, number), last)
        self._shown = found[self.page * PAGE : (self.page + 1) * PAGE]
        self.page_label.value = (
            f"{plural(len(found), 'candidate')}, page {self.page + 1} of {last + 1}"
        )
        for k, each in enumerate(self.lines):
            shown = k < len(self._shown)
            each.layout.display = "" if shown else "none"
            self.ticks[k].value = False
            if shown:
                candidate = self._shown[k]
                self.views[k].value = candidate_html(candidate)
                open_ = candidate.status in ("pending", "rejected")
                self.accept_buttons[k].disabled = not open_
                self.reject_buttons[k].disabled = candidate.status not in ("pending", "dropped")
                self.edit_buttons[k].disabled = candidate.status == "accepted"


def candidate_html(candidate: Candidate) -> str:
    """A candidate as escaped HTML: its status and verdict, flags, grade, then its turns."""
    verdict = candidate.verdict
    head = [f"<b>{escape_text(candidate.status)}</b>"]
    if verdict.dropped:
        head.append(f"dropped: {escape_text(verdict.dropped)} ({escape_text(verdict.note)})")
    head += [f"⚑ {escape_text(kind)}: {escape_text(why)}" for kind, why in verdict.flags.items()]
    if verdict.grade is not None or verdict.judge_reason:
        grade = "?" if verdict.grade is None else verdict.grade
        head.append(f"judge: {grade}/5 — {escape_text(verdict.judge_reason)}")
    if candidate.row is not None:
        head.append(f"row {candidate.row}")
    if candidate.reason and candidate.status == "rejected":
        head.append(f"reason: {escape_text(candidate.reason)}")
    origin = candidate.origin
    seeds = ", ".join(str(r) for r in origin.seed_rows)
    head.append(
        "<span style='color: var(--jp-ui-font-color2)'>"
        f"from {escape_text(origin.generator)}, seeds {escape_text(seeds)}</span>"
    )
    body = (
        transcript(candidate.messages)
        if candidate.messages
        else f"<pre>{escape_text(candidate.raw)}</pre>"
    )
    return f"<div class='wb-candidate'>{' · '.join(head)}{body}</div>"


def _content(messages: list[dict], role: str) -> str:
    return "\n\n".join(m["content"] for m in messages if m["role"] == role)


def _with_contents(messages: list[dict], prompt: str, answer: str) -> list[dict]:
    """A candidate's messages (system, user, assistant) with the user and assistant texts
    replaced; a system message is kept as it is."""
    out, done = [], set()
    for m in messages:
        role = m["role"]
        if role in ("user", "assistant") and role not in done:
            out.append({**m, "content": prompt if role == "user" else answer})
            done.add(role)
        elif role not in ("user", "assistant"):
            out.append(dict(m))
    return out


def _as_ranges(rows: list[int]) -> str:
    parts, start = [], None
    for k, row in enumerate(rows):
        start = row if start is None else start
        if k + 1 == len(rows) or rows[k + 1] != row + 1:
            parts.append(str(start) if start == row else f"{start}-{row}")
            start = None
    return ", ".join(parts)
