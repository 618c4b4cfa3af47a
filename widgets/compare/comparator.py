"""ChatComparator: base and tuned models answer the same prompt side by side; people vote.

Each button calls one Session (or Conversation) method. Answers stream from a background thread
that only sets widget traits (HTML values), which ipykernel 6.17+ and 7.1+ send from any thread;
model text is always sanitised (widgets.common.safe_markdown). The contestant pickers follow the
session's "runs" announcements; the blind order and the vote rule are the core's
(workbench.answers.blind).
A reward model picked under "reward model" scores each pane's answer (`session.score`).
Ctrl+Enter (Cmd+Enter on a Mac) in the prompt box sends, as Send does (widgets.common.keys.PromptBox);
both wait for a prompt. A blind chat hides the contestant pickers until the vote; presentation
mode shows only the chat.
"""

from __future__ import annotations

import threading
import time

import ipywidgets as widgets

from workbench import Session
from workbench.answers.blind import blind_order, vote_refusal
from workbench.answers.chat import Conversation
from workbench.preferences import VOTES

from ..common.compat import titled
from ..common.keys import PromptBox
from ..common.notice import Notice
from ..common.theme import style_view, stylesheet
from .comparator_batch import BatchPanel
from .comparator_parts import CSS, AnswerPane, SettingsForm
from .preferences_panel import PreferencesPanel
from .reward_scores import RewardScores

LETTERS = "ABCD"
MAX_PANES = 4
REDRAW_SECONDS = 0.1
VOTE_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}


class ChatComparator(widgets.VBox):
    """Prompt box, answer panes side by side, contestant pickers, settings, votes, batch tab."""

    def __init__(self, session: Session, panes: int = 2):
        self.session = session
        self.conversation: Conversation | None = None
        self.shown: list[str] = []  # contestant of each pane, in pane order
        self.revealed = False  # blind mode: the names show after the vote
        self.voted = False
        self._answering = False
        self._quiet = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._redrawn: dict[str, float] = {}
        self._training_note = ""  # a run trains on the answers' device (told with each answer)
        self._offered: list[str] = []  # the contestant each picker was given by default
        self._build_controls()
        self._wire()
        super().__init__([stylesheet(), widgets.HTML(CSS), self._layout(), self.preferences_panel])
        style_view(self, "wb-comparator")
        self.set_pane_count(panes)
        self._show_vote_state()
        self._set_busy(False)  # Send waits for a prompt

    def _build_controls(self) -> None:
        self.settings_form = SettingsForm()
        self.pickers: list[widgets.Dropdown] = []
        self.pickers_box = widgets.HBox()
        self.pickers_box.add_class("wb-pickers")
        self.add_pane_button = widgets.Button(description="+ pane", tooltip="Add a contestant")
        self.remove_pane_button = widgets.Button(description="− pane", tooltip="Remove the last")
        self.blind = widgets.Checkbox(False, description="Blind (A/B in random order)")
        self.blind_note = widgets.HTML(
            "<span class='wb-hint'>Blind: who answers in A and B shows after your vote.</span>"
        )
        self.markdown = widgets.Checkbox(True, description="Show Markdown")
        self.present = widgets.ToggleButton(False, description="Presentation", icon="desktop")
        self.prompt = PromptBox(placeholder="Ask every contestant… (Ctrl+Enter sends)", rows=3)
        self.prompt.layout.width = "100%"
        self.prompt.add_class("wb-prompt")
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="send", tooltip="Send (Ctrl+Enter)"
        )
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.reset_button = widgets.Button(description="Reset chat", icon="refresh")
        self.panes_box = widgets.HBox(layout={"width": "100%", "grid_gap": "8px"})
        self.panes: list[AnswerPane] = []
        self.vote_pair = (widgets.Dropdown(description="vote on"), widgets.Dropdown())
        self.vote_buttons = {v: widgets.Button(description=VOTE_LABELS[v]) for v in VOTES}
        self.comment = widgets.Text(placeholder="Comment (optional)")
        self.message = Notice()
        self.reward_scores = RewardScores(self.session, self.message)
        self.reward_picker, self.scores = self.reward_scores.picker, self.reward_scores.line
        self.batch = BatchPanel(self.session, self.settings_form)
        self.preferences_panel = PreferencesPanel(self.session)

    def _wire(self) -> None:
        self.send_button.on_click(lambda _: self.send())
        self.prompt.observe(lambda _: self._set_busy(self.busy), names="value")
        self.prompt.on_submit(lambda _: self.send())  # Ctrl/Cmd+Enter
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.add_pane_button.on_click(lambda _: self.set_pane_count(len(self.pickers) + 1))
        self.remove_pane_button.on_click(lambda _: self.set_pane_count(len(self.pickers) - 1))
        self.blind.observe(lambda _: self.reset(), names="value")
        self.reward_picker.observe(lambda _: self.show_scores(), names="value")
        self.markdown.observe(lambda _: self._redraw_all(), names="value")
        self.present.observe(lambda change: self._present(change["new"]), names="value")
        for vote, button in self.vote_buttons.items():
            button.on_click(lambda _, vote=vote: self.vote(vote))
        self.session.observe(lambda _: self.refresh_contestants(), names=["runs", "selected_run"])
        self.session.observe(lambda _: self._model_changed(), names="model")

    def _layout(self) -> widgets.Tab:
        self.setup_box = widgets.VBox(
            [
                titled(widgets.Accordion([self.settings_form]), ["Settings"]),
                widgets.HBox(
                    [
                        self.pickers_box,
                        self.blind_note,
                        self.add_pane_button,
                        self.remove_pane_button,
                        self.blind,
                    ]
                ),
            ]
        )
        self.vote_box = widgets.HBox(
            [*self.vote_pair, *self.vote_buttons.values(), self.comment],
            layout={"flex_flow": "row wrap"},
        )
        buttons = [self.send_button, self.stop_button, self.reset_button]
        chat = widgets.VBox(
            [
                self.setup_box,
                self.prompt,
                widgets.HBox([*buttons, self.markdown, self.present]),
                self.panes_box,
                self.reward_scores,
                self.vote_box,
                self.message,
            ]
        )
        self.tabs = titled(widgets.Tab([chat, self.batch]), ["Chat", "Batch"])
        return self.tabs

    # -- actions ------------------------------------------------------------------------------
    def send(self) -> None:
        """Ask every pane's contestant the prompt; answers stream into the panes."""
        if self.busy:
            return self.message.warn("Still answering; press Stop first.")
        text = self.prompt.value
        if not text.strip():
            return None  # nothing to ask: Send waits for a prompt (disabled until there is one)
        with self.message.guard() as outcome:
            settings = self.settings_form.settings()
            self._ensure_conversation()
        if outcome.failed:
            return None
        self._stop.clear()
        for name, pane in zip(self.shown, self.panes):
            asked = [*self.conversation.histories[name], {"role": "user", "content": text}]
            pane.show("…", markdown=False, history=asked)
        self.voted = False
        self._answering = True
        self._show_vote_state()
        self._set_busy(True)
        self.message.say("Answering…")
        self._warn_if_training()
        self._thread = threading.Thread(
            target=self._answer, args=(text, settings), daemon=True, name="comparator-answer"
        )
        self._thread.start()

    def _warn_if_training(self) -> None:
        """Warn when runs train on the device that answers: slow answers, memory tight."""
        names = [run.name for run in self.session.runs_on_answer_device()]
        self._training_note = (
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} training on the device "
            "that answers: answers will be slow and memory tight until it ends."
            if names
            else ""
        )
        if names:
            self.message.warn(f"{self._training_note} Answering…")

    def stop(self) -> None:
        """End the generation in progress; the panes keep what was written so far."""
        self._stop.set()

    def reset(self) -> None:
        """Clear every contestant's conversation (blind mode draws a new order next time)."""
        self.stop()
        self.wait()
        self.conversation = None
        self.shown = []
        self.revealed = False
        for pane in self.panes:
            pane.show("", history=[])
        self.voted = False
        self.scores.value = ""
        self._show_titles()
        self._show_vote_state()

    def show_scores(self) -> None:
        """Score each pane's last answer with the picked reward model (widgets.compare.reward_scores)."""
        if self.busy or not self._turns:
            return self.reward_scores.clear()
        with self.message.guard("No scores") as outcome:
            system = self.settings_form.settings().system_prompt
        if not outcome.failed:
            self.reward_scores.show(self.conversation, self.shown, system)

    def vote(self, vote: str) -> None:
        """Record the vote on the chosen pair of panes; blind names are revealed after it."""
        pair = (self.vote_pair[0].value, self.vote_pair[1].value)
        refusal = vote_refusal(self._turns, self.busy, self.voted, pair)
        if refusal:
            return self.message.warn(refusal)
        a, b = (self.shown[d.value] for d in self.vote_pair)
        settings = self.settings_form.settings()
        with self.message.guard("The vote was not recorded") as outcome:
            self.session.record_vote(
                self.conversation.prompt_of(a, settings.system_prompt),
                (a, self.conversation.last_answer(a)),
                (b, self.conversation.last_answer(b)),
                vote,
                b_prompt=self.conversation.prompt_of(b, settings.system_prompt),
                comment=self.comment.value.strip(),
                settings=settings.to_json(),
                blind=self.blind.value,
            )
        if outcome.failed:
            return None
        self.voted = True
        self.revealed = True
        self.comment.value = ""
        self._show_titles()
        self._show_vote_state()
        self.message.say(f"Vote recorded ({VOTE_LABELS[vote]}); ask the next question.")

    def set_pane_count(self, count: int) -> None:
        """Show `count` panes (2 to 4), each with its contestant picker."""
        count = max(2, min(MAX_PANES, count))
        while len(self.pickers) < count:
            picker = widgets.Dropdown(layout={"width": "180px"})
            picker.observe(lambda _: None if self._quiet else self.reset(), names="value")
            self.pickers.append(picker)
            self.panes.append(AnswerPane())
        del self.pickers[count:], self.panes[count:]
        self.pickers_box.children = tuple(self.pickers)
        self.panes_box.children = tuple(self.panes)
        options = [(LETTERS[i], i) for i in range(count)]
        for k, dropdown in enumerate(self.vote_pair):
            dropdown.options, dropdown.value = options, k
            dropdown.layout.display = "" if count > 2 else "none"
        self.refresh_contestants()
        self.reset()

    def refresh_contestants(self) -> None:
        """Re-read the session's contestants into the pickers, keeping choices a person made
        that still exist; a picker still on the contestant offered to it follows the session's
        defaults (the base, then the selected run) until the chat starts."""
        names = self.session.contestants
        first = self.session.default_contestants(len(self.pickers))
        changed = False
        for k, picker in enumerate(self.pickers):
            current = picker.value
            offered = self._offered[k] if k < len(self._offered) else None
            follows = current not in names or (current == offered and not self._turns)
            wanted = first[min(k, len(first) - 1)] if follows else current
            if tuple(picker.options) == tuple(names) and wanted == current:
                continue
            self._quiet = True  # new options are no reason to reset the chat
            try:
                picker.options, picker.value = names, wanted
            finally:
                self._quiet = False
            changed = changed or wanted != current
        self._offered = first
        if changed:
            self.reset()
        self.batch.refresh_contestants(names, self.session.default_contestants())
        self.batch.refresh_runs([r.name for r in self.session.runs if r.folder.keep_file.exists()])
        self.reward_scores.refresh()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the answers in progress are done (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        """Whether answers are being generated."""
        return self._answering

    @property
    def _turns(self) -> int:
        """Answered turns of the current chat (0 before the first question)."""
        return 0 if self.conversation is None else self.conversation.turns

    # -- background work ----------------------------------------------------------------------
    def _answer(self, text: str, settings) -> None:
        started = time.monotonic()
        answers = None
        with self.message.guard("No answer"):
            answers = self.conversation.ask(text, settings, self._on_text, self._stop)
        if answers is not None:
            for name, pane in zip(self.shown, self.panes):
                history = self.conversation.histories[name][:-1]
                pane.show(answers.get(name, ""), self.markdown.value, history)
            stopped = " (stopped)" if self._stop.is_set() else ""
            took = time.monotonic() - started
            self.prompt.value = ""
            done = f"Answered in {took:.1f} s{stopped}. Vote below, or ask more."
            if self._training_note:  # the warning stays in sight
                self.message.warn(f"{done} {self._training_note}")
            else:
                self.message.say(done)
        self._answering = False
        self._set_busy(False)
        self._show_vote_state()
        if answers is not None:
            self.show_scores()

    def _on_text(self, name: str, text: str) -> None:
        now = time.monotonic()
        if now - self._redrawn.get(name, 0.0) < REDRAW_SECONDS:
            return
        self._redrawn[name] = now
        self.panes[self.shown.index(name)].show(text, self.markdown.value)

    def _ensure_conversation(self) -> None:
        chosen = [p.value for p in self.pickers]
        if len(set(chosen)) != len(chosen):
            raise ValueError("Pick a different contestant for each pane.")
        if self.conversation is not None and sorted(self.conversation.models) == sorted(chosen):
            return
        self.conversation = self.session.chat(chosen)
        self.shown = blind_order(chosen) if self.blind.value else list(chosen)
        self.revealed = False
        self._show_titles()

    def _model_changed(self) -> None:
        self.refresh_contestants()
        self.reset()  # the chat ran on the old base model

    # -- drawing ------------------------------------------------------------------------------
    def _show_titles(self) -> None:
        names = self.shown or [p.value for p in self.pickers]
        named = not self.blind.value or self.revealed
        hidden = not named and self.conversation is not None  # the pickers would give it away
        self.pickers_box.layout.display = "none" if hidden else ""
        self.blind_note.layout.display = "" if hidden else "none"
        for k, pane in enumerate(self.panes):
            name = names[k] if k < len(names) and named else None
            pane.show_title(LETTERS[k], name)

    def _show_vote_state(self) -> None:
        refused = vote_refusal(self._turns, self.busy, self.voted) is not None
        for button in self.vote_buttons.values():
            button.disabled = refused
        self.vote_box.layout.display = "" if self._turns and not self.busy else "none"

    def _set_busy(self, busy: bool) -> None:
        has_prompt = bool(self.prompt.value.strip())
        self.send_button.disabled = busy or not has_prompt
        self.send_button.tooltip = "Send (Ctrl+Enter)" if has_prompt else "Type a prompt to send."
        self.stop_button.disabled = not busy
        for picker in self.pickers:
            picker.disabled = busy

    def _redraw_all(self) -> None:
        for pane in self.panes:
            pane.show(pane.text, self.markdown.value)

    def _present(self, on: bool) -> None:
        """Presentation mode: the chat alone, without setup, votes' panel or old errors."""
        self.setup_box.layout.display = "none" if on else ""
        self.preferences_panel.layout.display = "none" if on else ""
        for notice in (self.message, self.preferences_panel.message):
            if on and notice.level == "error":
                notice.clear()
        if on:
            self.add_class("wb-present")
        else:
            self.remove_class("wb-present")
