"""Build a :class:`circuits.chip.Chip` from a parsed netlist.

Randomness: one ``numpy.random.Generator`` seeded with the netlist's ``.seed``
(or the ``seed`` argument, which wins) draws, in netlist order, every group's
mismatch, then every tile's initial conductances and device-to-device spread;
the chip keeps the same generator for everything random at run time (noise,
stochastic neurons). The same netlist and seed give the same chip, bit for bit.
"""
from __future__ import annotations

import numpy as np

from crossbar.cells import LinearIV, Passive
from crossbar.errors import CrossbarError
from crossbar.tile import Tile, Wires

from .chip import Chip, ChipError, ChipTile, ProgramSettings
from .converters import ADC, DAC
from .netlist import read_netlist
from .neurons import NeuronGroup, NeuronParams


def load(path, seed: int | None = None):
    """Read a netlist file and build its chip: a :class:`Chip`, or a
    :class:`circuits.resistive_network.ResistiveNetwork` for a netlist with a
    ``.drn`` card. Errors are :class:`circuits.NetlistError`."""
    netlist = read_netlist(path)
    if netlist.drn is not None:
        return build_drn(netlist, seed=seed)
    return build_chip(netlist, seed=seed)


def _settings(netlist) -> ProgramSettings:
    if netlist.program is None:
        return ProgramSettings()
    q = dict(netlist.program.params)
    q["scheme"] = q["scheme"].upper()
    return ProgramSettings(**{k: v for k, v in q.items() if k in ProgramSettings.__dataclass_fields__})


def build_drn(netlist, seed: int | None = None):
    """The deep resistive network of a netlist's ``.drn`` card (seeded like a chip)."""
    from .resistive_network import DiodeClamp, ResistiveNetwork
    seed = seed if seed is not None else (netlist.seed if netlist.seed is not None else 0)
    p = netlist.drn.params
    sizes = (p["inputs"], p["hidden"]) + ((p["hidden2"],) if p["hidden2"] else ()) + (p["outputs"],)
    gains = (p["gain_in"],) + (p["gain_hid"],) * (len(sizes) - 2)
    with _at(netlist, netlist.drn):
        device = netlist.models[p["model"]].build()
        diode = DiodeClamp(v_bias=p["v_bias"], sides=p["diodes"], i_sat=p["i_sat"], n=p["n"])
        return ResistiveNetwork(sizes, device, gains=gains, diode=diode, output_diodes=p["output_diodes"],
                                bias_voltages=(p["bias_pos"], p["bias_neg"]), settings=_settings(netlist),
                                rng=np.random.default_rng(seed), seed=seed, source=netlist.text)


def build_chip(netlist, seed: int | None = None) -> Chip:
    seed = seed if seed is not None else (netlist.seed if netlist.seed is not None else 0)
    rng = np.random.default_rng(seed)
    models = netlist.models
    groups = {}
    for name, card in netlist.groups.items():
        p = dict(card.params)
        p.pop("size")
        for conv, cls in (("dac", DAC), ("adc", ADC)):
            ref = p.get(conv)
            p[conv] = None if ref in (None, "none") else cls(**models[ref].params)
        p = {k: v for k, v in p.items() if k in NeuronParams.__dataclass_fields__}
        with _at(netlist, card):
            groups[name] = NeuronGroup(name, card.size, NeuronParams(**p), rng)
    tiles = {}
    for name, card in netlist.tiles.items():
        p = card.params
        with _at(netlist, card):
            device = models[p["model"]].build()
            access = Passive() if p["access"] == "passive" else models[p["access"]].build()
            iv = LinearIV() if p["iv"] == "linear" else models[p["iv"]].build()
            shape = (p["rows"], p["cols"] * (2 if p["pairs"] else 1))
            g = _initial(device, p["g_init"], shape, rng)
            wires = Wires(r_row_segment=p["r_row"], r_col_segment=p["r_col"],
                          r_row_driver=p["r_driver_row"], r_col_driver=p["r_driver_col"])
            tile = Tile(g, pairs=bool(p["pairs"]), wires=wires, access=access, iv=iv)
            tiles[name] = ChipTile(name, tile, device, device.sample(shape, rng, pairs=bool(p["pairs"])), card.rows_group,
                                   card.cols_group, bidirectional=bool(p["bidirectional"]),
                                   sense=p["sense"], r_load=p["r_load"])
    try:
        return Chip(groups, tiles, settings=_settings(netlist), rng=rng, seed=seed, source=netlist.text)
    except ChipError as err:
        raise _locate(netlist, err) from err


def _initial(device, g_init, shape, rng):
    if g_init == "thesis":
        return device.initial_conductance(shape, rng)
    if g_init == "min":
        return np.full(shape, device.g_min)
    if g_init == "max":
        return np.full(shape, device.g_max)
    return np.full(shape, float(g_init))


class _at:
    """Re-raise parameter errors while building a card as NetlistErrors at that card."""

    def __init__(self, netlist, card):
        self.netlist, self.card = netlist, card

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if err is not None and isinstance(err, CrossbarError) and not hasattr(err, "line"):
            raise self.netlist.error(self.card.pos, str(err)) from err
        return False


def _locate(netlist, err):
    """Point a chip-structure error at the card of the tile or group it is about."""
    card = netlist.tiles.get(err.subject) or netlist.groups.get(err.subject)
    if card is None and netlist.groups:
        card = next(iter(netlist.groups.values()))
    return netlist.error(card.pos, str(err)) if card is not None else err
