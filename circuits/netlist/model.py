"""The parsed netlist: pure data with source positions.

Every card keeps its parameters as validated SI values (floats, ints, bools,
keyword strings, model names or None) with the defaults filled in, in schema
order, and ``param_pos`` the position of each parameter *given* in the source
(its key), in source order: ``key in card.param_pos`` tells an explicit value
from a default. Positions, source texts and paths do not take part in ``==``,
so a netlist written and read back compares equal to the original.
Dictionaries keep the order of the source.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from . import schema
from .errors import NetlistError, Pos, error_at


@dataclass(frozen=True)
class ModelCard:
    """``.model <name> <type> (key=value ...)``."""

    name: str
    type: str
    """One of :data:`circuits.netlist.schema.MODEL_TYPES`."""
    params: dict[str, Any]
    pos: Pos = field(compare=False)
    param_pos: dict[str, Pos] = field(compare=False, default_factory=dict)

    def build(self):
        """The :mod:`crossbar` object the card describes: a device model
        (ExponentialDevice, ThresholdDevice, SoftBoundsDevice), an access device
        (Transistor, Selector) or an I-V law (SinhIV).

        Raises
        ------
        TypeError
            For converter models (``dac``, ``adc``), which have no such class:
            their ``params`` are the description.
        """
        cls = schema.MODEL_TYPES[self.type].cls
        if cls is None:
            raise TypeError(f"a {self.type} model has no crossbar class; use its params")
        return cls(**{f.name: self.params[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class GroupCard:
    """``N<name> size=<int> key=value ...``: a neuron group (``params["size"] == size``)."""

    name: str
    size: int
    params: dict[str, Any]
    pos: Pos = field(compare=False)
    param_pos: dict[str, Pos] = field(compare=False, default_factory=dict)


@dataclass(frozen=True)
class TileCard:
    """``X<name> <rows_group> <cols_group> model=<name> key=value ...``: a crossbar tile.

    ``params["rows"]`` and ``params["cols"]`` are always filled: given, or
    from the group sizes (rows: +1 if the row group has bias=1).
    """

    name: str
    rows_group: str
    cols_group: str
    params: dict[str, Any]
    pos: Pos = field(compare=False)
    param_pos: dict[str, Pos] = field(compare=False, default_factory=dict)
    node_pos: tuple[Pos, Pos] = field(compare=False, default=None)
    """Positions of the row group and column group names."""


@dataclass(frozen=True)
class ProgramCard:
    """``.program key=value ...``: the programming drivers."""

    params: dict[str, Any]
    pos: Pos = field(compare=False)
    param_pos: dict[str, Pos] = field(compare=False, default_factory=dict)


@dataclass(frozen=True)
class DRNCard:
    """``.drn key=value ...``: a deep resistive network instead of groups and tiles."""

    params: dict[str, Any]
    pos: Pos = field(compare=False)
    param_pos: dict[str, Pos] = field(compare=False, default_factory=dict)


@dataclass(frozen=True)
class Netlist:
    """A chip description, as read from a netlist file.

    Group and tile names share one namespace; model names have their own;
    all names are lower case (the format is case-insensitive). Group names
    do not include the ``N`` of their card, tile names not the ``X``.
    """

    path: str = field(compare=False)
    """Path of the top file as given (``<string>`` for text)."""
    title: str
    seed: int | None
    params: dict[str, float]
    """``.param`` values (SI floats), in definition order."""
    models: dict[str, ModelCard]
    groups: dict[str, GroupCard]
    tiles: dict[str, TileCard]
    program: ProgramCard | None
    text: str = field(compare=False, repr=False)
    """The exact source text of the top file."""
    sources: dict[str, str] = field(compare=False, repr=False)
    """Path -> text of every file read, the top file and its includes."""
    drn: DRNCard | None = None
    """A deep resistive network (``.drn``); then there are no groups or tiles."""

    def error(self, pos: Pos, message: str) -> NetlistError:
        """A :class:`NetlistError` at ``pos`` (a card's ``pos``, ``param_pos[key]``
        or ``node_pos[i]``), with the source line and caret; raise it."""
        return error_at(self.sources, pos, message)

    def to_text(self) -> str:
        """Canonical netlist text (see :func:`circuits.netlist.write_netlist`)."""
        from .writer import write_netlist
        return write_netlist(self)

    def write(self, path: Union[str, Path]) -> Path:
        """Write :meth:`to_text` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.to_text(), encoding="utf-8")
        return path
