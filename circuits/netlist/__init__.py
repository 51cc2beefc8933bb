"""The netlist file format: a chip described as crossbar tiles, neuron groups,
converters, the graph between them, the programming drivers and the seed.

``read_netlist(path)`` / ``parse_netlist(text)`` give a :class:`Netlist` of
pure data with source positions; ``write_netlist(netlist)`` gives canonical
text back. Every error is a :class:`NetlistError` whose message starts with
``path:line:col:``. The format reference is ``netlists/README.md``; its
parameter tables come from :mod:`circuits.netlist.schema`.

Modules: :mod:`.lexer` (cards and tokens), :mod:`.expr` (``{...}``
expressions), :mod:`.schema` (parameters), :mod:`.validate` (values and
references), :mod:`.parser`, :mod:`.writer`, :mod:`.model` (the data classes).
"""
from .errors import NetlistError, Pos
from .model import GroupCard, ModelCard, Netlist, ProgramCard, TileCard
from .parser import parse_netlist, read_netlist
from .writer import write_netlist

__all__ = ["NetlistError", "Pos", "Netlist", "ModelCard", "GroupCard", "TileCard",
           "ProgramCard", "parse_netlist", "read_netlist", "write_netlist"]
