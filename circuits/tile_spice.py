"""Write a crossbar tile, with its line terminations, as a plain SPICE deck.

The deck uses the node names of :class:`crossbar.solution.Solution`
(``r{i}_{j}`` and ``c{i}_{j}`` at the crosspoints), so an ngspice operating
point can be compared node by node with our solve. Terminations are given as
Norton pairs, as for :meth:`crossbar.tile.Tile.solve`:

- ``g = inf``: a voltage source ``VR{i}`` / ``VC{j}`` at the terminal node;
- finite ``g > 0``: the same source behind a resistor ``1/g``;
- ``g = 0``: nothing (the line floats).

Cells are the memristor resistor plus the access device: a series resistor for
1T1R, one diode or two antiparallel diodes for 1S1R. A sinh-law memristor has no
plain R/V/I/D/E equivalent and is refused.
"""
from __future__ import annotations

import numpy as np

from crossbar.cells import ACCESS_DIODE, ACCESS_DIODE_PAIR, ACCESS_RESISTOR, IV_LINEAR
from crossbar.errors import ParameterError

from .spice import Deck

SELECTOR_MODEL = "dsel"


def tile_deck(tile, row_g_ext, row_v_ext, col_g_ext, col_v_ext, *, title="crossbar tile") -> Deck:
    """One right-hand side of a tile solve as a :class:`circuits.spice.Deck`.

    ``row_v_ext`` (M,) and ``col_v_ext`` (N_phys,) are the source voltages.
    """
    if tile.iv.code != IV_LINEAR:
        raise ParameterError(f"tile iv = {tile.iv!r}: only linear memristors can be written as a plain "
                             "SPICE deck (R, V, I, D, E elements)")
    M, Np = tile.g.shape
    if not tile.wires.ideal and (np.any(np.asarray(tile.wires.r_row_segment) == 0)
                                 or np.any(np.asarray(tile.wires.r_col_segment) == 0)):
        raise ParameterError("wire segments must be all zero or all positive")
    deck = Deck(f"{title} {M}x{Np}")
    rr = np.broadcast_to(np.asarray(tile.wires.r_row_segment, float), (M, Np))
    rc = np.broadcast_to(np.asarray(tile.wires.r_col_segment, float), (M, Np))
    ideal = tile.wires.ideal
    code = tile.access.code
    if code in (ACCESS_DIODE, ACCESS_DIODE_PAIR):
        i_s, nvt, gmin = tile.access.params()
        deck.add_model(SELECTOR_MODEL, IS=i_s, N=tile.access.n)
        deck.set_option("gmin", gmin)

    def row_node(i, j):
        return f"r{i}_0" if ideal else f"r{i}_{j}"

    def col_node(i, j):
        return f"c{M - 1}_{j}" if ideal else f"c{i}_{j}"

    # wires
    if not ideal:
        for i in range(M):
            for j in range(1, Np):
                deck.add_resistor(f"RWR{i}_{j}", f"r{i}_{j - 1}", f"r{i}_{j}", rr[i, j])
        for j in range(Np):
            for i in range(M - 1):
                deck.add_resistor(f"RWC{i}_{j}", f"c{i}_{j}", f"c{i + 1}_{j}", rc[i, j])
    # cells
    for i in range(M):
        for j in range(Np):
            a, b = row_node(i, j), col_node(i, j)
            r_mem = 1.0 / tile.g[i, j]
            if code == ACCESS_RESISTOR:
                deck.add_resistor(f"RA{i}_{j}", a, f"m{i}_{j}", tile.access.r_on)
                a = f"m{i}_{j}"
            elif code in (ACCESS_DIODE, ACCESS_DIODE_PAIR):
                deck.add_diode(f"DS{i}_{j}", a, f"m{i}_{j}", SELECTOR_MODEL)
                if code == ACCESS_DIODE_PAIR:
                    deck.add_diode(f"DT{i}_{j}", f"m{i}_{j}", a, SELECTOR_MODEL)
                a = f"m{i}_{j}"
            deck.add_resistor(f"RM{i}_{j}", a, b, r_mem)
    # terminations: the first segment joins the terminal node to the line
    for kind, n, g_ext, v_ext in (("R", M, row_g_ext, row_v_ext), ("C", Np, col_g_ext, col_v_ext)):
        for t in range(n):
            g = float(np.asarray(g_ext)[t])
            if g == 0:
                continue
            if kind == "R":
                line, r_first, term = row_node(t, 0), rr[t, 0], f"rt{t}"
            else:
                line, r_first, term = col_node(M - 1, t), rc[M - 1, t], f"ct{t}"
            if ideal:
                term = line
            else:
                deck.add_resistor(f"RT{kind}{t}", term, line, r_first)
            src = term
            if np.isfinite(g):
                src = f"{kind.lower()}s{t}"
                deck.add_resistor(f"RS{kind}{t}", src, term, 1.0 / g)
            deck.add_vsource(f"V{kind}{t}", src, "0", float(np.asarray(v_ext)[t]))
    return deck
