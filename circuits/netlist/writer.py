"""Write a :class:`~circuits.netlist.model.Netlist` back as canonical netlist text.

The text is a single file (includes are inlined), with every value resolved
to a number written exactly (``repr``), names in lower case, and the cards in
the order seed, params, models, groups, tiles, program. A card lists the
parameters given in its source, in source order, then any other value that
differs from the default it would otherwise get, so that reading the text
back gives an equal netlist.
"""
from __future__ import annotations

import dataclasses

from . import schema
from .model import GroupCard, Netlist, TileCard
from .schema import format_number

WIDTH = 100
"""Cards longer than this continue on ``+`` lines."""


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return format_number(value)


def _defaults(element: schema.Element, params: dict) -> dict:
    """The value each parameter of a card takes when it is not given."""
    defaults = {name: p.default for name, p in element.params.items()}
    if params.get("preset") == "thesis":
        preset = element.cls.thesis(beta=params["beta"])
        defaults.update((f.name, getattr(preset, f.name)) for f in dataclasses.fields(preset))
    return defaults


def _items(card, element: schema.Element, defaults: dict | None = None) -> list[tuple[str, object]]:
    """The parameters to write: the given ones, then those that differ from their default."""
    defaults = _defaults(element, card.params) if defaults is None else defaults
    keys = [k for k in card.param_pos if k in card.params]
    keys += [k for k, v in card.params.items()
             if k not in card.param_pos and v != defaults.get(k)]
    return [(k, card.params[k]) for k in keys if k != "size"]     # a group's size is in its head


def _card(head: str, items) -> str:
    lines, line = [], head
    for key, value in items:
        piece = f"{key}={_text(value)}"
        if len(line) + 1 + len(piece) > WIDTH and line.strip("+ "):
            lines.append(line)
            line = "+ " + piece
        else:
            line += " " + piece
    return "\n".join(lines + [line])


def write_netlist(netlist: Netlist) -> str:
    """Canonical text of ``netlist``; ``parse_netlist(write_netlist(n)) == n``."""
    out = [netlist.title]
    if netlist.seed is not None:
        out.append(f".seed {netlist.seed}")
    out += [f".param {name}={format_number(value)}" for name, value in netlist.params.items()]
    for m in netlist.models.values():
        out.append(_card(f".model {m.name} {m.type}", _items(m, schema.MODEL_TYPES[m.type])))
    for g in netlist.groups.values():
        out.append(_card(f"N{g.name} size={g.size}", _items(g, schema.GROUP)))
    for t in netlist.tiles.values():
        out.append(_card(f"X{t.name} {t.rows_group} {t.cols_group}",
                         _items(t, schema.TILE, _tile_defaults(netlist, t))))
    if netlist.program is not None:
        out.append(_card(".program", _items(netlist.program, schema.PROGRAM)))
    if netlist.drn is not None:
        out.append(_card(".drn", _items(netlist.drn, schema.DRN)))
    out += [".end", ""]
    return "\n".join(out)


def _tile_defaults(netlist: Netlist, tile: TileCard) -> dict:
    defaults = _defaults(schema.TILE, tile.params)
    rows: GroupCard | None = netlist.groups.get(tile.rows_group)
    cols: GroupCard | None = netlist.groups.get(tile.cols_group)
    if rows is not None:
        defaults["rows"] = rows.size + int(rows.params.get("bias", False))
    if cols is not None:
        defaults["cols"] = cols.size + int(cols.params.get("bias", False))
    return defaults
