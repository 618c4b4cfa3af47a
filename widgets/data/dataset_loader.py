"""DatasetLoader: the load bar of the dataset browser: a path, the layout, column mapping.

When a load needs a choice (a layout that cannot be detected, tool turns, nested instances), the
error names the option and this bar offers its choices as a dropdown.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from workbench.data import DESCRIPTIONS, FORMATS, DatasetLoadError, describe_columns, fields_of

from ..common.notice import Notice
from ..common.parts import make_button
from ..common.theme import plural


class DatasetLoader(widgets.VBox):
    """Load a path, folder or hub name into the session, with the layout and mapping to use."""

    def __init__(self, session, guard: Callable[[Callable[[], None]], bool]):
        self.session = session
        self.guard = guard  # runs an action; a failure shows in `message`, details a click away
        self._option_name: str | None = None
        self.source = widgets.Text(description="Data", placeholder="path, folder or hub name")
        formats = [("detect the layout", "")] + [(DESCRIPTIONS[f], f) for f in FORMATS]
        self.format = widgets.Dropdown(options=formats, description="Layout")
        self.option = widgets.Dropdown(options=[], layout=widgets.Layout(display="none"))
        self.mapping = widgets.HBox()
        self.load_button = make_button("Load", self.load, button_style="primary")
        self.columns_button = make_button("Map columns", self.show_columns)
        self.message = Notice()
        row = widgets.HBox([self.source, self.format, self.load_button, self.columns_button])
        super().__init__([row, self.option, self.mapping, self.message])

    def load(self) -> None:
        """Load the source with the chosen layout, mapping and option (one Session call)."""
        options = {"format": self.format.value or None}
        mapping = {f: d.value for f, d in self.mapping_fields().items() if d.value}
        if mapping:
            options["mapping"] = mapping
        if self._option_name and self.option.value:
            options[self._option_name] = self.option.value
        options = {k: v for k, v in options.items() if v is not None}
        if self.guard(lambda: self.session.load_dataset(self.source.value.strip(), **options)):
            report = self.session.dataset.load_report
            bad = plural(len(report.skipped), "malformed line")
            skipped = f"; skipped {bad}" if report.skipped else ""
            text = f"Loaded {plural(report.rows, 'row')} ({report.format}){skipped}."
            if report.warnings:  # what could not be kept as given: said, never silent
                self.message.warn(
                    f"{text} {plural(len(report.warnings), 'note')} below.",
                    details="\n".join(report.warnings + report.uses),
                )
            else:  # what each column beside the messages is used for, a click away
                self.message.say(text, details="\n".join(report.uses))

    def show_columns(self) -> None:
        """Offer a dropdown of the source's columns for each field of the layout."""

        def show() -> None:
            columns, found = describe_columns(self.source.value.strip())
            layout = self.format.value or found or "prompt_completion"
            choices = [("—", "")] + [(c, c) for c in columns]
            self.mapping.children = [
                widgets.Dropdown(options=choices, description=f, value=f if f in columns else "")
                for f in fields_of(layout)
            ]
            self.format.value = layout

        self.guard(show)

    def offer_option(self, error: DatasetLoadError) -> None:
        """Show the choices of the option a load error names."""
        if error.option == "mapping":
            self.show_columns()
        elif error.option and error.choices:
            self._option_name = error.option
            self.option.description = error.option
            self.option.options = error.choices
            self.option.layout.display = None

    def mapping_fields(self) -> dict[str, widgets.Dropdown]:
        """The column dropdowns shown, by the layout field each one fills."""
        return {d.description: d for d in self.mapping.children}
