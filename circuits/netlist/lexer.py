"""Split netlist text into cards of positioned tokens.

A card is one logical line: a physical line plus the ``+`` continuation lines
that follow it. Every token keeps the physical line and column it was read at,
continuation lines included. The lexer drops ``*`` comment lines, ``;``
comments and blank lines, reads the title (first line of a top-level file) and
stops after ``.end``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import NetlistError, Pos, split_lines

WORD, EQ, LPAREN, RPAREN, EXPR, STRING = "word", "'='", "'('", "')'", "expression", "string"
_PUNCT = {"=": EQ, "(": LPAREN, ")": RPAREN}
_STOP = set(" ,;={}()\"") | {"\t"}


@dataclass(frozen=True, slots=True)
class Token:
    """One token. ``text`` is the source text, without the braces of an
    expression or the quotes of a string; ``width`` is the source width in characters."""

    kind: str
    text: str
    pos: Pos
    width: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def end(self) -> Pos:
        """The position just after the token."""
        return Pos(self.pos.path, self.pos.line, self.pos.col + self.width)

    def describe(self) -> str:
        if self.kind == WORD:
            return f"'{self.text}'"
        if self.kind == EXPR:
            return f"expression {{{self.text}}}"
        if self.kind == STRING:
            return f'string "{self.text}"'
        return self.kind


@dataclass
class Card:
    """The tokens of one logical line (never empty)."""

    tokens: list[Token]

    @property
    def end(self) -> Pos:
        """The position just after the last token (where a missing value would go)."""
        return self.tokens[-1].end


def _word_end(text: str, i: int) -> int:
    n = len(text)
    while i < n and not (text[i] in _STOP or text[i].isspace()):
        i += 1
    return i


def tokenize_line(text: str, path: str, line: int, start: int,
                  error: Callable[[Pos, str], NetlistError]) -> list[Token]:
    """Tokens of physical line ``text`` from index ``start`` up to a ``;`` comment.

    Blanks and commas separate tokens; ``=``, ``(`` and ``)`` are tokens of
    their own; ``{...}`` is one expression token and ``"..."`` one string
    token, both closed on the same line.
    """
    out: list[Token] = []
    i, n = start, len(text)
    while i < n:
        c = text[i]
        pos = Pos(path, line, i + 1)
        if c.isspace() or c == ",":
            i += 1
        elif c == ";":
            break
        elif c in _PUNCT:
            out.append(Token(_PUNCT[c], c, pos, 1))
            i += 1
        elif c in "{\"":
            close = "}" if c == "{" else "\""
            j = text.find(close, i + 1)
            if j < 0:
                what = "expression" if c == "{" else "string"
                raise error(pos, f"unterminated {what}: '{c}' has no closing '{close}' "
                                 "on the same line")
            out.append(Token(EXPR if c == "{" else STRING, text[i + 1:j], pos, j + 1 - i))
            i = j + 1
        elif c == "}":
            raise error(pos, "unmatched '}' (expressions are written {...})")
        else:
            j = _word_end(text, i)
            out.append(Token(WORD, text[i:j], pos, j - i))
            i = j
    return out


def lex(text: str, path: str, *, title: bool,
        error: Callable[[Pos, str], NetlistError]) -> tuple[str | None, list[Card]]:
    """Title (the first line, if ``title``) and the cards of ``text``, up to ``.end``."""
    lines = split_lines(text)
    first = 1 if title else 0
    title_text = lines[0].strip() if title else None
    cards: list[Card] = []
    for lineno, raw in enumerate(lines[first:], start=first + 1):
        stripped = raw.lstrip()
        if not stripped or stripped[0] in "*;":
            continue
        lead = len(raw) - len(stripped)
        if stripped[0] == "+":
            if not cards:
                raise error(Pos(path, lineno, lead + 1),
                            "continuation line '+' has no card before it to continue")
            cards[-1].tokens.extend(tokenize_line(raw, path, lineno, lead + 1, error))
            continue
        tokens = tokenize_line(raw, path, lineno, lead, error)
        if not tokens:
            continue
        cards.append(Card(tokens))
        if tokens[0].lower == ".end":
            break
    return title_text, cards
