"""How every view looks: one stylesheet over JupyterLab's theme variables, plot colours that read
in the light and the dark theme, and the small words of a label (plurals).

Colours are JupyterLab's `--jp-*` variables, or pairs measured to pass in both themes: text at
4.5:1 or more (WCAG AA), lines of a chart at 3:1 or more (WCAG 1.4.11) against JupyterLab's
light (white) and dark (#111, #212121) backgrounds. Button styles: only "primary" and "danger"
keep their white label readable in the light theme ("warning", "info" and "success" put white on
orange, cyan or green: under 4.5:1), so a view uses those two or none.
"""

from __future__ import annotations

import ipywidgets as widgets

VIEW_CLASS = "wb-view"
READABLE_BUTTON_STYLES = ("", "primary", "danger")
# Backgrounds a view is drawn on: light theme, dark theme's cell area and its panels.
BACKGROUNDS = ("#ffffff", "#111111", "#212121")
# Chart lines, each at least 3:1 against every background above (tests check it).
PLOT_COLOURS = {
    "raw": "#808080",  # the raw train loss: grey, thin, under the smoothed line
    "smoothed": "#1f77b4",
    "eval": "#d62728",
    "learning_rate": "#2ca02c",
    "keep_drift": "#b07d00",  # dark gold: 3.6:1 on white, over 4:1 on the dark theme
}
SERIES_COLOURS = (
    "#9467bd",
    "#c2571a",
    "#1a8f87",
    "#b8439a",
    "#6b8e23",
    "#4f6fc7",
    "#9c7a1a",
    "#7b68c8",
    "#2f8fbf",
)
TEXT_COLOUR = "var(--jp-ui-font-color1)"
# A highlight behind text: a colour at a third of its strength over the page's own background,
# light behind dark text in the light theme, dark behind light text in the dark theme.
TRAINED_BACKGROUND = "rgba(76, 175, 80, 0.3)"  # JupyterLab's green (--md-green-500)
MATCH_BACKGROUND = "rgba(255, 152, 0, 0.35)"  # JupyterLab's orange (--md-orange-500)

CSS = f"""<style>
/* Every view: a row that does not fit wraps instead of scrolling sideways; a button is as wide
   as its label; long words break. */
.{VIEW_CLASS} {{ max-width: 100%; box-sizing: border-box; }}
.{VIEW_CLASS} .widget-hbox {{ flex-wrap: wrap; row-gap: 2px; }}
/* A field as wide as its box (width 100%) keeps its margins inside the box. */
.{VIEW_CLASS} .widget-inline-hbox {{ max-width: calc(100% - 2 * var(--jp-widgets-margin)); }}
/* A form's fields fill their grid column, and the grid has as many columns as fit. */
.{VIEW_CLASS} .widget-gridbox > .widget-inline-hbox {{ width: auto; min-width: 0; }}
.{VIEW_CLASS} .widget-button, .{VIEW_CLASS} .widget-toggle-button {{
  width: auto; min-width: 2.5em; max-width: 100%; }}
.{VIEW_CLASS} .widget-html-content {{ overflow-wrap: anywhere; min-width: 0; }}
/* A long field name wraps onto a second line instead of ending in "…". */
.{VIEW_CLASS} .widget-inline-hbox .widget-label {{ white-space: normal; overflow-wrap: anywhere;
  line-height: 1.2; height: auto; align-self: center; }}
.{VIEW_CLASS} pre {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
.{VIEW_CLASS} .widget-select-multiple select, .{VIEW_CLASS} .widget-select select {{
  max-width: 100%; }}
.{VIEW_CLASS} .widget-checkbox {{ width: auto; padding-right: 8px; }}
/* A list line (a button or tick beside a row's text) stays one line; the text takes the rest. */
.{VIEW_CLASS} .widget-hbox.wb-line {{ flex-wrap: nowrap; }}
.{VIEW_CLASS} .wb-line > .wb-line-text {{ flex: 1 1 0%; min-width: 0; }}
.wb-nowrap {{ white-space: nowrap; }}
.wb-hint {{ color: var(--jp-ui-font-color2); font-style: italic; padding: 4px 0; }}
/* Tables: columns aligned, numbers on the right in figures of one width. */
table.wb-table {{ border-collapse: collapse; margin: 4px 0; color: {TEXT_COLOUR}; }}
table.wb-table th, table.wb-table td {{ text-align: left; vertical-align: top;
  padding: 2px 12px 2px 0; border-bottom: 1px solid var(--jp-border-color2); }}
table.wb-table th {{ font-weight: bold; }}
table.wb-table .wb-num {{ text-align: right; font-variant-numeric: tabular-nums; }}
/* Notices: the sentence in the text colour, its level in the bar beside it. */
.wb-notice-line {{ color: {TEXT_COLOUR}; border-left: 3px solid; padding: 2px 8px;
  margin: 2px 0; }}
.wb-notice-info {{ border-color: var(--jp-brand-color1); }}
.wb-notice-warning {{ border-color: var(--jp-warn-color1); }}
.wb-notice-error {{ border-color: var(--jp-error-color1); font-weight: 600; }}
/* The field a refusal names, until it changes. */
.wb-invalid input, .wb-invalid select, .wb-invalid textarea {{
  outline: 2px solid var(--jp-error-color1); outline-offset: -1px; }}
</style>"""


def style_view(view: widgets.DOMWidget, name: str) -> None:
    """Mark `view` as one of the workbench's views (the shared stylesheet applies) named `name`."""
    view.add_class(VIEW_CLASS)
    view.add_class(name)


def line(*parts: widgets.Widget, text: widgets.Widget) -> widgets.HBox:
    """One line of a list: `parts` (a row's button, a tick) then `text`, which takes the rest of
    the width; the line never wraps, so a button stays beside its row."""
    text.add_class("wb-line-text")
    made = widgets.HBox([*parts, text])
    made.add_class("wb-line")
    return made


def stylesheet() -> widgets.HTML:
    """The shared stylesheet as a widget; each view carries one so it also looks right alone."""
    sheet = widgets.HTML(CSS)
    sheet.layout.display = "none"  # a <style> needs no room; hiding the box keeps it out of the way
    return sheet


def plural(count: int, word: str, words: str | None = None) -> str:
    """ "1 vote", "2 votes", "1,024 rows": a count and its noun (`words` for an odd plural)."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two "#rrggbb" colours (1 to 21)."""
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
