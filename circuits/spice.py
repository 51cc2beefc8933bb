"""SPICE netlists: read, build, write, and solve for the DC operating point.

This is the public entry point of the SPICE interop. It holds the deck model
(element dataclasses and :class:`Deck`), the reader of a plain SPICE subset and
the writer; the operating-point solver lives in :mod:`circuits.mna` and the
ngspice runner in :mod:`circuits.ngspice`, both re-exported here.

Supported subset
----------------
* first line is the title; ``*`` comment lines; ``;`` and ``$ `` inline
  comments; ``+`` continuation lines; ``.end`` (later lines are ignored);
* ``R name n+ n- value``, ``V/I name n+ n- [DC] value``,
  ``D name anode cathode model [area | area=value]``,
  ``E name n+ n- nc+ nc- gain``;
* ``.model NAME D(IS=.. N=.. RS=..)``, ``.op``, ``.options``;
* names and keywords are case-insensitive; node ``0`` or ``gnd`` is ground.

Values are in SI units (ohm, volt, ampere). Syntax errors raise
:class:`SpiceError` whose message starts with ``path:line:col:``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from crossbar.errors import CrossbarError, ParameterError

__all__ = [
    "SpiceError", "parse_number", "parse_deck", "read_deck",
    "Resistor", "VoltageSource", "CurrentSource", "Diode", "VCVS", "DiodeModel",
    "Deck", "GROUND", "OperatingPoint", "run_ngspice", "ngspice_available",
    "NgspiceError",
]

#: Canonical name of the ground node; ``gnd`` is read as an alias of it.
GROUND = "0"
_GROUND_ALIASES = {"0", "gnd"}

# Node, element and model names. Restricted to characters that neither our
# tokenizer nor ngspice treats specially, so anything we write reads back.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\[\]\-]*\Z")


class SpiceError(CrossbarError, ValueError):
    """A netlist could not be read.

    The message starts with ``path:line:col:`` (1-based) pointing at the
    offending token, and says what was expected there.
    """

    def __init__(self, path: str, line: int, col: int, message: str):
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path = path
        self.line = line
        self.col = col
        self.reason = message


# --------------------------------------------------------------------------
# numbers

# Mantissa and exponent; whatever follows must be a scale suffix and/or unit
# letters, which SPICE ignores (``10kohm``, ``1uA``).
_NUMBER_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z]*)\Z")
_EXPONENT = {"f": -15, "p": -12, "n": -9, "u": -6, "m": -3, "k": 3, "g": 9, "t": 12}


def parse_number(text: str) -> float:
    """Convert a SPICE number such as ``4.7k``, ``2.5MEG``, ``1uA`` or ``.5``.

    Scale suffixes (case-insensitive): f p n u m k meg g t mil. Letters after
    the suffix are units and are ignored, as in SPICE. A plain number without
    suffix converts exactly (``float(repr(x)) == x``), which the writer relies
    on for exact round trips.

    Raises
    ------
    ValueError
        If ``text`` is not a number in this syntax.
    """
    m = _NUMBER_RE.match(text)
    if m is None:
        raise ValueError(f"malformed number {text!r}")
    mantissa = m.group(1)
    value = float(mantissa)
    unit = m.group(2).lower()
    # 'meg' and 'mil' must be tested before the one-letter 'm' (milli).
    if unit.startswith("mil"):
        return value * 25.4e-6
    exponent = 6 if unit.startswith("meg") else _EXPONENT.get(unit[:1]) if unit else None
    if exponent is None:
        return value
    if "e" in mantissa.lower():   # already has an exponent: scale it
        return value * 10.0 ** exponent
    # decimal scaling, so that 100u is exactly the double nearest 1e-4
    return float(f"{mantissa}e{exponent}")


def _fmt(x: float) -> str:
    # repr is the shortest string that converts back to the same double.
    return repr(float(x))


# --------------------------------------------------------------------------
# deck model

def _invalid(message: str, field: str | None = None) -> ParameterError:
    # The reader uses ``field`` to point the error at the right token.
    err = ParameterError(message)
    err.field = field
    return err


def _check_name(kind: str, name, field: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _invalid(f"invalid {kind} name {name!r} (expected letters, digits and _ . : [ ] -)",
                       field)
    return name


def _check_node(owner: str, node, field: str) -> str:
    _check_name("node", node, field)
    # One spelling for ground, so that a deck written and read back is equal.
    return GROUND if node.lower() in _GROUND_ALIASES else node


def _check_value(owner: str, what: str, value, field: str, *, positive: bool = False,
                 nonnegative: bool = False, unit: str = "") -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _invalid(f"{owner}: {what} must be a number, got {value!r}", field) from None
    if isinstance(value, bool) or not math.isfinite(x):
        raise _invalid(f"{owner}: {what} must be finite, got {value!r}", field)
    unit = f" {unit}" if unit else ""
    if positive and not x > 0:
        raise _invalid(f"{owner}: {what} must be > 0{unit}, got {x!r}", field)
    if nonnegative and not x >= 0:
        raise _invalid(f"{owner}: {what} must be >= 0{unit}, got {x!r}", field)
    return x


@dataclass(frozen=True)
class Resistor:
    """Linear resistor between ``npos`` and ``nneg``; ``resistance`` in ohm (> 0)."""

    name: str
    npos: str
    nneg: str
    resistance: float
    letter = "R"

    @property
    def nodes(self) -> tuple[str, str]:
        return (self.npos, self.nneg)

    def _validated(self) -> "Resistor":
        return Resistor(self.name, _check_node(self.name, self.npos, "npos"),
                        _check_node(self.name, self.nneg, "nneg"),
                        _check_value(self.name, "resistance", self.resistance, "resistance",
                                     positive=True, unit="ohm"))

    def card(self) -> str:
        return f"{self.name} {self.npos} {self.nneg} {_fmt(self.resistance)}"


@dataclass(frozen=True)
class VoltageSource:
    """Independent DC voltage source: ``v(npos) - v(nneg) = voltage`` (V).

    Its current, as in SPICE, is the current flowing into ``npos`` through the
    source to ``nneg``; a source that delivers power has a negative current.
    """

    name: str
    npos: str
    nneg: str
    voltage: float
    letter = "V"

    @property
    def nodes(self) -> tuple[str, str]:
        return (self.npos, self.nneg)

    def _validated(self) -> "VoltageSource":
        return VoltageSource(self.name, _check_node(self.name, self.npos, "npos"),
                             _check_node(self.name, self.nneg, "nneg"),
                             _check_value(self.name, "voltage", self.voltage, "voltage"))

    def card(self) -> str:
        return f"{self.name} {self.npos} {self.nneg} DC {_fmt(self.voltage)}"


@dataclass(frozen=True)
class CurrentSource:
    """Independent DC current source; ``current`` (A) flows from ``npos``
    through the source to ``nneg`` (so it is pushed into ``nneg``'s node)."""

    name: str
    npos: str
    nneg: str
    current: float
    letter = "I"

    @property
    def nodes(self) -> tuple[str, str]:
        return (self.npos, self.nneg)

    def _validated(self) -> "CurrentSource":
        return CurrentSource(self.name, _check_node(self.name, self.npos, "npos"),
                             _check_node(self.name, self.nneg, "nneg"),
                             _check_value(self.name, "current", self.current, "current"))

    def card(self) -> str:
        return f"{self.name} {self.npos} {self.nneg} DC {_fmt(self.current)}"


@dataclass(frozen=True)
class Diode:
    """Junction diode from ``anode`` to ``cathode`` using a ``.model`` of type D.

    ``area`` scales the saturation current up and the series resistance down.
    """

    name: str
    anode: str
    cathode: str
    model: str
    area: float = 1.0
    letter = "D"

    @property
    def nodes(self) -> tuple[str, str]:
        return (self.anode, self.cathode)

    def _validated(self) -> "Diode":
        return Diode(self.name, _check_node(self.name, self.anode, "anode"),
                     _check_node(self.name, self.cathode, "cathode"),
                     _check_name("model", self.model, "model"),
                     _check_value(self.name, "area", self.area, "area", positive=True))

    def card(self) -> str:
        # ngspice 39 reads a bare number after the model as a fourth node
        # (thermal diode), so the area is always written as a keyword.
        return f"{self.name} {self.anode} {self.cathode} {self.model} area={_fmt(self.area)}"


@dataclass(frozen=True)
class VCVS:
    """Voltage-controlled voltage source (SPICE ``E``):
    ``v(npos) - v(nneg) = gain * (v(cpos) - v(cneg))``.

    Its current follows the voltage-source convention (into ``npos``).
    """

    name: str
    npos: str
    nneg: str
    cpos: str
    cneg: str
    gain: float
    letter = "E"

    @property
    def nodes(self) -> tuple[str, str, str, str]:
        return (self.npos, self.nneg, self.cpos, self.cneg)

    def _validated(self) -> "VCVS":
        return VCVS(self.name, _check_node(self.name, self.npos, "npos"),
                    _check_node(self.name, self.nneg, "nneg"),
                    _check_node(self.name, self.cpos, "cpos"),
                    _check_node(self.name, self.cneg, "cneg"),
                    _check_value(self.name, "gain", self.gain, "gain"))

    def card(self) -> str:
        return (f"{self.name} {self.npos} {self.nneg} {self.cpos} {self.cneg} "
                f"{_fmt(self.gain)}")


Element = Union[Resistor, VoltageSource, CurrentSource, Diode, VCVS]
_ELEMENT_TYPES = {cls.letter: cls for cls in (Resistor, VoltageSource, CurrentSource, Diode, VCVS)}


@dataclass(frozen=True)
class DiodeModel:
    """Parameters of a ``.model NAME D(...)`` card (SPICE level-1 diode, DC part).

    Parameters
    ----------
    IS : float
        Saturation current in A (> 0), per unit area.
    N : float
        Emission coefficient (> 0).
    RS : float
        Ohmic series resistance in ohm (>= 0), for unit area.
    """

    name: str
    IS: float = 1e-14
    N: float = 1.0
    RS: float = 0.0

    #: Parameters accepted on a ``.model`` card, upper case.
    PARAMETERS = ("IS", "N", "RS")

    def _validated(self) -> "DiodeModel":
        owner = f"model {self.name}"
        return DiodeModel(_check_name("model", self.name, "name"),
                          _check_value(owner, "IS", self.IS, "IS", positive=True, unit="A"),
                          _check_value(owner, "N", self.N, "N", positive=True),
                          _check_value(owner, "RS", self.RS, "RS", nonnegative=True, unit="ohm"))

    def card(self) -> str:
        return f".model {self.name} D(IS={_fmt(self.IS)} N={_fmt(self.N)} RS={_fmt(self.RS)})"


class Deck:
    """A SPICE netlist held in memory: title, elements, diode models, options.

    Build one in code with the ``add_*`` methods or read one with
    :func:`read_deck`; write it with :meth:`to_spice` / :meth:`write`; solve it
    with :meth:`operating_point` (our MNA solver) or
    :func:`circuits.spice.run_ngspice`.

    Names are case-insensitive (stored as given, looked up in lower case).
    Two decks are equal when title, elements (in order), models and options
    are equal; ``path`` is only used in messages.

    Parameters
    ----------
    title : str
        First line of the netlist.
    path : str
        Where the deck came from, used as the prefix of error messages.
    """

    def __init__(self, title: str = "memx deck", *, path: str = "<deck>"):
        if not isinstance(title, str) or "\n" in title or "\r" in title:
            raise ParameterError(f"deck title must be a single line of text, got {title!r}")
        self.title = title
        self.path = path
        self._elements: list[Element] = []
        self._by_name: dict[str, Element] = {}
        self._models: dict[str, DiodeModel] = {}
        self._options: dict[str, object] = {}

    # ---- read-only views -------------------------------------------------
    @property
    def elements(self) -> tuple[Element, ...]:
        """Elements in the order they were added."""
        return tuple(self._elements)

    @property
    def models(self) -> dict[str, DiodeModel]:
        """Diode models keyed by lower-case name (a copy)."""
        return dict(self._models)

    @property
    def options(self) -> dict[str, object]:
        """``.options`` keyed by lower-case name: a float, a string, or True
        for a bare flag (a copy)."""
        return dict(self._options)

    def element(self, name: str) -> Element:
        """The element called ``name`` (case-insensitive)."""
        try:
            return self._by_name[name.lower()]
        except (KeyError, AttributeError):
            raise ParameterError(f"{self.path}: no element named {name!r}") from None

    def nodes(self) -> list[str]:
        """Node names (ground excluded), in order of first appearance, lower case."""
        seen: dict[str, None] = {}
        for el in self._elements:
            for n in el.nodes:
                if n != GROUND:
                    seen.setdefault(n.lower(), None)
        return list(seen)

    def __len__(self) -> int:
        return len(self._elements)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Deck):
            return NotImplemented
        return (self.title == other.title and self._elements == other._elements
                and self._models == other._models and self._options == other._options)

    def __repr__(self) -> str:
        return (f"Deck({self.title!r}, {len(self._elements)} elements, "
                f"{len(self._models)} models, path={self.path!r})")

    # ---- construction ----------------------------------------------------
    def add(self, element: Element) -> Element:
        """Validate and append an element; returns the stored (normalised) element.

        Raises
        ------
        ParameterError
            Bad name, wrong first letter, duplicate name, non-finite value,
            non-positive resistance or area, or a diode model not yet defined.
        """
        cls = type(element)
        if cls not in _ELEMENT_TYPES.values():
            raise ParameterError(f"cannot add {element!r}: not a SPICE element of this package")
        _check_name("element", element.name, "name")
        if element.name[0].upper() != cls.letter:
            raise _invalid(f"{cls.__name__} name must start with {cls.letter!r}, "
                           f"got {element.name!r}", "name")
        key = element.name.lower()
        if key in self._by_name:
            raise _invalid(f"duplicate element name {element.name!r}", "name")
        element = element._validated()
        if isinstance(element, Diode) and element.model.lower() not in self._models:
            raise _invalid(f"{element.name}: unknown diode model {element.model!r}"
                           + (f" (defined: {', '.join(m.name for m in self._models.values())})"
                              if self._models else " (no .model card defines it)"), "model")
        self._elements.append(element)
        self._by_name[key] = element
        return element

    def add_resistor(self, name: str, npos: str, nneg: str, resistance: float) -> Resistor:
        """Add ``R name npos nneg resistance`` (ohm, > 0)."""
        return self.add(Resistor(name, npos, nneg, resistance))

    def add_vsource(self, name: str, npos: str, nneg: str, voltage: float) -> VoltageSource:
        """Add ``V name npos nneg DC voltage`` (V)."""
        return self.add(VoltageSource(name, npos, nneg, voltage))

    def add_isource(self, name: str, npos: str, nneg: str, current: float) -> CurrentSource:
        """Add ``I name npos nneg DC current`` (A, flowing npos -> source -> nneg)."""
        return self.add(CurrentSource(name, npos, nneg, current))

    def add_diode(self, name: str, anode: str, cathode: str, model: str,
                  area: float = 1.0) -> Diode:
        """Add ``D name anode cathode model area=area``; the model must exist."""
        return self.add(Diode(name, anode, cathode, model, area))

    def add_vcvs(self, name: str, npos: str, nneg: str, cpos: str, cneg: str,
                 gain: float) -> VCVS:
        """Add ``E name npos nneg cpos cneg gain``."""
        return self.add(VCVS(name, npos, nneg, cpos, cneg, gain))

    def add_model(self, name: str, IS: float = 1e-14, N: float = 1.0,
                  RS: float = 0.0) -> DiodeModel:
        """Add a diode model (``.model name D(IS= N= RS=)``)."""
        model = DiodeModel(name, IS, N, RS)._validated()
        if name.lower() in self._models:
            raise _invalid(f"duplicate .model name {name!r}", "name")
        self._models[name.lower()] = model
        return model

    def set_option(self, name: str, value: object = True) -> None:
        """Set a ``.options`` entry (float, string, or True for a flag).

        Our solver honours ``gmin`` (S, default 1e-12) and rejects ``temp`` /
        ``tnom`` other than 27 C; tolerance options only matter to ngspice.
        """
        _check_name("option", name, "name")
        if isinstance(value, str):
            if not _NAME_RE.match(value):
                raise _invalid(f"option {name}: invalid value {value!r}", "value")
        elif value is not True:
            value = _check_value(f"option {name}", "value", value, "value")
        self._options[name.lower()] = value

    # ---- writing ---------------------------------------------------------
    def to_spice(self, *, options: dict | None = None) -> str:
        """The deck as SPICE text (title, options, models, elements, .op, .end).

        Numbers are written with ``repr`` so that reading the text back gives
        bit-identical values. ``options`` overrides/extends the deck's options
        in the written text only (used to tighten ngspice's tolerances).
        """
        lines = [self.title]
        opts = dict(self._options)
        if options:
            opts.update({k.lower(): v for k, v in options.items()})
        if opts:
            lines.append(".options " + " ".join(
                k if v is True else f"{k}={v if isinstance(v, str) else _fmt(v)}"
                for k, v in opts.items()))
        lines.extend(m.card() for m in self._models.values())
        lines.extend(el.card() for el in self._elements)
        lines += [".op", ".end", ""]
        return "\n".join(lines)

    def write(self, path: Union[str, Path]) -> Path:
        """Write :meth:`to_spice` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.to_spice(), encoding="utf-8")
        return path

    # ---- solving ---------------------------------------------------------
    def operating_point(self, **settings) -> "OperatingPoint":
        """DC operating point with our MNA/Newton solver.

        Keyword arguments are :class:`circuits.mna.NewtonSettings` fields.
        See :func:`circuits.mna.solve_operating_point`.
        """
        from .mna import NewtonSettings, solve_operating_point
        return solve_operating_point(self, NewtonSettings(**settings))


# --------------------------------------------------------------------------
# reader

@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    col: int


@dataclass
class _Card:
    tokens: list[_Token]
    end_line: int   # physical line and column just past the last token,
    end_col: int    # for "expected ... at end of line" errors


_PUNCT = "()="


def _tokenize(text: str, line: int, col0: int) -> list[_Token]:
    """Split one physical line into tokens; ``(``, ``)`` and ``=`` are tokens
    of their own, commas separate like blanks (as in SPICE)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace() or c == ",":
            i += 1
        elif c in _PUNCT:
            out.append(_Token(c, line, col0 + i))
            i += 1
        else:
            j = i
            while j < n and not (text[j].isspace() or text[j] in _PUNCT or text[j] == ","):
                j += 1
            out.append(_Token(text[i:j], line, col0 + i))
            i = j
    return out


def _strip_comment(text: str) -> str:
    """Remove a ``;`` comment, or a ``$`` comment (a ``$`` at the start or
    after a blank, and followed by a blank or the end of line, as ngspice)."""
    cut = text.find(";")
    if cut >= 0:
        text = text[:cut]
    for m in re.finditer(r"\$", text):
        k = m.start()
        before_ok = k == 0 or text[k - 1].isspace()
        after_ok = k + 1 == len(text) or text[k + 1].isspace()
        if before_ok and after_ok:
            return text[:k]
    return text


def _cards(text: str, path: str) -> tuple[str, list[_Card]]:
    """Title and logical cards (continuations joined, comments removed)."""
    lines = text.splitlines()
    title = lines[0].rstrip() if lines else ""
    cards: list[_Card] = []
    for lineno, raw in enumerate(lines[1:], start=2):
        body = _strip_comment(raw)
        stripped = body.lstrip()
        if not stripped or stripped.startswith("*"):
            continue
        lead = len(body) - len(stripped)
        if stripped.startswith("+"):
            if not cards:
                raise SpiceError(path, lineno, lead + 1,
                                 "continuation line '+' has no card before it to continue")
            toks = _tokenize(stripped[1:], lineno, lead + 2)
            card = cards[-1]
            card.tokens.extend(toks)
        else:
            toks = _tokenize(stripped, lineno, lead + 1)
            card = _Card(toks, lineno, 0)
            cards.append(card)
            if toks[0].text.lower() == ".end":
                break
        card.end_line, card.end_col = lineno, len(body.rstrip()) + 1
    return title, cards


class _Reader:
    """Turns cards into a :class:`Deck`, reporting errors at token positions."""

    def __init__(self, path: str):
        self.path = path

    def error(self, tok: _Token, message: str) -> SpiceError:
        return SpiceError(self.path, tok.line, tok.col, message)

    def error_at_end(self, card: _Card, message: str) -> SpiceError:
        return SpiceError(self.path, card.end_line, card.end_col, message)

    def number(self, tok: _Token, what: str) -> float:
        if tok.text in _PUNCT:
            raise self.error(tok, f"expected {what} (a number), found {tok.text!r}")
        try:
            return parse_number(tok.text)
        except ValueError:
            raise self.error(tok, f"malformed number {tok.text!r} for {what} "
                                  "(expected e.g. 1e3, 4.7k, 2.5meg, .5)") from None

    def need(self, card: _Card, i: int, what: str) -> _Token:
        """Token ``i`` of the card, which must be a name, not punctuation."""
        if i >= len(card.tokens):
            raise self.error_at_end(card, f"{card.tokens[0].text}: missing {what}")
        tok = card.tokens[i]
        if tok.text in _PUNCT:
            raise self.error(tok, f"{card.tokens[0].text}: expected {what}, found {tok.text!r}")
        return tok

    def no_more(self, card: _Card, i: int, after: str) -> None:
        if i < len(card.tokens):
            tok = card.tokens[i]
            raise self.error(tok, f"{card.tokens[0].text}: unexpected {tok.text!r} after {after}"
                                  " (this reader supports only the plain DC form)")

    # ---- dot cards -----------------------------------------------------
    def model(self, deck: Deck, card: _Card) -> None:
        toks = card.tokens
        name = self.need(card, 1, "model name")
        mtype = self.need(card, 2, "model type (D)")
        if mtype.text.upper() != "D":
            raise self.error(mtype, f"unknown .model type {mtype.text!r} for model {name.text!r} "
                                    "(only D, the diode, is supported)")
        rest = toks[3:]
        if rest and rest[0].text == "(":
            if rest[-1].text != ")":
                raise self.error_at_end(card, f"model {name.text}: missing ')'")
            rest = rest[1:-1]
        params: dict[str, tuple[float, _Token]] = {}
        i = 0
        while i < len(rest):
            key = rest[i]
            if key.text in _PUNCT:
                raise self.error(key, f"model {name.text}: expected a parameter name, "
                                      f"found {key.text!r}")
            upper = key.text.upper()
            if upper not in DiodeModel.PARAMETERS:
                raise self.error(key, f"model {name.text}: unknown diode parameter {key.text!r} "
                                      f"(supported: {', '.join(DiodeModel.PARAMETERS)})")
            if upper in params:
                raise self.error(key, f"model {name.text}: parameter {upper} given twice")
            if i + 1 >= len(rest) or rest[i + 1].text != "=":
                where = rest[i + 1] if i + 1 < len(rest) else key
                raise self.error(where, f"model {name.text}: expected '=' after {key.text!r}")
            if i + 2 >= len(rest):
                raise self.error(rest[i + 1], f"model {name.text}: missing value for {upper}")
            params[upper] = (self.number(rest[i + 2], f"{upper} of model {name.text}"), rest[i + 2])
            i += 3
        try:
            deck.add_model(name.text, **{k: v for k, (v, _) in params.items()})
        except ParameterError as err:
            field = getattr(err, "field", None)
            tok = params[field][1] if field in params else name
            raise self.error(tok, str(err)) from None

    def options(self, deck: Deck, card: _Card) -> None:
        toks = card.tokens[1:]
        i = 0
        while i < len(toks):
            key = toks[i]
            if key.text in _PUNCT:
                raise self.error(key, f"expected an option name, found {key.text!r}")
            if i + 1 < len(toks) and toks[i + 1].text == "=":
                if i + 2 >= len(toks) or toks[i + 2].text in _PUNCT:
                    raise self.error_at_end(card, f"missing value for option {key.text!r}")
                vtok = toks[i + 2]
                try:
                    value: object = parse_number(vtok.text)
                except ValueError:
                    value = vtok.text
                i += 3
            else:
                vtok, value = key, True
                i += 1
            try:
                deck.set_option(key.text, value)
            except ParameterError as err:
                bad_name = getattr(err, "field", None) == "name"
                raise self.error(key if bad_name else vtok, str(err)) from None

    # ---- elements --------------------------------------------------------
    def element(self, deck: Deck, card: _Card) -> None:
        toks = card.tokens
        head = toks[0]
        letter = head.text[0].upper()
        if letter not in _ELEMENT_TYPES:
            raise self.error(head, f"unsupported element type {head.text[0]!r} in {head.text!r} "
                                   "(supported: R, V, I, D, E)")
        name = head.text
        at = {"name": head}
        if letter == "R":
            at["npos"] = self.need(card, 1, "first node (n+)")
            at["nneg"] = self.need(card, 2, "second node (n-)")
            at["resistance"] = self.need(card, 3, "resistance value")
            self.no_more(card, 4, "the resistance")
            el = Resistor(name, at["npos"].text, at["nneg"].text,
                          self.number(at["resistance"], f"the resistance of {name}"))
        elif letter in "VI":
            what = "voltage" if letter == "V" else "current"
            at["npos"] = self.need(card, 1, "positive node (n+)")
            at["nneg"] = self.need(card, 2, "negative node (n-)")
            i = 3
            if i < len(toks) and toks[i].text.lower() == "dc":
                i += 1
            at[what] = self.need(card, i, f"DC {what} value")
            self.no_more(card, i + 1, f"the DC {what}")
            value = self.number(at[what], f"the DC {what} of {name}")
            cls = VoltageSource if letter == "V" else CurrentSource
            el = cls(name, at["npos"].text, at["nneg"].text, value)
        elif letter == "D":
            at["anode"] = self.need(card, 1, "anode node")
            at["cathode"] = self.need(card, 2, "cathode node")
            at["model"] = self.need(card, 3, "model name")
            area = 1.0
            i = 4
            if i < len(toks):
                if toks[i].text.lower() == "area" and i + 1 < len(toks) and toks[i + 1].text == "=":
                    i += 2
                    if i >= len(toks):
                        raise self.error_at_end(card, f"{name}: missing value after 'area='")
                at["area"] = toks[i]
                area = self.number(toks[i], f"the area of {name}")
                i += 1
            self.no_more(card, i, "the area" if "area" in at else "the model name")
            el = Diode(name, at["anode"].text, at["cathode"].text, at["model"].text, area)
        else:  # E
            at["npos"] = self.need(card, 1, "positive output node (n+)")
            at["nneg"] = self.need(card, 2, "negative output node (n-)")
            at["cpos"] = self.need(card, 3, "positive control node (nc+)")
            at["cneg"] = self.need(card, 4, "negative control node (nc-)")
            at["gain"] = self.need(card, 5, "gain")
            self.no_more(card, 6, "the gain")
            el = VCVS(name, at["npos"].text, at["nneg"].text, at["cpos"].text, at["cneg"].text,
                      self.number(at["gain"], f"the gain of {name}"))
        try:
            deck.add(el)
        except ParameterError as err:
            field = getattr(err, "field", None)
            message = str(err)
            first = self.first_seen.get(name.lower())
            if field == "name" and first is not None:
                message += f" (first defined at {self.path}:{first.line}:{first.col})"
            raise self.error(at.get(field, head), message) from None
        self.first_seen[name.lower()] = head

    def read(self, text: str) -> Deck:
        title, cards = _cards(text, self.path)
        deck = Deck(title, path=self.path)
        self.first_seen: dict[str, _Token] = {}
        # Models first: SPICE lets a .model card follow the elements using it.
        for card in cards:
            if card.tokens[0].text.lower() == ".model":
                self.model(deck, card)
        for card in cards:
            head = card.tokens[0]
            word = head.text.lower()
            if word == ".model":
                continue
            if word == ".end":
                break
            if word in (".options", ".option", ".opt"):
                self.options(deck, card)
            elif word == ".op":
                self.no_more(card, 1, ".op")
            elif word.startswith("."):
                raise self.error(head, f"unsupported control card {head.text!r} "
                                       "(supported: .model, .op, .options, .end)")
            else:
                self.element(deck, card)
        return deck


def parse_deck(text: str, path: str = "<string>") -> Deck:
    """Read a deck from SPICE text; ``path`` only labels error messages.

    Raises
    ------
    SpiceError
        With ``path:line:col:`` of the offending token.
    """
    return _Reader(str(path)).read(text)


def read_deck(path: Union[str, Path]) -> Deck:
    """Read a SPICE deck file (see the module docstring for the subset)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise SpiceError(str(path), 0, 0, f"cannot read deck: {err.strerror}") from err
    return parse_deck(text, str(path))


# Solver and ngspice runner are separate modules; re-exported here so that
# ``circuits.spice`` is the single public entry point. Imported last because
# they refer back to the deck classes above.
from .mna import OperatingPoint  # noqa: E402
from .ngspice import NgspiceError, ngspice_available, run_ngspice  # noqa: E402
