"""Read netlist text into a :class:`~circuits.netlist.model.Netlist`.

Cards are read in order: ``.param`` values are visible to the cards after
them, while models and groups may be referenced before their card (the
references are resolved once every file has been read).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from . import schema
from .errors import NetlistError, Pos, did_you_mean, error_at
from .expr import RESERVED
from .lexer import EQ, LPAREN, RPAREN, STRING, WORD, Card, Token, lex
from .model import DRNCard, GroupCard, ModelCard, Netlist, ProgramCard, TileCard
from .validate import (IDENT, Given, Values, card_params, check_g_init, check_name,
                       resolve_group, resolve_model)

_SEED = schema.Param("seed", schema.INT, "seed", low=0)


@dataclass
class _Record:
    """A card being read: name, position, parameters and the tokens behind them."""

    name: str
    pos: Pos
    params: dict
    given: dict[str, Given]

    @property
    def param_pos(self) -> dict[str, Pos]:
        return {k: g.key.pos for k, g in self.given.items()}


class _Reader:
    def __init__(self):
        self.sources: dict[str, str] = {}
        self.params: dict[str, float] = {}
        self.param_at: dict[str, Pos] = {}
        self.models: dict[str, ModelCard] = {}
        self.groups: dict[str, _Record] = {}
        self.tiles: dict[str, tuple[_Record, Token, Token]] = {}
        self.program: _Record | None = None
        self.drn: _Record | None = None
        self.seed: int | None = None
        self.seed_at: Pos | None = None
        self.values = Values(self.error, self.params)
        self.commands = {".param": self.param, ".include": self.include, ".seed": self.seed_card,
                         ".end": self.end, ".model": self.model, ".program": self.program_card, ".drn": self.drn_card}
        self.letters = {"n": self.group, "x": self.tile}

    def error(self, pos: Pos, message: str) -> NetlistError:
        return error_at(self.sources, pos, message)

    # ---------------------------------------------------------------- files
    def file(self, text: str, path: str, chain: tuple[tuple[str, str], ...], top: bool):
        self.sources[path] = text
        title, cards = lex(text, path, title=top, error=self.error)
        for card in cards:
            self.card(card, chain)
        return title

    def card(self, card: Card, chain) -> None:
        first = card.tokens[0]
        word = first.lower
        if first.kind != WORD:
            raise self.error(first.pos, f"expected a card (N<name>, X<name> or a command such as "
                             f".model), found {first.describe()}")
        if word.startswith("."):
            handler = self.commands.get(word)
            if handler is None:
                raise self.error(first.pos, f"unknown command '{word}'"
                                 + (did_you_mean(word, self.commands)
                                    or f"; known: {', '.join(self.commands)}"))
            if word == ".include":
                return handler(card, chain)
            return handler(card)
        handler = self.letters.get(word[0])
        if handler is None:
            raise self.error(first.pos, f"unknown element '{first.text}': a card is a neuron group "
                             "N<name>, a crossbar tile X<name> or a command (.model, .param, "
                             ".include, .seed, .program, .drn, .end)")
        handler(card)

    # ---------------------------------------------------------------- helpers
    def pairs(self, toks: list[Token]) -> list[tuple[Token, Token]]:
        """The ``key=value`` pairs of ``toks`` as (key, value) tokens."""
        out, i = [], 0
        while i < len(toks):
            key = toks[i]
            if key.kind != WORD:
                raise self.error(key.pos, f"expected a parameter name (key=value), found "
                                 f"{key.describe()}")
            if i + 1 >= len(toks) or toks[i + 1].kind != EQ:
                raise self.error(key.pos, f"expected key=value, found {key.describe()} "
                                 "without '='")
            if i + 2 >= len(toks) or toks[i + 2].kind in (EQ, LPAREN, RPAREN):
                at = toks[i + 2].pos if i + 2 < len(toks) else toks[i + 1].end
                raise self.error(at, f"missing value after '{key.text}='")
            out.append((key, toks[i + 2]))
            i += 3
        return out

    def argument(self, card: Card, usage: str) -> Token:
        """The single argument of a command."""
        toks = card.tokens
        if len(toks) < 2:
            raise self.error(card.end, f"missing argument: {usage}")
        if len(toks) > 2:
            raise self.error(toks[2].pos, f"unexpected {toks[2].describe()} ({usage})")
        return toks[1]

    def new_name(self, tok: Token, name: str, what: str) -> str:
        """Check that group/tile ``name`` is valid and not taken."""
        check_name(self.error, tok, name, what)
        other = self.groups.get(name) or (self.tiles.get(name) or (None,))[0]
        if other is not None:
            kind = "group" if name in self.groups else "tile"
            raise self.error(tok.pos, f"duplicate name '{name}': already used by the {kind} "
                             f"defined at {other.pos}")
        return name

    def record(self, card: Card, toks: list[Token], element: schema.Element, name: str,
               what: str) -> _Record:
        """Check the ``key=value`` tokens ``toks`` of ``card`` against ``element``."""
        params, given = card_params(self.error, self.values, element, what, self.pairs(toks),
                                    card.end)
        return _Record(name, card.tokens[0].pos, params, given)

    # ---------------------------------------------------------------- commands
    def param(self, card: Card) -> None:
        if len(card.tokens) == 1:
            raise self.error(card.end, "missing name=value after .param")
        for key, tok in self.pairs(card.tokens[1:]):
            name = key.lower
            if not IDENT.match(name):
                raise self.error(key.pos, f"invalid parameter name '{key.text}' (a letter or _ "
                                 "first, then letters, digits and _)")
            if name in RESERVED:
                raise self.error(key.pos, f"'{name}' is reserved (a function or constant of "
                                 "expressions) and cannot be a parameter name")
            if name in self.params:
                raise self.error(key.pos, f"parameter '{name}' is already defined at "
                                 f"{self.param_at[name]}")
            if tok.kind == STRING:
                raise self.error(tok.pos, f"expected a number or {{expression}} for '{name}', "
                                 f"found {tok.describe()}")
            self.params[name] = self.values.number(tok, name)
            self.param_at[name] = key.pos

    def include(self, card: Card, chain) -> None:
        tok = self.argument(card, '.include "file.net"')
        if tok.kind not in (STRING, WORD) or not tok.text:
            raise self.error(tok.pos, f"expected a file name after .include, found {tok.describe()}")
        here = tok.pos.path
        base = "" if here.startswith("<") else os.path.dirname(here)
        path = os.path.normpath(os.path.join(base, tok.text))
        real = os.path.realpath(path)
        if real in [r for r, _ in chain]:
            names = [shown for _, shown in chain] + [path]
            start = [r for r, _ in chain].index(real)
            raise self.error(tok.pos, "include cycle: " + " -> ".join(names[start:]))
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(tok.pos, f"included file '{path}' is not UTF-8 text ({exc.reason})") \
                from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise self.error(tok.pos, f"cannot read included file '{path}': {reason}") from None
        self.file(text, path, chain + ((real, path),), top=False)

    def seed_card(self, card: Card) -> None:
        tok = self.argument(card, ".seed <integer>")
        if self.seed_at is not None:
            raise self.error(card.tokens[0].pos, f"second .seed (the first is at {self.seed_at})")
        self.seed = self.values.convert(_SEED, tok)
        self.seed_at = card.tokens[0].pos

    def end(self, card: Card) -> None:
        if len(card.tokens) > 1:
            raise self.error(card.tokens[1].pos, f"unexpected {card.tokens[1].describe()} "
                             "after .end")

    def model(self, card: Card) -> None:
        toks = card.tokens
        usage = ".model <name> <type> (key=value ...)"
        if len(toks) < 3:
            raise self.error(card.end, f"missing model {'name' if len(toks) < 2 else 'type'}: "
                             f"{usage}")
        name_tok, type_tok = toks[1], toks[2]
        name = check_name(self.error, name_tok, self.values.word(name_tok, "the model name"),
                          "model")
        if name in schema.MODEL_KEYWORDS:
            raise self.error(name_tok.pos, f"'{name}' is a keyword of model parameters and "
                             "cannot be a model name")
        if name in self.models:
            raise self.error(name_tok.pos, f"duplicate model name '{name}' (first defined at "
                             f"{self.models[name].pos})")
        mtype = self.values.word(type_tok, "the model type")
        element = schema.MODEL_TYPES.get(mtype)
        if element is None:
            raise self.error(type_tok.pos, f"unknown model type '{type_tok.text}'"
                             + (did_you_mean(mtype, schema.MODEL_TYPES)
                                or f"; known: {', '.join(schema.MODEL_TYPES)}"))
        body = toks[3:]
        if body and body[0].kind == LPAREN:
            close = next((i for i, t in enumerate(body) if t.kind == RPAREN), None)
            if close is None:
                raise self.error(body[0].pos, "unclosed '(': the parameters of a .model end "
                                 "with ')'")
            if close + 1 < len(body):
                raise self.error(body[close + 1].pos, f"unexpected {body[close + 1].describe()} "
                                 "after the closing ')'")
            body = body[1:close]
        rec = self.record(card, body, element, name, f"{mtype} model '{name}'")
        self.models[name] = ModelCard(name, mtype, rec.params, name_tok.pos, rec.param_pos)

    def program_card(self, card: Card) -> None:
        if self.program is not None:
            raise self.error(card.tokens[0].pos, "second .program card (the first is at "
                             f"{self.program.pos})")
        self.program = self.record(card, card.tokens[1:], schema.PROGRAM, "", ".program")

    # ---------------------------------------------------------------- elements
    def drn_card(self, card: Card) -> None:
        if self.drn is not None:
            raise self.error(card.tokens[0].pos, f"second .drn card (the first is at {self.drn.pos})")
        self.drn = self.record(card, card.tokens[1:], schema.DRN, "", ".drn")

    def group(self, card: Card) -> None:
        first = card.tokens[0]
        name = self.new_name(first, first.lower[1:], "group")
        self.groups[name] = self.record(card, card.tokens[1:], schema.GROUP, name,
                                        f"neuron group '{name}'")

    def tile(self, card: Card) -> None:
        first, toks = card.tokens[0], card.tokens
        name = self.new_name(first, first.lower[1:], "tile")
        nodes = []
        for i, what in ((1, "row"), (2, "column")):
            tok = toks[i] if i < len(toks) else None
            if tok is None or tok.kind != WORD or (i + 1 < len(toks) and toks[i + 1].kind == EQ):
                at = tok.pos if tok is not None else card.end
                found = f", found {tok.describe()}" if tok is not None else ""
                raise self.error(at, f"expected the {what} group of tile '{name}'{found} "
                                 "(X<name> <row group> <column group> model=<name> ...)")
            nodes.append(tok)
        rec = self.record(card, toks[3:], schema.TILE, name, f"tile '{name}'")
        self.tiles[name] = (rec, nodes[0], nodes[1])

    # ---------------------------------------------------------------- assembly
    def netlist(self, path: str, title: str) -> Netlist:
        models = self.models
        groups = {}
        for name, rec in self.groups.items():
            for key in ("dac", "adc"):
                if key in rec.given:
                    resolve_model(self.error, models, rec.given[key], schema.GROUP.params[key])
            groups[name] = GroupCard(name, rec.params["size"], rec.params, rec.pos,
                                     rec.param_pos)
        tiles = {}
        for name, (rec, row_tok, col_tok) in self.tiles.items():
            rows_group = resolve_group(self.error, groups, self.tiles, row_tok)
            cols_group = resolve_group(self.error, groups, self.tiles, col_tok)
            for key in ("model", "access", "iv"):
                if key in rec.given:
                    resolve_model(self.error, models, rec.given[key], schema.TILE.params[key])
            check_g_init(self.error, rec.given.get("g_init"), models[rec.params["model"]])
            params = dict(rec.params)
            if params["rows"] is None:
                g = groups[rows_group]
                params["rows"] = g.size + int(g.params["bias"])
            if params["cols"] is None:
                params["cols"] = groups[cols_group].size + int(groups[cols_group].params["bias"])
            tiles[name] = TileCard(name, rows_group, cols_group, params, rec.pos, rec.param_pos,
                                   (row_tok.pos, col_tok.pos))
        program = None
        if self.program is not None:
            program = ProgramCard(self.program.params, self.program.pos, self.program.param_pos)
        drn = None
        if self.drn is not None:
            if groups or tiles:
                first = next(iter(groups.values() or tiles.values()))
                raise self.error(first.pos, f"a netlist with a .drn card (at {self.drn.pos}) describes "
                                            "the whole network: no N or X cards")
            resolve_model(self.error, models, self.drn.given["model"], schema.DRN.params["model"])
            drn = DRNCard(self.drn.params, self.drn.pos, self.drn.param_pos)
        return Netlist(path, title, self.seed, dict(self.params), models, groups, tiles, program,
                       self.sources[path], self.sources, drn)


def parse_netlist(text: str, path: str = "<string>") -> Netlist:
    """Read a netlist from ``text``; ``path`` names it in errors and anchors
    relative ``.include`` paths (``<...>`` names: relative to the working directory).

    Raises
    ------
    NetlistError
        With ``path:line:col`` of the offending token, in the file (top or
        included) where it is.
    """
    path = str(path)
    reader = _Reader()
    real = os.path.realpath(path) if not path.startswith("<") else path
    title = reader.file(text, path, ((real, path),), top=True)
    return reader.netlist(path, title)


def read_netlist(path: Union[str, os.PathLike]) -> Netlist:
    """Read the netlist file ``path`` (UTF-8). See :func:`parse_netlist`."""
    path = os.fspath(path)
    return parse_netlist(Path(path).read_text(encoding="utf-8"), path)
