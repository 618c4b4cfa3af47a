"""Modelfile values that Ollama reads back exactly as written, or a refusal naming the line.

Ollama's Modelfile parser (ollama/ollama, parser/parser.go) has no escapes: a value is
`\"\"\"text\"\"\"`, `"text"` or bare text, and it ends at the first line end where what was read so
far, trimmed, is closed (`\"\"\"` ... `\"\"\"`, `"` ... `"`, or no opening quote). So a line of a
multi-line SYSTEM that ends with `\"\"\"` ends the block there, and the rest is read as a command
(ollama #6103). Characters that are not printable (Go's strconv.IsPrint: zero-width and other
format characters, controls but tab and line ends) are dropped on reading. `quoted` picks the
form that reads back as given, and `read_value` reads as Ollama does, to check it.
"""

from __future__ import annotations

import unicodedata

LINE_ENDS = "\r\n"
SPACES = " \t"


class ModelfileValueError(ValueError):
    """Text that no Modelfile quoting carries; `line` is its 1-based line number (0: none)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.line = line


def quoted(text: str) -> str:
    """`text` as a Modelfile value that Ollama reads back unchanged: `"text"` when that holds,
    else `\"\"\"text\"\"\"`. Raises ModelfileValueError naming the line that ends every form early,
    or the characters Ollama would drop."""
    dropped = [c for c in text if not c.isprintable() and c not in LINE_ENDS + "\t"]
    if dropped:
        first = dropped[0]
        line = text[: text.index(first)].count("\n") + 1
        names = ", ".join(sorted({_name(c) for c in dropped}))
        raise ModelfileValueError(f"line {line} holds {names}, which Ollama drops", line)
    forms = [f'"{text}"', f'"""{text}"""']
    for form in forms[::-1] if "\n" in text else forms:  # a block reads best across lines
        if read_value(form + "\n") == (text, len(form)):
            return form
    line = _first_closing_line(text)
    raise ModelfileValueError(
        f'line {line} ends with """, where Ollama ends the block and reads the next line as a '
        "command (its Modelfile has no escapes); end that line with another character",
        line,
    )


def read_value(source: str) -> tuple[str, int] | None:
    """The value Ollama's parser reads from `source` (what follows a command and its space),
    with the characters it took; None when it never closes."""
    buffer: list[str] = []
    for at, char in enumerate(source):
        if char in LINE_ENDS + SPACES:  # where a value may end
            value = _unquote("".join(buffer).strip())
            if value is not None and char in LINE_ENDS:
                return value, at
            buffer.append(char)
        elif char.isprintable():
            buffer.append(char)
    value = _unquote("".join(buffer).strip())
    return None if value is None else (value, len(source))


def _unquote(text: str) -> str | None:
    if text.startswith('"""'):
        return text[3:-3] if len(text) >= 6 and text.endswith('"""') else None
    if text.startswith('"'):
        return text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    return text


def _first_closing_line(text: str) -> int:
    """The first line (1-based) that closes a triple-quoted block early (it ends in quotes)."""
    lines = text.splitlines()
    for number, line in enumerate(lines[:-1], start=1):
        if line.rstrip().endswith('"""'):
            return number
    return len(lines)


def _name(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'a control character')}"
