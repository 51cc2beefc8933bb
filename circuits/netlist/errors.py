"""Source positions and the one error type of the netlist reader."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Mapping

from crossbar.errors import CrossbarError


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in a netlist source: file path, 1-based line and 1-based column."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class NetlistError(CrossbarError, ValueError):
    """A netlist could not be read, or describes something that cannot be built.

    The message starts with ``path:line:col: `` and says what was expected
    there; when the source line is known it follows on the next line, with a
    caret under the column. ``path``, ``line``, ``col`` (1-based) and ``reason``
    (the message without position and source excerpt) are attributes.
    """

    def __init__(self, pos: Pos, reason: str, source_line: str | None = None):
        self.pos = pos
        self.path, self.line, self.col = pos.path, pos.line, pos.col
        self.reason = reason
        self.source_line = source_line
        text = f"{pos}: {reason}"
        if source_line is not None:
            # Unprintable characters (tabs included) become one blank each, so that
            # the caret stays under the column it points at.
            shown = "".join(c if c.isprintable() else " " for c in source_line)
            text += "\n" + shown + "\n" + " " * max(pos.col - 1, 0) + "^"
        super().__init__(text)

    def __reduce__(self):
        return type(self), (self.pos, self.reason, self.source_line)


def source_line(sources: Mapping[str, str], pos: Pos) -> str | None:
    """Physical line ``pos.line`` of the source ``pos.path``, if known."""
    text = sources.get(pos.path)
    if text is None:
        return None
    lines = split_lines(text)
    return lines[pos.line - 1] if 1 <= pos.line <= len(lines) else None


def error_at(sources: Mapping[str, str], pos: Pos, reason: str) -> NetlistError:
    """A :class:`NetlistError` at ``pos``, showing its source line from ``sources``."""
    return NetlistError(pos, reason, source_line(sources, pos))


def split_lines(text: str) -> list[str]:
    """Physical lines as the reader numbers them: split at LF, a trailing CR dropped."""
    return [s[:-1] if s.endswith("\r") else s for s in text.split("\n")]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def one_of(choices: Iterable[str]) -> str:
    """``"a, b or c"``."""
    choices = [str(c) for c in choices]
    if len(choices) < 2:
        return "".join(choices)
    return ", ".join(choices[:-1]) + " or " + choices[-1]
