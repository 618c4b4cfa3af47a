"""HTML of a Comparison: the standalone report file and the table a notebook shows.

Every value from a prompt, an answer, a file name or a setting is escaped on the line that puts it
in HTML. The report uses CSS system colours (Canvas, CanvasText, GrayText) so it reads in light
and dark browsers without JupyterLab's variables; the notebook table uses JupyterLab's.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import Comparison

REPORT_STYLE = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 2rem; background: Canvas; color: CanvasText; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
table.answers { table-layout: fixed; }
table.answers th:first-child { width: 2.5rem; }
th, td { border: 1px solid GrayText; padding: .4rem .6rem; text-align: left; vertical-align: top; }
td.text { white-space: pre-wrap; overflow-wrap: anywhere; }
td.hash { font-family: ui-monospace, monospace; }
.mark { font-weight: bold; }
"""
NOTEBOOK_TABLE = "table-layout: fixed; width: 100%; border-collapse: collapse;"
NOTEBOOK_CELL = (
    "border: 1px solid var(--jp-border-color2); padding: 4px 8px; text-align: left; "
    "vertical-align: top; white-space: pre-wrap; color: var(--jp-ui-font-color1);"
)


def report_html(comparison: Comparison) -> str:
    """The self-contained report: summary, settings, contestants with hashes, every answer."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(comparison.created))
    scored = f", scored with {escape(comparison.scorer)}" if comparison.scorer else ""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Comparison of {len(comparison)} prompts</title><style>{REPORT_STYLE}</style>",
        "</head><body>",
        f"<h1>Comparison of {len(comparison)} prompts</h1>",
        f"<p>Made {escape(when)} by tuning-workbench{scored}.</p>",
    ]
    if comparison.summary:
        parts += ["<h2>Scores</h2>", _summary_table(comparison)]
    parts += ["<h2>Settings</h2>", _settings_table(comparison)]
    parts += ["<h2>Contestants</h2>", _contestants_table(comparison)]
    parts += ["<h2>Answers</h2>", _answers(comparison, cell="class='text'")]
    parts.append("</body></html>")
    return "\n".join(parts)


def answers_table(comparison: Comparison) -> str:
    """The answers side by side, for a notebook cell (JupyterLab's colours)."""
    table = _answers(comparison, cell=f"style='{NOTEBOOK_CELL}'")
    return table.replace("<table class='answers'>", f"<table style='{NOTEBOOK_TABLE}'>", 1)


def _summary_table(comparison: Comparison) -> str:
    rows = "".join(
        f"<tr><td>{escape(m)}</td><td>{score:.1%}</td></tr>"
        for m, score in comparison.summary.items()
    )
    return f"<table><tr><th>contestant</th><th>score</th></tr>{rows}</table>"


def _settings_table(comparison: Comparison) -> str:
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td class='text'>{escape(v)}</td></tr>"
        for k, v in comparison.settings.items()
    )
    return f"<table><tr><th>setting</th><th>value</th></tr>{rows}</table>"


def _contestants_table(comparison: Comparison) -> str:
    head = (
        "<tr><th>contestant</th><th>base model</th><th>adapter</th><th>adapter sha256</th>"
        "<th>template</th><th>template sha</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(info.get('base_model'))}</td>"
        f"<td class='text'>{escape(info.get('adapter') or '—')}</td>"
        f"<td class='hash'>{escape(info.get('adapter_sha256') or '—')}</td>"
        f"<td>{escape(info.get('template'))}</td>"
        f"<td class='hash'>{escape(info.get('template_sha'))}</td></tr>"
        for name, info in comparison.contestants.items()
    )
    return f"<table>{head}{rows}</table>"


def _answers(comparison: Comparison, cell: str) -> str:
    with_reference = comparison.references is not None
    head = "<tr><th style='width: 2.5rem'>#</th><th>prompt</th>"
    head += "<th>reference</th>" if with_reference else ""
    head += "".join(f"<th>{escape(m)}</th>" for m in comparison.models) + "</tr>"
    body = []
    for row in comparison.rows():
        line = f"<tr><td>{row['index']}</td><td {cell}>{escape(prompt_text(row['prompt']))}</td>"
        if with_reference:
            line += f"<td {cell}>{escape(row['reference'])}</td>"
        for m in comparison.models:
            line += f"<td {cell}>{_mark(row['scores'].get(m))}{escape(row['answers'][m])}</td>"
        body.append(line + "</tr>")
    return f"<table class='answers'>{head}{''.join(body)}</table>"


def _mark(score: float | None) -> str:
    if score is None:
        return ""
    label = "✓ right" if score >= 1 else ("✗ wrong" if score <= 0 else f"{score:.2f}")
    return f"<span class='mark'>{escape(label)}</span>\n"


def prompt_text(messages: list[dict]) -> str:
    """A prompt as plain text: the last user turn alone, or every turn as "role: content"."""
    if len(messages) == 1:
        return str(messages[0].get("content", ""))
    return "\n".join(f"{m.get('role')}: {m.get('content', '')}" for m in messages)


def escape(value: Any) -> str:
    """Any value as escaped HTML text."""
    return html.escape("" if value is None else str(value), quote=True)
