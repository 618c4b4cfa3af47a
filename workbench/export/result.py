"""What an export returns: where the files are, how big, the commands, and the parity check.

`Parity` is the proof that the exported artefact answers the probe prompts with the same greedy
text as the adapter in the workbench; `Export` carries it with the files and the commands to
serve them, and prints as the lines the Export panel shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ExportError


class ParityError(ExportError):
    """An unquantised export answers differently from the adapter in the workbench, beyond
    its rounding; the message names the prompt and both answers, `parity` holds the figures.
    Nothing was written."""

    def __init__(self, message: str, parity: Parity | None = None):
        super().__init__(message)
        self.parity = parity


@dataclass
class Parity:
    """The exported artefact against the adapter on K probe prompts (greedy answers, logits).

    `max_logit_diff` is the largest absolute difference of any next-token logit over the
    adapter's answer positions (teacher forcing), `tolerance` what the export's rounding may
    move it (parity.tolerance); `partings` the probes whose free-running answers part, each
    with the adapter's margin for its own token over the export's there (a near tie when
    small). `problems` lists what differs besides (the chat template, the tokenisation, the
    stop tokens). `required`: a failure fails the export.
    """

    artefact: str
    probes: int
    agree: int
    max_logit_diff: float
    required: bool
    first_difference: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    tolerance: float = 0.0
    partings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Its logits along the adapter's answers are within the rounding of its tensor type,
        answers that part do so at near ties (margins within it), and nothing else differs."""
        within = all(p["margin"] <= self.tolerance for p in self.partings)
        return self.max_logit_diff <= self.tolerance and within and not self.problems

    def line(self) -> str:
        """One line for people: k of K, near ties, the largest logit difference against the
        tolerance, and whether it counts."""
        verdict = "" if self.passed else (" (FAILED)" if self.required else " (reported only)")
        text = (
            f"parity {self.artefact}: {self.agree}/{self.probes} greedy answers identical to "
            f"the adapter's{self._ties()}, largest logit difference {self.max_logit_diff:.3g} "
            f"(rounding allows {self.tolerance:.3g}){verdict}"
        )
        return "; ".join([text, *self.problems])

    def _ties(self) -> str:
        """Where the differing answers part: by how much the adapter preferred its own token."""
        if not self.partings:
            return ""
        margins = ", ".join(f"probe {p['probe']} by {p['margin']:.2g}" for p in self.partings)
        kind = "near ties" if self.passed else "choices"
        return f" (the others part at {kind} of the adapter's own: {margins})"

    def error_message(self, path: Path) -> str:
        """Why a required check failed: what differs, the first prompt that differs and both
        answers."""
        lines = [f"The export does not answer as the adapter does ({self.line()})."]
        if self.first_difference:
            d = self.first_difference
            lines.append(
                f"First differing prompt {d['prompt']!r}: adapter {d['adapter']!r}, "
                f"export {d['export']!r}."
            )
        lines.append(f"Nothing was written to {path}.")
        return " ".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The check as a JSON-ready dict (export.json keeps it)."""
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclass
class Export:
    """A finished export: its folder, format, files (name -> bytes), parity and commands."""

    path: Path
    format: str
    model: str
    files: dict[str, int]
    parity: Parity
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def size(self) -> int:
        """All files together, in bytes."""
        return sum(self.files.values())

    def lines(self) -> list[str]:
        """What a person reads after an export: files with sizes, parity, notes, commands."""
        out = [f"{self.model} exported as {self.format} to {self.path} in {self.seconds:.0f} s:"]
        out += [f"  {name}  {human_size(size)}" for name, size in sorted(self.files.items())]
        out.append(self.parity.line())
        out += self.notes
        out += self.commands
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        data = dataclasses.asdict(self)
        return {**data, "path": str(self.path), "parity": self.parity.to_json()}


def human_size(size: int) -> str:
    """Bytes as people read them (KiB, MiB, GiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
