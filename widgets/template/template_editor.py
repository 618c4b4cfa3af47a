"""TemplateEditor: choose or write the chat template and see exactly what trains.

A thin view over a Session: the preset list, the train-on choice and the Jinja editor each call
`session.set_template`; the preview and the warnings come from workbench.templates.preview and
workbench.templates.checks (which also decides the rows checked). Both work on what training
sees: a row longer than max_length is rendered and tokenised only that far plus a margin, and
the counts say how much was left out. Every piece of row or template text is escaped before it
reaches the page; refusals show in the view's Notice.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets

from workbench.templates import (
    MODEL_PRESET,
    PRESETS,
    Template,
    TemplateError,
)
from workbench.templates.checks import EXAMPLE, TemplateWarning, check_template, rows_to_check
from workbench.templates.preview import TemplatePreview, preview

from ..common.compat import titled
from ..common.notice import Notice, sentence
from ..common.theme import TRAINED_BACKGROUND, style_view, stylesheet
from .token_loss_view import TokenLossView

CUSTOM = "custom"
FIX_DRAFT = "The session keeps its last valid template; fix the Jinja above and it applies."
TRAIN_ON_CHOICES = [
    ("every assistant turn", "all_assistant"),
    ("the last assistant turn", "last_assistant"),
    ("everything", "all"),
]
STYLE = f"""<style>
.tw-jinja textarea {{ font-family: var(--jp-code-font-family); font-size: var(--jp-code-font-size); }}
.tw-text {{ white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--jp-code-font-family);
  margin: 0; color: var(--jp-ui-font-color1); background: var(--jp-layout-color1); }}
.tw-trained {{ background: {TRAINED_BACKGROUND}; color: var(--jp-ui-font-color1);
  box-shadow: inset 0 -2px 0 var(--jp-success-color1); }}
.tw-masked {{ color: var(--jp-ui-font-color2); }}
.tw-tok {{ display: inline-block; white-space: pre-wrap; word-break: break-all; max-width: 100%;
  font-family: var(--jp-code-font-family); margin: 1px; padding: 0 2px;
  border: 1px solid var(--jp-border-color2); border-radius: 2px; color: var(--jp-ui-font-color1); }}
.tw-tok.tw-special {{ font-weight: bold; border-color: var(--jp-brand-color1); }}
.tw-tok.tw-masked {{ background: var(--jp-layout-color2); color: var(--jp-ui-font-color1); }}
.tw-warning {{ border-left: 3px solid var(--jp-warn-color1); padding: 2px 8px; margin: 4px 0;
  color: var(--jp-ui-font-color1); }}
.tw-info {{ border-left: 3px solid var(--jp-border-color2); padding: 2px 8px; margin: 4px 0;
  color: var(--jp-ui-font-color2); }}
.tw-ok {{ color: var(--jp-ui-font-color1); border-left: 3px solid var(--jp-success-color1);
  padding: 2px 8px; }}
</style>"""
LEGEND = (
    "<div><span class='tw-trained'>trained</span> <span class='tw-masked'>masked (label -100)"
    "</span>. An answer trains with its end token and the whitespace the template writes after "
    "it, as TRL's completion-only loss does; ↵ is a newline token.</div>"
)


class TemplateEditor(widgets.VBox):
    """Preset list, Jinja editor, a live token preview of the selected row, and the checks.

    `lazy=True` (as the Workbench builds it) draws the view at once and leaves the tokenizer,
    which the template needs, to `warm_up()`, called later from a background thread.
    """

    def __init__(self, session, lazy: bool = False) -> None:
        self.session = session
        self._syncing = False
        self._preview_failed = False
        self._lock = threading.RLock()  # the warm-up thread and the kernel's own calls
        self.preset = widgets.Dropdown(
            options=[("model (the tokenizer's own)", MODEL_PRESET)]
            + [(name, name) for name in PRESETS]
            + [("custom", CUSTOM)],
            description="Template",
        )
        self.train_on = widgets.Dropdown(options=TRAIN_ON_CHOICES, description="Train on")
        self.jinja = widgets.Textarea(
            continuous_update=False, layout=widgets.Layout(width="100%", height="14em")
        )
        self.jinja.add_class("tw-jinja")
        self.message = Notice()
        self.counts = widgets.HTML()
        self.text_view = widgets.HTML()
        self.token_view = widgets.HTML()
        self.losses = TokenLossView(session)  # the row's tokens coloured by a model's loss
        self.views = titled(
            widgets.Tab(children=[self.text_view, self.token_view, self.losses]),
            ["Rendered text", "Tokens", "Loss per token"],
        )
        self.warnings = widgets.HTML()
        super().__init__(
            [
                stylesheet(),
                widgets.HTML(STYLE),
                widgets.HBox([self.preset, self.train_on]),
                self.jinja,
                self.message,
                self.counts,
                widgets.HTML(LEGEND),  # the colours of the views just below
                self.views,
                self.warnings,
            ]
        )
        style_view(self, "wb-template")
        if lazy:
            model = html.escape(session.model.display_name)
            self.counts.value = f"<div class='wb-hint'>Loading the tokenizer of {model}…</div>"
        else:
            self._sync_controls()
        self.preset.observe(self._on_preset, names="value")
        self.train_on.observe(self._on_train_on, names="value")
        self.jinja.observe(self._on_jinja, names="value")
        self._unsubscribe = [
            session.observe(self._on_template, names=["template", "model"]),
            session.observe(
                self._on_rows, names=["selected_row", "dataset", "edits", "max_length"]
            ),
        ]
        if not lazy:
            self.refresh()

    def warm_up(self) -> None:
        """The work `lazy` put off: load the tokenizer, show the template and its preview."""
        with self._lock:
            self._sync_controls()
            self.refresh()

    # -- controls -> session --------------------------------------------------------------------
    def _on_preset(self, change) -> None:
        if self._syncing or change["new"] == CUSTOM:
            return
        self._apply(
            lambda: self.session.set_template(change["new"], train_on=self.train_on.value),
            resync=True,
        )

    def _on_train_on(self, change) -> None:
        if self._syncing:
            return
        current = self.session.template  # "model" stays "model": its Jinja follows the model
        self._apply(lambda: self.session.set_template(current, train_on=change["new"]), resync=True)

    def _on_jinja(self, change) -> None:
        if self._syncing:
            return
        source = change["new"]
        name = next((n for n, s in PRESETS.items() if s == source), CUSTOM)

        self._apply(lambda: self.session.set_template(Template(source, name, self.train_on.value)))

    def _apply(self, action, resync: bool = False) -> None:
        """Run one Session call; a refusal shows as a sentence, with the details a click away."""
        then = "The session keeps its current template." if resync else FIX_DRAFT
        with self.message.guard(then=then) as outcome:  # a refusal reaches the person
            try:
                action()
            except Exception:
                if resync:  # a refused preset or train_on: show what the session still holds
                    self._sync_controls()
                raise
        if outcome.failed:
            return
        if not self._preview_failed:  # applied; a preview that fails on it keeps its message
            self.message.clear()

    # -- session -> view ------------------------------------------------------------------------
    def _on_template(self, change) -> None:
        self._sync_controls()
        self.refresh()

    def _on_rows(self, change) -> None:
        self.refresh()

    def _sync_controls(self) -> None:
        """Show the session's template in the controls without applying it again."""
        with self._lock:
            self._sync_controls_now()

    def _sync_controls_now(self) -> None:
        template = self.session.template
        self._syncing = True
        try:
            self.preset.value = template.name if template.name in self._preset_names() else CUSTOM
            self.train_on.value = template.train_on
            try:
                self.jinja.value = template.jinja
            except TemplateError as e:
                self.message.error(f"{sentence(e)} Choose another template.", e)
        finally:
            self._syncing = False

    def _preset_names(self) -> set[str]:
        return {MODEL_PRESET, *PRESETS}

    def refresh(self) -> None:
        """Redraw the preview and the warnings for the selected row and the current template."""
        with self._lock:
            self._refresh_now()

    def _refresh_now(self) -> None:
        template = self.session.template
        example, note = self._selected_example()
        try:
            shown = preview(template, example, self.session.max_length)
            rows = rows_to_check(self.session.dataset, self.session.selected_row)
            found = check_template(template, *rows, self.session.max_length)
        except TemplateError as e:
            self.counts.value = self.text_view.value = ""
            self.token_view.value = self.warnings.value = ""
            self.message.error(f"No preview: {sentence(e)}", e)
            self._preview_failed = True
            return
        if self._preview_failed:  # the preview works again: its error is history
            self.message.clear()
            self._preview_failed = False
        self.counts.value = _counts_html(shown, note, self.session.max_length)
        self.text_view.value = _text_html(shown)
        self.token_view.value = _tokens_html(shown)
        self.warnings.value = _warnings_html(found)

    def _selected_example(self) -> tuple[dict, str]:
        ds = self.session.dataset
        if ds is None or len(ds) == 0:
            return EXAMPLE, "No dataset is loaded: showing an example conversation."
        row = min(self.session.selected_row, len(ds) - 1)
        return ds[row], f"Row {row}."

    def close(self) -> None:
        """Stop observing the session and close the widget."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        super().close()


def _counts_html(shown: TemplatePreview, note: str, max_length: int | None) -> str:
    at_least = "At least " if shown.left_out else ""
    cut = (
        f" {at_least}{shown.truncated_trained} trained tokens are cut off by max_length."
        if shown.truncated_trained
        else ""
    )
    if shown.left_out:
        parts = " and ".join(f"{n:,} characters of message {k}" for k, n in shown.left_out.items())
        cut += (
            f" Training keeps the first {max_length} tokens, so only that much (and a margin) is "
            f"rendered and tokenised here; left out: {parts}."
        )
    return (
        f"<div>{html.escape(note)} <b>{shown.num_trained}</b> trained of "
        f"<b>{shown.num_tokens}</b> tokens.{html.escape(cut)}</div>"
    )


def _text_html(shown: TemplatePreview) -> str:
    pieces = "".join(
        f"<span class='{'tw-trained' if trained else 'tw-masked'}'>{html.escape(text)}</span>"
        for text, trained in shown.segments()
    )
    return f"<pre class='tw-text'>{pieces}</pre>"


def _tokens_html(shown: TemplatePreview) -> str:
    chips = []
    for token in shown.tokens:
        classes = "tw-tok " + ("tw-trained" if token.trained else "tw-masked")
        classes += " tw-special" if token.special else ""
        label = html.escape(token.text).replace("\n", "↵")
        state = "trained" if token.trained else "masked"
        chips.append(f"<span class='{classes}' title='id {token.id}, {state}'>{label}</span>")
        if token.text.endswith("\n"):
            chips.append("<br>")
    return f"<div>{''.join(chips)}</div>"


def _warnings_html(found: list[TemplateWarning]) -> str:
    """The checks' findings: problems first, each with its fix; informational notes (severity
    "info") after a "no problems" line, in plain type, since there is nothing to fix."""
    problems = [w for w in found if w.severity == "warning"]
    notes = [w for w in found if w.severity != "warning"]
    items = (
        [] if problems else ["<div class='tw-ok'>✓ No problems found in the checked rows.</div>"]
    )
    for w in problems + notes:
        rows = ", ".join(str(r) for r in w.rows[:20]) + (" ..." if len(w.rows) > 20 else "")
        where = f"<br>Rows: {html.escape(rows)}" if w.rows else ""
        why = f"<details><summary>Why</summary>{html.escape(w.explanation)}{where}</details>"
        if w in problems:
            text = f"<b>{html.escape(w.message)}</b><br>Fix: {html.escape(w.fix)}"
            items.append(f"<div class='tw-warning'>{text}{why}</div>")
        else:
            text = f"Note: {html.escape(w.message)} {html.escape(w.fix)}"
            items.append(f"<div class='tw-info'>{text}{why}</div>")
    return "".join(items)
