"""RowEditor: edit the selected row's turns, flag it, exclude it, or add it as a new row.

Every button is one Session call (edit, add_row, flag, unflag, exclude, include). A turn keeps the
keys it was loaded with (reasoning_content, training flags, tool calls) and shows which; a long
turn shows its head to edit (workbench.data.excerpt) and saving keeps the hidden rest.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from workbench.data.excerpt import EDIT_CHARS, text_window

from ..common.html_text import escape_text, row_badges
from ..common.parts import make_button

ROLES = ("system", "user", "assistant")


class RowEditor(widgets.VBox):
    """The selected row as editable turns, with Save, Add as new row, Flag and Exclude."""

    def __init__(
        self,
        session,
        guard: Callable[[Callable[[], object]], bool],
        on_added: Callable[[int], None] | None = None,
    ) -> None:
        self.session, self._guard, self._on_added = session, guard, on_added
        self.title = widgets.HTML()
        self.turns = widgets.VBox()
        self.add_turn_button = make_button("+ turn", lambda: self._add_turn("user", ""))
        self.save_button = make_button(
            "Save edit",
            lambda: self._act(lambda row: self.session.edit(row, self.edited_messages())),
            button_style="primary",
        )
        self.add_row_button = make_button("Add as new row", self._add_row)
        self.flag_reason = widgets.Text(placeholder="why this row is wrong", description="Reason")
        self.flag_button = make_button("Flag", self._flag)
        self.unflag_button = make_button("Unflag", lambda: self._act(self.session.unflag))
        self.exclude_button = make_button("Exclude", self._toggle_exclude)
        super().__init__(
            [
                self.title,
                self.turns,
                widgets.HBox([self.add_turn_button, self.save_button, self.add_row_button]),
                widgets.HBox(
                    [self.flag_reason, self.flag_button, self.unflag_button, self.exclude_button]
                ),
            ]
        )

    def load(self) -> None:
        """Show the session's selected row (nothing when there is no data)."""
        ds = self.session.dataset
        if ds is None or not len(ds):
            self.title.value, self.turns.children = "", []
            return
        row = ds[min(self.session.selected_row, len(ds) - 1)]
        self.title.value = f"<b>Selected row {row['row']}</b>{row_badges(row)}"
        self.turns.children = []
        for message in row["messages"]:
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            self._add_turn(message.get("role") or "user", message.get("content") or "", extra)
        self.exclude_button.description = "Include" if row["excluded"] else "Exclude"

    def edited_messages(self) -> list[dict]:
        """The messages as the editor holds them now, each with the keys it was loaded with;
        a long turn is its edited head followed by its hidden rest (unless its box is unticked)."""
        return [
            {**t.extra, "role": t.children[0].value, "content": _content(t)}
            for t in self.turns.children
        ]

    def _add_turn(self, role: str, content: str, extra: dict | None = None) -> None:
        """One turn; `extra` is shown by key and kept unchanged when the row is saved. A turn
        longer than EDIT_CHARS shows its head; saving puts the edited head back in front of the
        hidden rest, unless "keep the hidden characters" is unticked (then the head alone)."""
        role_box = widgets.Dropdown(options=ROLES, value=role if role in ROLES else "user")
        turn = widgets.HBox()
        turn.whole, turn.window = content, text_window(content, 0, EDIT_CHARS)
        text = widgets.Textarea(turn.window.text, layout=widgets.Layout(width="70%", height="5em"))
        turn.extra = dict(extra or {})
        kept = widgets.HTML(escape_text("kept: " + ", ".join(turn.extra)) if turn.extra else "")
        turn.children = [role_box, text, make_button("✕", lambda: self._remove_turn(turn)), kept]
        turn.keep_rest = None
        if turn.window.after:
            hidden = f"{turn.window.after:,}"
            turn.keep_rest = widgets.Checkbox(
                True, description=f"keep the hidden {hidden} characters", indent=False
            )
            note = widgets.HTML(
                escape_text(
                    f"This turn has {turn.window.total:,} characters; the first "
                    f"{len(turn.window.text):,} are shown. Saving keeps the other {hidden} after "
                    "the edited part, unless you untick the box."
                )
            )
            turn.children = [*turn.children, widgets.VBox([note, turn.keep_rest])]
        self.turns.children = [*self.turns.children, turn]

    def _remove_turn(self, turn: widgets.HBox) -> None:
        self.turns.children = [t for t in self.turns.children if t is not turn]

    def _add_row(self) -> None:
        if self._guard(lambda: self.session.add_row(self.edited_messages())) and self._on_added:
            self._on_added(len(self.session.dataset) - 1)

    def _flag(self) -> None:
        """Flag the selected row with the reason typed; the box empties for the next one."""
        reason = self.flag_reason.value.strip() or "flagged"
        if self._act(lambda row: self.session.flag(row, reason)):
            self.flag_reason.value = ""

    def _toggle_exclude(self) -> None:
        excluded = self.session.selected_row in self.session.dataset.excluded
        self._act(self.session.include if excluded else self.session.exclude)

    def _act(self, change) -> bool:
        """Apply `change` to the selected row; True when it was applied."""
        if self.session.dataset is None:
            return False
        return self._guard(lambda: change(self.session.selected_row))


def _content(turn: widgets.HBox) -> str:
    """The text of a turn: a long turn's edited head spliced back into its rest."""
    edited = turn.children[1].value
    if turn.keep_rest is None or not turn.keep_rest.value:
        return edited
    return turn.window.splice(turn.whole, edited)
