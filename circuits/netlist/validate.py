"""Turn ``key=value`` tokens into checked SI values, and check the references between cards.

Value errors (malformed number, bad expression, out of range, unknown
keyword) point at the value; errors that involve several parameters, or a
:mod:`crossbar` dataclass check, point at the parameter's key.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from circuits.spice import parse_number
from crossbar.errors import ParameterError

from .errors import NetlistError, Pos, did_you_mean, one_of
from .expr import evaluate
from .lexer import EXPR, WORD, Token
from .schema import BOOL, ENUM, FLOAT_OR_ENUM, INT, MODEL, Element, Param, format_number

NAME = re.compile(r"[a-z0-9_]+\Z")
"""Names of groups, tiles and models (after lower-casing)."""
IDENT = re.compile(r"[a-z_][a-z0-9_]*\Z")
"""Names of ``.param`` parameters (after lower-casing)."""

ErrorFactory = Callable[[Pos, str], NetlistError]


@dataclass
class Given:
    """A parameter given in the source: its converted value and its tokens."""

    value: Any
    key: Token
    token: Token


def _quantity(param: Param, x) -> str:
    return f"{format_number(x)} {param.unit}" if param.unit else format_number(x)


class Values:
    """Converts value tokens, with the ``.param`` values defined so far."""

    def __init__(self, error: ErrorFactory, params: Mapping[str, float]):
        self.error = error
        self.params = params

    def number(self, tok: Token, what: str) -> float:
        """A number or ``{expression}``; ``inf`` and ``-inf`` are numbers too."""
        if tok.kind == EXPR:
            p = tok.pos
            return evaluate(tok.text, self.params,
                            lambda off, msg: self.error(Pos(p.path, p.line, p.col + 1 + off), msg))
        if tok.kind != WORD:
            raise self.error(tok.pos, f"expected a number for {what}, found {tok.describe()}")
        word = tok.lower
        if word in ("inf", "+inf", "-inf"):
            return -math.inf if word[0] == "-" else math.inf
        try:
            x = parse_number(tok.text)
        except ValueError:
            hint = (f"; to use parameter '{word}' write {{{word}}}" if word in self.params else "")
            raise self.error(tok.pos, f"malformed number '{tok.text}' for {what} (expected e.g. "
                             f"1e3, 4.7k, 2.5meg, .5, inf or an expression {{...}}){hint}") from None
        if not math.isfinite(x):
            raise self.error(tok.pos, f"number '{tok.text}' is too large for a float")
        return x

    def word(self, tok: Token, what: str) -> str:
        if tok.kind != WORD:
            raise self.error(tok.pos, f"expected a name for {what}, found {tok.describe()}")
        return tok.lower

    def convert(self, param: Param, tok: Token):
        """The checked value of ``param`` written as ``tok``."""
        kind, name = param.kind, param.name
        if kind == ENUM:
            word = self.word(tok, name)
            if word not in param.choices:
                raise self.error(tok.pos, f"{name} = '{tok.text}' is not one of "
                                 f"{one_of(param.choices)}" + did_you_mean(word, param.choices))
            return word
        if kind == MODEL:
            word = self.word(tok, name)
            if word in param.choices:
                return None if word == "none" else word
            check_name(self.error, tok, word, "model")
            return word
        if kind == FLOAT_OR_ENUM and tok.kind == WORD and tok.lower in param.choices:
            return tok.lower
        if kind == BOOL:
            if tok.kind == WORD and tok.lower not in ("0", "1"):
                raise self.error(tok.pos, f"{name} must be 0 or 1, got '{tok.text}'")
            x = self.number(tok, name)
            if x not in (0.0, 1.0):
                raise self.error(tok.pos, f"{name} must be 0 or 1, got {format_number(x)}")
            return bool(x)
        x = self.number(tok, name)
        if kind == INT and not (math.isfinite(x) and x == int(x)):
            raise self.error(tok.pos, f"{name} must be an integer, got {format_number(x)}")
        if not param.in_range(x):
            raise self.error(tok.pos, f"{name} = {_quantity(param, x)} is outside the allowed "
                             f"range {param.range_text()}")
        return int(x) if kind == INT else float(x)


def check_name(error: ErrorFactory, tok: Token, name: str, what: str) -> str:
    """``name`` (lower case), if it is a valid name of a ``what``."""
    if not name:
        raise error(tok.pos, f"missing {what} name")
    if not NAME.match(name):
        raise error(tok.pos, f"invalid {what} name '{name}' (letters, digits and _ only)")
    return name


def card_params(error: ErrorFactory, values: Values, element: Element, what: str,
                pairs: list[tuple[Token, Token]], end: Pos) -> tuple[dict, dict[str, Given]]:
    """Check the ``key=value`` pairs of a card against ``element``.

    Returns every parameter (given or default, in schema order) and the given
    ones (in source order). A parameter whose ``only_if`` does not hold still
    gets its default, but giving it is an error.
    """
    given: dict[str, Given] = {}
    for key, tok in pairs:
        name = key.lower
        param = element.params.get(name)
        if param is None:
            raise error(key.pos, f"unknown parameter '{name}' for {what}"
                        + (did_you_mean(name, element.params)
                           or f"; known: {', '.join(element.params)}"))
        if name in given:
            first = given[name].key.pos
            raise error(key.pos, f"parameter '{name}' is given twice (first at {first})")
        given[name] = Given(values.convert(param, tok), key, tok)
    params: dict[str, Any] = {}
    for param in element.params.values():
        if param.only_if and param.name in given:
            cond, allowed = param.only_if
            if params.get(cond) not in allowed:
                raise error(given[param.name].key.pos,
                            f"{param.name} is only used with {cond}={'/'.join(allowed)}, "
                            f"not {cond}={params.get(cond)}")
        if param.name in given:
            params[param.name] = given[param.name].value
        elif param.required:
            unit = f" ({param.unit})" if param.unit else ""
            raise error(end, f"{what}: missing required parameter {param.name}=...{unit}")
        else:
            params[param.name] = param.default
    for lo, hi, strict in element.ordered:
        ok = params[lo] < params[hi] if strict else params[lo] <= params[hi]
        if not ok:
            at = given.get(hi) or given[lo]
            p_lo, p_hi = element.params[lo], element.params[hi]
            raise error(at.key.pos, f"{hi} = {_quantity(p_hi, params[hi])} must be "
                        f"{'greater than' if strict else 'at least'} {lo} = "
                        f"{_quantity(p_lo, params[lo])}")
    if element.cls is not None:
        _check_dataclass(error, element, params, given, end)
    return params, given


def _check_dataclass(error: ErrorFactory, element: Element, params: dict,
                     given: dict[str, Given], end: Pos) -> None:
    """Build the dataclass the parameters map onto, so that its own checks run;
    copy its field values back (a preset changes defaults)."""
    cls = element.cls
    names = [f.name for f in dataclasses.fields(cls)
             if f.name in params and element.params[f.name].kind != MODEL]
    try:
        if params.get("preset") == "thesis":
            obj = cls.thesis(beta=params["beta"], **{n: params[n] for n in names if n in given})
        else:
            obj = cls(**{n: params[n] for n in names})
    except ParameterError as exc:
        m = re.match(r"\w+", str(exc))
        culprit = m.group() if m else ""
        pos = given[culprit].key.pos if culprit in given else end
        raise error(pos, str(exc)) from None
    params.update({n: getattr(obj, n) for n in names})


# ------------------------------------------------------------------ references

def resolve_model(error: ErrorFactory, models: Mapping, given: Given, param: Param) -> None:
    """Check that a model parameter names a model of an allowed type."""
    name = given.value
    if name is None or name in param.choices:
        return
    card = models.get(name)
    wanted = f"a model of type {one_of(param.models)}"
    if card is None:
        fitting = [n for n, c in models.items() if c.type in param.models]
        raise error(given.token.pos, f"unknown model '{name}' for {param.name}= (expected "
                    + (f"{one_of(param.choices)} or " if param.choices else "")
                    + f"the name of {wanted})"
                    + did_you_mean(name, [*fitting, *param.choices]))
    if card.type not in param.models:
        raise error(given.token.pos, f"model '{name}' is a {card.type} model, but "
                    f"{param.name}= needs {wanted} (model '{name}' is defined at {card.pos})")


def resolve_group(error: ErrorFactory, groups: Mapping, tiles: Mapping, tok: Token) -> str:
    """The group named by ``tok``."""
    name = tok.lower
    if name in groups:
        return name
    if name in tiles:
        raise error(tok.pos, f"'{name}' is a tile, not a neuron group")
    hint = did_you_mean(name, groups)
    if name[:1] == "n" and name[1:] in groups:
        hint = f"; group names are written without the N of their card: '{name[1:]}'"
    raise error(tok.pos, f"unknown neuron group '{name}'"
                + (hint or f"; groups: {', '.join(groups) or 'none defined'}"))


def check_g_init(error: ErrorFactory, given: Given | None, model) -> None:
    """A numeric g_init must lie in the device model's [g_min, g_max]."""
    if given is None or isinstance(given.value, str):
        return
    lo, hi = model.params["g_min"], model.params["g_max"]
    if not lo <= given.value <= hi:
        raise error(given.token.pos, f"g_init = {format_number(given.value)} S is outside the "
                    f"conductance range [{format_number(lo)}, {format_number(hi)}] S of "
                    f"model '{model.name}'")
