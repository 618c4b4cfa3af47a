"""ConfigForm: an ipywidgets form generated from a config dataclass and its field metadata.

One widget per field, chosen from the field's type and metadata: `help` (the tooltip),
`choices` (a dropdown), `min`/`max`/`step` (bounded number boxes), `rows` (a text area),
`separator` (between a list's items; "," unless given, "\n" for one a line), `group` (fields
laid out under a heading per group), `advanced` (folded away), `when` ({"method": ("grpo",)}:
shown only while the field `method` holds one of those values) and `form: False` (left out). A field typed `X | None` offers "auto" (or an empty box) for None,
which the core's planning decides. So a field added to the dataclass shows up in the form
without any change to the view, and `.value()` returns the dataclass itself, checked by it.
A refusal that names a field (`show_problem`) is told once, under that field's group, in the
form's words, and the field is marked until it changes.
"""

from __future__ import annotations

import dataclasses
import html
import re
import types
import typing
from typing import Any

import ipywidgets as widgets

from .compat import titled, with_tooltip
from .notice import Notice, label

STYLE = {"description_width": "130px"}
# As many columns as fit (three in a notebook at 1400 px), each field filling its column.
GRID = {"grid_template_columns": "repeat(auto-fill, minmax(260px, 1fr))", "grid_gap": "4px 12px"}
AUTO_LABEL = "auto"


class _Auto:
    """The dropdown value standing for None ("decided by plan")."""

    def __repr__(self) -> str:
        return AUTO_LABEL


AUTO = _Auto()


class ConfigForm(widgets.VBox):
    """A form for dataclass `config_class`: `.value()` builds one, `.set(instance)` shows one.

    `values` is the instance shown first (default: the class's defaults); `exclude` names
    fields to leave out (their values come from the instance last set); advanced fields are
    folded under "Advanced settings" unless `show_advanced`.
    """

    def __init__(
        self,
        config_class: type,
        values: Any = None,
        *,
        exclude: tuple[str, ...] = (),
        show_advanced: bool = False,
    ):
        self.config_class = config_class
        self._base = values if values is not None else config_class()
        hints = typing.get_type_hints(config_class)
        self._specs = {
            f.name: _FieldSpec(f, hints[f.name])
            for f in dataclasses.fields(config_class)
            if f.init and f.name not in exclude and f.metadata.get("form", True)
        }
        self.fields: dict[str, widgets.Widget] = {n: s.widget() for n, s in self._specs.items()}
        self._sections: dict[tuple[bool, str], tuple[widgets.Widget | None, list[str]]] = {}
        self._problems: dict[tuple[bool, str], Notice] = {}  # one line under each group
        self._marked: str | None = None  # the field a shown problem names
        self.set(self._base)
        super().__init__(self._layout(show_advanced))
        self.add_class("wb-config-form")
        for name in {k for s in self._specs.values() for k in s.when if k in self.fields}:
            self.fields[name].observe(lambda _: self.update_visibility(), names="value")
        for field in self.fields.values():  # first of its observers: a changed field is re-read
            field.observe(lambda _: self.clear_problem(), names="value")
        self.update_visibility()

    @property
    def problem(self) -> str:
        """The refusal shown beside a field now, in the form's words ("" when none)."""
        return next((n.text for n in self._problems.values() if n.text), "")

    @property
    def marked(self) -> str | None:
        """The field the shown refusal names (None when none is shown)."""
        return self._marked

    def show_problem(self, error: Exception | str) -> bool:
        """Tell a refusal under the group of the first field it names (opening Advanced
        settings when that field is folded there) and mark the field; False when it names no
        field of this form (the view tells it in its own message)."""
        text = str(error)
        named = [(m.start(), n) for n in self._specs if (m := re.search(rf"\b{n}\b", text))]
        if not named:
            return False
        self.clear_problem()
        name = min(named)[1]
        self._marked = name
        self.fields[name].add_class("wb-invalid")
        for key, (_, names) in self._sections.items():
            if name in names:
                self._problems[key].error(text)
                if key[0] and self._advanced is not None:
                    self._advanced.selected_index = 0
        return True

    def clear_problem(self) -> None:
        """Take a shown problem away (its field changed, or the form was accepted)."""
        if self._marked is not None:
            self.fields[self._marked].remove_class("wb-invalid")
            self._marked = None
            for notice in self._problems.values():
                notice.clear()

    def visible(self, name: str) -> bool:
        """Whether field `name` is shown now (its `when` condition holds, or it has none)."""
        for other, allowed in self._specs[name].when.items():
            if other in self._specs and self._current(other) not in allowed:
                return False
        return True

    def update_visibility(self) -> None:
        """Show the fields whose `when` holds, and the headings of groups with a field shown."""
        for name in self._specs:
            self.fields[name].layout.display = "" if self.visible(name) else "none"
        for heading, names in self._sections.values():
            display = "" if any(self.visible(n) for n in names) else "none"
            if heading is not None:
                heading.layout.display = display

    def _current(self, name: str) -> Any:
        try:
            return self._specs[name].read(self.fields[name])
        except ValueError:  # a box being typed into: its value is not known yet
            return None

    def value(self) -> Any:
        """The form as a `config_class` instance; its own check raises for a bad value, and a
        box that holds no number raises ValueError naming the field."""
        changes = {name: spec.read(self.fields[name]) for name, spec in self._specs.items()}
        return dataclasses.replace(self._base, **changes)

    def set(self, instance: Any) -> None:
        """Show `instance`'s values (and keep it as the source of excluded fields)."""
        self._base = instance
        for name, spec in self._specs.items():
            spec.write(self.fields[name], getattr(instance, name))

    def _layout(self, show_advanced: bool) -> list[widgets.Widget]:
        groups: dict[str, list[widgets.Widget]] = {}
        folded: dict[str, list[widgets.Widget]] = {}
        for name, spec in self._specs.items():
            place = folded if spec.advanced and not show_advanced else groups
            place.setdefault(spec.group, []).append(self.fields[name])
        children = self._grouped(groups, folded=False)
        self._advanced = None
        if folded:
            advanced = titled(
                widgets.Accordion([widgets.VBox(self._grouped(folded, folded=True))]),
                ["Advanced settings"],
            )
            advanced.selected_index = None
            children.append(advanced)
            self._advanced = advanced
        return children

    def _grouped(self, groups: dict[str, list[widgets.Widget]], folded: bool) -> list:
        """A heading (for a named group) and a grid of its fields, group by group."""
        out: list[widgets.Widget] = []
        names = {id(w): n for n, w in self.fields.items()}
        for group, items in groups.items():
            heading = None
            if group or len(groups) > 1:
                heading = widgets.HTML(f"<b>{html.escape(heading_of(group))}</b>")
                out.append(heading)
            out.append(widgets.GridBox(items, layout=GRID))
            self._problems[(folded, group)] = problem = Notice()
            out.append(problem)
            self._sections[(folded, group)] = (heading, [names[id(w)] for w in items])
        return out


class _FieldSpec:
    """How one dataclass field maps to a widget and back."""

    def __init__(self, field: dataclasses.Field, hint: Any):
        self.name = field.name
        self.meta = field.metadata
        self.group = str(self.meta.get("group", ""))
        self.advanced = bool(self.meta.get("advanced", False))
        args = typing.get_args(hint)
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        self.optional = union and type(None) in args
        kinds = [a for a in args if a is not type(None)] if union else [hint]
        self.is_list = any(typing.get_origin(k) is list for k in kinds)
        self.kind = next((k for k in kinds if k in (bool, int, float, str)), None)
        lists = [typing.get_args(k) for k in kinds if typing.get_origin(k) is list]
        self.item = lists[0][0] if lists and lists[0] else str  # a list's item type
        self.separator = str(self.meta.get("separator", ","))
        self.when: dict[str, tuple] = dict(self.meta.get("when", {}))
        if self.kind is None and not self.is_list:
            raise TypeError(
                f"ConfigForm cannot show field {self.name!r} of type {hint}; give it "
                "metadata {'form': False} or a bool, int, float, str or list[str] type."
            )

    def widget(self) -> widgets.Widget:
        common = {"description": label(self.name), "style": STYLE}
        return with_tooltip(self._bare_widget(common), self.meta.get("help", ""))

    def _bare_widget(self, common: dict[str, Any]) -> widgets.Widget:
        m, choices = self.meta, self.meta.get("choices")
        if choices is not None or (self.kind is bool and self.optional):
            options = list(choices) if choices is not None else [True, False]
            auto = [(AUTO_LABEL, AUTO)] if self.optional else []
            return widgets.Dropdown(options=auto + [(str(o), o) for o in options], **common)
        if self.kind is bool:
            return widgets.Checkbox(indent=False, **common)
        if self.kind in (int, float) and not self.optional and not self.is_list:
            return _number_box(self.kind, m, common)
        text = {"placeholder": self._empty_means(), "continuous_update": False, **common}
        if m.get("rows"):
            return widgets.Textarea(rows=m["rows"], **text)
        return widgets.Text(**text)

    def _empty_means(self) -> str:
        return AUTO_LABEL if self.optional else ""

    def write(self, widget: widgets.Widget, value: Any) -> None:
        if isinstance(widget, widgets.Dropdown):
            widget.value = AUTO if value is None else value
        elif isinstance(widget, (widgets.Text, widgets.Textarea)):
            widget.value = _as_text(value, self.separator)
        else:
            widget.value = value

    def read(self, widget: widgets.Widget) -> Any:
        value = widget.value
        if isinstance(widget, widgets.Dropdown):
            return None if value is AUTO else value
        if not isinstance(widget, (widgets.Text, widgets.Textarea)):
            return value
        text = value.strip()
        if self.is_list and (self.separator in text or self.kind is None):
            return [self._item(part.strip()) for part in text.split(self.separator) if part.strip()]
        if not text:
            return None if self.optional else text
        if self.kind in (int, float):
            return self._number(text)
        return text

    def _item(self, text: str) -> Any:
        if self.item in (int, float):
            try:
                return self.item(text)
            except ValueError:
                raise ValueError(f"{self.name} takes numbers; {text!r} is not one.") from None
        return text

    def _number(self, text: str) -> int | float:
        try:
            return self.kind(text)
        except ValueError:
            what = "a whole number" if self.kind is int else "a number"
            empty = f", or empty for {AUTO_LABEL}" if self.optional else ""
            raise ValueError(f"{self.name} must be {what}{empty}; got {text!r}.") from None


def _number_box(kind: type, meta: Any, common: dict[str, Any]) -> widgets.Widget:
    """IntText/FloatText, bounded by `min`/`max` when the field names either."""
    extra = {k: meta[k] for k in ("step",) if k in meta}
    if "min" in meta or "max" in meta:
        limit = 2**31 - 1 if kind is int else 1e300
        extra.update(min=meta.get("min", -limit), max=meta.get("max", limit))
        box = widgets.BoundedIntText if kind is int else widgets.BoundedFloatText
    else:
        box = widgets.IntText if kind is int else widgets.FloatText
    return box(**extra, **common)


def _as_text(value: Any, separator: str = ",") -> str:
    """A field's value as the text box shows it (a one-item list keeps its separator)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        joiner = separator if separator.isspace() else separator + " "
        return joiner.join(str(v) for v in value) + (separator if len(value) == 1 else "")
    return str(value)


ACRONYMS = {"lora": "LoRA", "qlora": "QLoRA", "dpo": "DPO", "grpo": "GRPO", "gguf": "GGUF"}


def heading_of(group: str) -> str:
    """A group's heading: its first letter capitalised, acronyms as written ("LoRA"), and
    "Other" for fields in no group."""
    words = [ACRONYMS.get(w.lower(), w) for w in group.split()] or ["Other"]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])
