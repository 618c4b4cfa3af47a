"""DatasetBrowser: look at instruction data, find what is wrong, fix it, without leaving Jupyter.

A thin view over a Session: reading goes through the dataset's page/search/filter/quality/stats,
every change is one Session call (load_dataset, select, edit, flag, exclude, add_row). All row
text is escaped (widgets.common.html_text) before it reaches an HTML widget, and none is sent whole: a
turn shows a window (workbench.data.excerpt) that its "show more" buttons move, and the editor
edits the head of a long turn, keeping the rest. Enter in the search box searches; clicking a
row's text selects it (widgets.common.keys). The length histogram (widgets.data.length_plot) is drawn on
first need: before that a one-line hint stands in its place.
"""

from __future__ import annotations

import contextlib

import ipywidgets as widgets

from workbench.data import TITLES, DatasetLoadError, RowSelection, SearchResult
from workbench.data.excerpt import LISTED_TURNS, TURN_CHARS, text_window

from ..common.compat import titled
from ..common.html_text import escape_text, row_badges, transcript
from ..common.keys import ClickableHTML
from ..common.parts import make_button
from ..common.progress_line import ProgressLine
from ..common.theme import line, plural, style_view, stylesheet
from .dataset_loader import DatasetLoader
from .grow_panel import GrowPanel
from .quality_panel import QualityPanel
from .row_editor import ROLES, RowEditor
from .split_bar import SplitBar

PAGE_SIZE = 10
SEED_ROWS = 10  # rows of the current view that seed the Grow panel
STATUS = [
    ("any status", ""),
    ("flagged", "flagged"),
    ("not flagged", "unflagged"),
    ("excluded", "excluded"),
    ("edited", "edited"),
]
STYLE = """<style>
.wb-dsb-row { border-left: 3px solid var(--jp-border-color2); padding: 2px 8px; margin: 2px 0;
  color: var(--jp-ui-font-color1); background: var(--jp-layout-color1); }
.wb-dsb-row.wb-selected { border-left-color: var(--jp-brand-color1); }
.wb-dsb-row.wb-excluded { color: var(--jp-ui-font-color2); }
.wb-turn { white-space: pre-wrap; font-family: var(--jp-code-font-family); margin: 1px 0; }
.wb-role { font-weight: bold; color: var(--jp-ui-font-color2); margin-right: 6px; }
.wb-dsb-badge { border: 1px solid var(--jp-warn-color0); border-radius: 3px; padding: 0 4px;
  margin-left: 6px; color: var(--jp-ui-font-color1); }
.wb-dsb-info { color: var(--jp-ui-font-color2); }
</style>"""


class DatasetBrowser(widgets.VBox):
    """Load data, page through it, search, filter, check quality, plot lengths and edit rows."""

    def __init__(self, session, page_size: int = PAGE_SIZE) -> None:
        self.session = session
        self.page_size = page_size
        self.view: RowSelection | None = None  # None: every row
        self._starts: dict[tuple[int, int], int] = {}  # (row, turn) -> where its window starts
        self.page_number = 0
        self.loader = DatasetLoader(session, guard=self._guard)
        self.message = self.loader.message
        self.progress = ProgressLine(unit="rows")  # tokenising a large set shows its progress
        self._build_browser()
        self.quality = QualityPanel(
            session, self._guard, self.progress, self._show_selection, self.go_to_row
        )
        self.editor = RowEditor(session, self._guard, on_added=self.go_to_row)
        self.grow = GrowPanel(session)
        self.split_bar = SplitBar(session)
        self.grow_box = titled(widgets.Accordion(children=[self.grow]), ["Grow the data"])
        self.grow_box.selected_index = None
        super().__init__(
            [
                stylesheet(),
                widgets.HTML(STYLE),
                self.loader,
                self.split_bar,
                self.browser,
                self.quality,
                self.editor,
                self.grow_box,
            ]
        )
        style_view(self, "wb-data")
        self._unsubscribe = session.observe(
            self._on_change, ["dataset", "edits", "selected_row", "template", "model", "max_length"]
        )
        self._on_dataset()

    # -- layout -------------------------------------------------------------------------------
    def _build_browser(self) -> None:
        self.query = widgets.Text(
            placeholder="search every turn", description="Search", continuous_update=False
        )  # Enter (or leaving the box) searches
        self.query.observe(lambda _: self._quiet or self._apply_view(), names="value")
        self._quiet = False  # the view sets the box itself: no search
        self._applied: tuple | None = None  # the search and filters shown now
        self.regex = widgets.Checkbox(description="regex", indent=False)
        self.match_case = widgets.Checkbox(description="match case", indent=False)
        self.search_role = widgets.Dropdown(options=[("any role", "")] + [(r, r) for r in ROLES])
        self.status = widgets.Dropdown(options=STATUS, description="Show")
        self.has_role = widgets.Dropdown(
            options=[("any turns", "")] + [(f"has {_article(r)} {r} turn", r) for r in ROLES]
        )
        self.min_tokens = widgets.IntText(0, description="Tokens ≥")
        self.max_tokens = widgets.IntText(0, description="≤ (0: any)")
        self.problem = widgets.Dropdown(
            options=[("any quality", "")] + [(title, name) for name, title in TITLES.items()]
        )
        self.search_button = make_button("Search / filter", self._apply_view)
        self.clear_button = make_button("Show all", self._clear_view)
        self.prev_button = make_button("◀", lambda: self._show(self.page_number - 1))
        self.next_button = make_button("▶", lambda: self._show(self.page_number + 1))
        self.page_label = widgets.HTML()
        self.jump = widgets.IntText(0, description="Row")
        self.jump_button = make_button("Go", lambda: self.go_to_row(self.jump.value))
        self.random_button = make_button("Random rows", self._random)
        self.row_buttons = [
            widgets.Button(layout=widgets.Layout(width="6em")) for _ in range(self.page_size)
        ]
        self.row_views = [
            ClickableHTML(layout=widgets.Layout(width="100%")) for _ in range(self.page_size)
        ]
        self.row_pagers = [widgets.VBox() for _ in range(self.page_size)]  # "show more" per turn
        for k, (button, text) in enumerate(zip(self.row_buttons, self.row_views)):
            button.on_click(lambda _, k=k: self._select_shown(k))
            text.on_click(lambda _, k=k: self._select_shown(k))  # the row's text selects it too
        self.rows_box = widgets.VBox(
            [
                line(b, text=widgets.VBox([v, p]))
                for b, v, p in zip(self.row_buttons, self.row_views, self.row_pagers)
            ]
        )
        self.browser = widgets.VBox(
            [
                widgets.HBox([self.query, self.regex, self.match_case, self.search_role]),
                widgets.HBox([self.status, self.has_role, self.problem]),
                widgets.HBox(
                    [self.min_tokens, self.max_tokens, self.search_button, self.clear_button]
                ),
                widgets.HBox(
                    [
                        self.prev_button,
                        self.next_button,
                        self.page_label,
                        self.jump,
                        self.jump_button,
                        self.random_button,
                    ]
                ),
                self.rows_box,
            ]
        )

    # -- browsing -----------------------------------------------------------------------------
    def _select_shown(self, k: int) -> None:
        """Select the row shown in place `k` (its number button or its text was clicked)."""
        if k < len(self._shown):
            self._guard(lambda: self.session.select(self._shown[k]))

    def _apply_view(self) -> None:
        """Search and filter as the controls say; the same search twice in a row runs once
        (Enter, then a click on the button)."""
        ds = self.session.dataset
        if ds is None:
            return
        key = (
            id(ds),
            self.query.value,
            self.regex.value,
            self.match_case.value,
            self.search_role.value,
            self.status.value,
            self.has_role.value,
            self.problem.value,
            self.min_tokens.value,
            self.max_tokens.value,
        )
        if key == self._applied:
            return
        criteria = {
            "role": self.has_role.value or None,
            "problem": self.problem.value or None,
            "min_tokens": self.min_tokens.value or None,
            "max_tokens": self.max_tokens.value or None,
        }
        status = self.status.value
        if status:
            key = "flagged" if status in ("flagged", "unflagged") else status
            criteria[key] = status != "unflagged"
        criteria = {k: v for k, v in criteria.items() if v is not None}

        def find() -> None:
            view = ds.filter(**criteria) if criteria else None
            if self.query.value:
                roles = [self.search_role.value] if self.search_role.value else None
                view = ds.search(
                    self.query.value,
                    regex=self.regex.value,
                    roles=roles,
                    ignore_case=not self.match_case.value,
                    within=view,
                )
            self._set_view(view)

        if self._guard(find, self.progress):
            self._applied = key
            self._show(0)

    def _clear_view(self) -> None:
        self._quiet = True
        try:
            self.query.value, self.status.value, self.has_role.value = "", "", ""
            self.problem.value, self.min_tokens.value, self.max_tokens.value = "", 0, 0
        finally:
            self._quiet = False
        self._set_view(None)
        self._show(0)

    def _random(self) -> None:
        if self.session.dataset is not None:
            self._set_view(self.session.dataset.sample(self.page_size))
            self._show(0)

    def _set_view(self, view: RowSelection | None) -> None:
        """Show `view` (None: every row) from its first page, each turn from its start; the
        Grow panel seeds from what is shown."""
        self.view, self.page_number, self._starts = view, 0, {}
        self._applied = None  # a search or filter sets it again once shown
        ds = self.session.dataset
        if view is not None:
            self.grow.use_rows(view.rows[:SEED_ROWS], label=view.label)
        elif ds is not None:
            self.grow.use_rows(range(min(SEED_ROWS, len(ds))), label="the first rows")

    def _show_selection(self, selection: RowSelection) -> None:
        self._set_view(selection)
        self._show(0)

    def go_to_row(self, row: int) -> None:
        """Select `row` and show the page that holds it (in the current view when it has it)."""
        if self._guard(lambda: self.session.select(int(row))):
            row = self.session.selected_row
            page = self.view.page_of(row, self.page_size) if self.view is not None else None
            if page is None:
                self.view, page = None, self.session.dataset.page_of(row, self.page_size)
            self._show(page)

    def _show(self, number: int | None = None) -> None:
        ds = self.session.dataset
        rows: list[dict] = []
        if ds is None:
            self.page_label.value = "<span class='wb-dsb-info'>No dataset loaded.</span>"
            self.page_number = 0
        else:
            source = ds if self.view is None else self.view
            page = source.page(self.page_number if number is None else number, self.page_size)
            rows, self.page_number = page.rows, page.number
            where = "" if self.view is None else f" — {escape_text(self.view.label)}"
            self.page_label.value = (
                f"<span class='wb-nowrap'>Page {page.number + 1:,} of {page.pages:,}: "
                f"{plural(page.total, 'row')}</span>{where}"
            )
        self._shown = [row["row"] for row in rows]
        padded = rows + [None] * (self.page_size - len(rows))
        for k, (button, row) in enumerate(zip(self.row_buttons, padded)):
            button.layout.display = self.row_views[k].layout.display = None if row else "none"
            self.row_pagers[k].layout.display = None if row else "none"
            if row:
                button.description = f"#{row['row']}"
                self._show_row(k, row)

    def _show_row(self, k: int, row: dict) -> None:
        """Row view `k`: each turn's window (where its "show more" left it), the search's
        matches around it, and the buttons that move the window of each long turn."""
        windows, spans, hidden, pagers = {}, {}, {}, []
        for t, message in enumerate(row["messages"][:LISTED_TURNS]):
            start = self._starts.get((row["row"], t), 0)
            window = text_window(str(message.get("content") or ""), start, TURN_CHARS)
            windows[t] = window
            if isinstance(self.view, SearchResult):
                found = self.view.window_matches(message, window.start, window.end)
                spans[t], hidden[t] = found.spans, (found.before, found.after)
            if not window.whole:
                pagers.append(self._pager(k, row["row"], t, message.get("role"), window))
        selected = row["row"] == self.session.selected_row
        self.row_views[k].value = _row_html(row, selected, windows, spans, hidden)
        self.row_pagers[k].children = pagers

    def _pager(self, k: int, row: int, turn: int, role, window) -> widgets.HBox:
        """The buttons that move one long turn's window back and on, and where it is."""

        def move(start: int) -> None:
            self._starts[(row, turn)] = start
            self._guard(lambda: self._show_row(k, self.session.dataset[row]))

        earlier = make_button("◀ earlier", lambda: move(window.previous_start(TURN_CHARS)))
        more = make_button("show more ▶", lambda: move(window.next_start()))
        earlier.disabled, more.disabled = not window.before, not window.after
        where = widgets.Label(
            f"turn {turn} ({role}): characters {window.start + 1:,}–"
            f"{window.end:,} of {window.total:,}"
        )
        return widgets.HBox([where, earlier, more])

    # -- session changes and errors -----------------------------------------------------------
    def _on_change(self, change) -> None:
        if change.name == "dataset":
            self._on_dataset()
        elif change.name in ("edits", "selected_row"):
            if change.name == "edits":
                self._applied = None  # a flag or an edit can change what a filter finds
                if (change.new or {}).get("op") not in ("flag", "unflag"):  # a flag changes no text
                    self.quality.rows_changed()
            else:
                self.jump.value = change.new  # the Row box says which row is selected
            self._show()
            self.editor.load()
        else:
            self.quality.measure_changed()

    def _on_dataset(self) -> None:
        self.loader.source.value = self.session.dataset_source or self.loader.source.value
        self.jump.value = self.session.selected_row if self.session.dataset is not None else 0
        self._set_view(None)
        self.quality.reset()
        self._show(0)
        self.editor.load()

    def _guard(self, action, progress: ProgressLine | None = None) -> bool:
        """Run a user action; an error shows as one sentence with the details a click away.
        The core's progress reports (tokenising) go to `progress`."""
        counting = progress.counting() if progress is not None else contextlib.nullcontext()
        with self.message.guard() as outcome, counting:
            try:
                action()
            except DatasetLoadError as e:  # the choice that resolves it, offered first
                self.loader.offer_option(e)
                raise
        if outcome.failed:
            return False
        self.message.clear()
        return True

    def close(self) -> None:
        """Stop observing the session and close the widget."""
        self._unsubscribe()
        super().close()


def _row_html(row: dict, selected: bool, windows: dict, spans: dict, hidden: dict) -> str:
    turns = transcript(row["messages"], spans, windows, hidden)
    classes = "wb-dsb-row" + (" wb-selected" if selected else "")
    classes += " wb-excluded" if row.get("excluded") else ""
    return f"<div class='{classes}'>{row_badges(row)}{turns}</div>"


def _article(word: str) -> str:
    """ "an assistant turn", "a user turn": "an" before a vowel sound (a role's "u" sounds "you")."""
    return "an" if word[:1] in "aeio" else "a"
