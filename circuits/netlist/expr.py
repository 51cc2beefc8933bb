"""Safe evaluation of ``{...}`` expressions.

An expression is parsed with :mod:`ast` and evaluated by walking the tree:
only numbers (SPICE suffixes allowed: ``2k``, ``10u``), previously defined
parameters, ``pi``, ``inf``, the operators ``+ - * / **`` (and unary ``-``,
``+``), parentheses and the functions in :data:`FUNCTIONS` are accepted.
Nothing is passed to ``eval``. Names are case-insensitive.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from typing import Callable, Mapping

from circuits.spice import parse_number

from .errors import NetlistError, did_you_mean

FUNCTIONS: dict[str, tuple[Callable, int, float]] = {
    # name: (function, least and most arguments)
    "sqrt": (math.sqrt, 1, 1), "exp": (math.exp, 1, 1), "log": (math.log, 1, 1),
    "log10": (math.log10, 1, 1), "abs": (abs, 1, 1), "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1), "min": (min, 1, math.inf), "max": (max, 1, math.inf),
}
CONSTANTS = {"pi": math.pi, "inf": math.inf}
RESERVED = frozenset(FUNCTIONS) | frozenset(CONSTANTS)
"""Names that cannot be used as parameter names."""

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_OP_TEXT = {ast.BitXor: "'^' (write powers as **)", ast.FloorDiv: "'//'", ast.Mod: "'%'",
            ast.MatMult: "'@'", ast.LShift: "'<<'", ast.RShift: "'>>'", ast.BitOr: "'|'",
            ast.BitAnd: "'&'", ast.Invert: "'~'", ast.Not: "'not'"}
# A number (SPICE suffixes and unit letters included) that is not part of a name.
_NUMBER = re.compile(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?[a-z]*")


class _Fail(Exception):
    """An evaluation error at a character offset."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


def _substitute_numbers(text: str) -> tuple[str, list[tuple[int, int]], list[float]]:
    """Replace every number by a name ``_N<i>`` (upper case: no lower-cased user
    name can clash with it) that Python can parse.

    Returns the new text, the segment starts (new offset, original offset) to
    map a column back, and the values.
    """
    parts, segments, values = [], [(0, 0)], []
    last = new_len = 0
    for m in _NUMBER.finditer(text):
        try:
            value = parse_number(m.group())
        except ValueError:
            raise _Fail(m.start(), f"malformed number '{m.group()}'") from None
        if not math.isfinite(value):
            raise _Fail(m.start(), f"number '{m.group()}' is too large for a float")
        name = f"_N{len(values)}"
        values.append(value)
        parts += [text[last:m.start()], name]
        new_len += m.start() - last
        segments.append((new_len, m.start()))
        new_len += len(name)
        segments.append((new_len, m.end()))
        last = m.end()
    parts.append(text[last:])
    return "".join(parts), segments, values


def _original_offset(offset: int, segments: list[tuple[int, int]]) -> int:
    """Map an offset in the substituted text back to the original text."""
    i = max(k for k, s in enumerate(segments) if s[0] <= offset)
    new0, orig0 = segments[i]
    if i % 2:                 # inside a substituted number: point at its start
        return orig0
    return orig0 + offset - new0


class _Evaluator:
    def __init__(self, params: Mapping[str, float], numbers: list[float]):
        self.params = params
        self.numbers = numbers
        self.names = {f"_N{i}": i for i in range(len(numbers))}

    def __call__(self, node) -> float:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise _Fail(getattr(node, "col_offset", 0),
                        f"unsupported syntax ({type(node).__name__.lower()}) in an expression; "
                        "allowed: numbers, parameters, + - * / **, parentheses, "
                        f"{', '.join(FUNCTIONS)}, pi")
        return method(node)

    def _Expression(self, node):
        return self(node.body)

    def _Name(self, node):
        name = node.id
        if name.startswith("_N"):
            if name in self.names:
                return self.numbers[self.names[name]]
            raise _Fail(node.col_offset, "malformed number (a number runs into a name)")
        if name in self.params:
            return self.params[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise _Fail(node.col_offset, f"function '{name}' must be called, e.g. {name}(x)")
        raise _Fail(node.col_offset, f"undefined parameter '{name}' (parameters must be defined "
                    "by .param before they are used)"
                    + did_you_mean(name, [*self.params, *CONSTANTS]))

    def _BinOp(self, node):
        op = _BINARY.get(type(node.op))
        if op is None:
            raise _Fail(node.right.col_offset, "unsupported operator "
                        + _OP_TEXT.get(type(node.op), type(node.op).__name__))
        left, right = self(node.left), self(node.right)
        try:
            value = op(left, right)
        except ZeroDivisionError:
            raise _Fail(node.right.col_offset, "division by zero") from None
        except OverflowError:
            raise _Fail(node.col_offset, "result too large for a float") from None
        if isinstance(value, complex):
            raise _Fail(node.col_offset, f"{left!r} ** {right!r} is not a real number")
        return value

    def _UnaryOp(self, node):
        op = _UNARY.get(type(node.op))
        if op is None:
            raise _Fail(node.col_offset, "unsupported operator "
                        + _OP_TEXT.get(type(node.op), type(node.op).__name__))
        return op(self(node.operand))

    def _Call(self, node):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = getattr(node.func, "id", "?")
            raise _Fail(node.col_offset, f"unknown function '{name}'; known: "
                        f"{', '.join(FUNCTIONS)}" + did_you_mean(name, FUNCTIONS))
        name = node.func.id
        fn, least, most = FUNCTIONS[name]
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise _Fail(node.col_offset, f"{name}() takes plain arguments only")
        if not least <= len(node.args) <= most:
            expected = least if least == most else f"at least {least}"
            raise _Fail(node.col_offset, f"{name}() takes {expected} argument(s), "
                        f"got {len(node.args)}")
        args = [self(a) for a in node.args]
        try:
            return float(fn(*args))
        except (ValueError, OverflowError) as exc:
            raise _Fail(node.col_offset, f"{name}({', '.join(map(repr, args))}): {exc}") from None


def evaluate(text: str, params: Mapping[str, float],
             fail: Callable[[int, str], NetlistError]) -> float:
    """Value of expression ``text`` (the inside of ``{...}``).

    ``params`` maps lower-case parameter names to values. On error,
    ``fail(offset, message)`` builds the :class:`NetlistError` to raise, where
    ``offset`` is the 0-based character offset in ``text``.
    """
    text = text.lower()
    if not text.strip():
        raise fail(0, "empty expression {}")
    try:
        new, segments, numbers = _substitute_numbers(text)
    except _Fail as exc:
        raise fail(exc.offset, exc.message) from None
    lead = len(new) - len(new.lstrip())
    body = new.strip()
    try:
        try:
            tree = ast.parse(body, mode="eval")
        except (SyntaxError, ValueError, MemoryError) as exc:
            # offset 0 (or none) means "at the end of the input"
            offset = (getattr(exc, "offset", None) or len(body.encode()) + 1) - 1
            reason = getattr(exc, "msg", None) or str(exc) or "too complex"
            raise _Fail(offset, f"bad expression: {reason}") from None
        value = _Evaluator(params, numbers)(tree)
    except _Fail as exc:
        # ast counts UTF-8 bytes; map back to characters, then to the original text.
        chars = len(body.encode()[:exc.offset].decode(errors="ignore"))
        offset = _original_offset(min(lead + chars, len(new)), segments)
        raise fail(min(offset, len(text) - 1), exc.message) from None
    except RecursionError:
        raise fail(0, "bad expression: nested too deeply") from None
    if math.isnan(value):
        raise fail(0, "expression evaluates to nan (not a number)")
    return float(value)
