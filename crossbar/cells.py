"""Current–voltage law of one crosspoint: the access device in series with the memristor.

A cell sits between a row-wire node and a column-wire node. Its current, from
row to column, is a function of the voltage across it, ``v = V_row - V_col``,
and of the memristor's conductance ``g`` (the state the device models change).

Access devices:

- :class:`Passive` (0T1R): nothing, so sneak paths go through unselected cells;
- :class:`Transistor` (1T1R): an on-state transistor seen as a series resistance;
- :class:`Selector` (1S1R): a diode selector (one diode, or two antiparallel
  diodes for a bipolar selector) with SPICE's level-1 junction law (Shockley,
  and SPICE's smooth reverse-bias form below -3 nV_T) and GMIN in parallel with
  each junction, so that our solves can be compared with ngspice.

Memristor I–V laws: :class:`LinearIV` (``i = g v``) and :class:`SinhIV`
(``i = g v0 sinh(v / v0)``; small-signal conductance ``g``).

For a series pair the split of ``v`` between the two elements is found by a
safeguarded Newton iteration per cell (both currents rise monotonically with
their voltages, so the root is unique and bracketed by 0 and ``v``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numba import prange

from .checks import check_range

# ngspice's physical constants (src/include/ngspice/const.h, CODATA 2014) and its
# nominal temperature, so that a diode here and in ngspice see the same kT/q.
BOLTZMANN = 1.38064852e-23
CHARGE = 1.6021766208e-19
T_NOMINAL = 300.15
V_THERMAL = BOLTZMANN * T_NOMINAL / CHARGE
SPICE_GMIN = 1e-12

# integer codes passed to the kernels
ACCESS_NONE, ACCESS_RESISTOR, ACCESS_DIODE, ACCESS_DIODE_PAIR = 0, 1, 2, 3
IV_LINEAR, IV_SINH = 0, 1


@dataclass(frozen=True)
class Passive:
    """No access device (0T1R): every cell conducts, sneak paths included."""

    code = ACCESS_NONE

    def params(self):
        return 0.0, 1.0, 0.0


@dataclass(frozen=True)
class Transistor:
    """1T1R: an access transistor that is on during reads, modelled by its on-resistance."""

    r_on: float = 1e3
    """On-state channel resistance, ohm (> 0)."""

    code = ACCESS_RESISTOR

    def __post_init__(self):
        check_range("r_on", self.r_on, 0.0, low_open=True, unit="ohm")

    def params(self):
        return self.r_on, 1.0, 0.0


@dataclass(frozen=True)
class Selector:
    """1S1R: a diode selector, ``i = i_s (exp(v / (n V_T)) - 1) + gmin v`` per junction.

    With ``bipolar=True`` two antiparallel junctions conduct in both directions
    (the usual bipolar selector); otherwise a single diode conducts from row to column.
    """

    i_s: float = 1e-12
    """Saturation current, A."""
    n: float = 1.0
    """Emission coefficient (ideality factor)."""
    bipolar: bool = True
    """Two antiparallel diodes (True) or one diode, anode on the row side (False)."""
    gmin: float = SPICE_GMIN
    """Conductance in parallel with each junction, S (SPICE's GMIN)."""

    def __post_init__(self):
        check_range("i_s", self.i_s, 0.0, low_open=True, unit="A")
        check_range("n", self.n, 0.0, 100.0, low_open=True)
        check_range("gmin", self.gmin, 0.0, unit="S")

    @property
    def code(self):
        return ACCESS_DIODE_PAIR if self.bipolar else ACCESS_DIODE

    def params(self):
        return self.i_s, self.n * V_THERMAL, self.gmin


@dataclass(frozen=True)
class LinearIV:
    """Ohmic memristor: ``i = g v``."""

    code = IV_LINEAR
    v0 = 1.0


@dataclass(frozen=True)
class SinhIV:
    """Non-linear memristor I–V, ``i = g v0 sinh(v / v0)`` (small-signal conductance g)."""

    v0: float = 0.25
    """Voltage scale of the non-linearity, V (> 0); large v0 tends to ohmic."""

    code = IV_SINH

    def __post_init__(self):
        check_range("v0", self.v0, 0.0, low_open=True, unit="V")


def is_linear(access, iv) -> bool:
    """True when the cell current is proportional to the cell voltage."""
    return iv.code == IV_LINEAR and access.code in (ACCESS_NONE, ACCESS_RESISTOR)


def linear_conductance(g, access):
    """Series conductance of a linear cell (memristor plus on-resistance)."""
    if access.code == ACCESS_RESISTOR:
        return 1.0 / (1.0 / g + access.r_on)
    return np.asarray(g, dtype=float)


# --------------------------------------------------------------------------------------
# scalar laws, shared by the numba kernel (compiled) and the numpy twin (vectorised below)

@nb.njit(cache=True, inline="always")
def _memristor(u, g, iv, v0):
    if iv == IV_LINEAR:
        return g * u, g
    x = u / v0
    return g * v0 * math.sinh(x), g * math.cosh(x)


@nb.njit(cache=True, inline="always")
def _junction(w, i_s, nvt, gmin):
    """SPICE level-1 junction: Shockley above -3 nV_T, SPICE's smooth reverse law below."""
    if w >= -3.0 * nvt:
        e = math.exp(w / nvt)
        return i_s * (e - 1.0) + gmin * w, i_s * e / nvt + gmin
    arg = 3.0 * nvt / (math.e * w)
    arg = arg * arg * arg
    return -i_s * (1.0 + arg) + gmin * w, i_s * 3.0 * arg / w + gmin


@nb.njit(cache=True, inline="always")
def _access(w, access, p0, p1, p2):
    """Current and conductance of the access element at voltage ``w``."""
    if access == ACCESS_RESISTOR:
        return w / p0, 1.0 / p0
    # diodes: p0 = i_s, p1 = n*V_T, p2 = gmin per junction
    i, d = _junction(w, p0, p1, p2)
    if access == ACCESS_DIODE_PAIR:
        i2, d2 = _junction(-w, p0, p1, p2)
        i -= i2
        d += d2
    return i, d


@nb.njit(cache=True)
def _cell(v, g, access, iv, v0, p0, p1, p2):
    """Current and differential conductance of one cell at voltage v."""
    if access == ACCESS_NONE:
        return _memristor(v, g, iv, v0)
    if access == ACCESS_RESISTOR and iv == IV_LINEAR:
        ge = 1.0 / (1.0 / g + p0)
        return ge * v, ge
    # series split: memristor voltage u in [lo, hi]; f(u) = i_m(u) - i_a(v-u) rises with u
    lo = min(0.0, v)
    hi = max(0.0, v)
    u = 0.5 * v
    im = 0.0
    gm = 0.0
    ga = 0.0
    for _ in range(200):
        im, gm = _memristor(u, g, iv, v0)
        ia, ga = _access(v - u, access, p0, p1, p2)
        f = im - ia
        if f > 0.0:
            hi = u
        else:
            lo = u
        un = u - f / (gm + ga)
        if not (lo < un < hi):  # Newton left the bracket: bisect instead
            un = 0.5 * (lo + hi)
        if abs(un - u) <= 1e-15 * (abs(v) + 1e-300) or hi - lo <= 4e-16 * abs(v):
            u = un
            break
        u = un
    im, gm = _memristor(u, g, iv, v0)
    ia, ga = _access(v - u, access, p0, p1, p2)
    # current through the series pair: average the two sides to cancel rounding
    return 0.5 * (im + ia), gm * ga / (gm + ga)


@nb.njit(parallel=True, cache=True)
def cell_current_numba(v, g, access, iv, v0, p0, p1, p2, i_out, d_out):
    """Fill ``i_out`` and ``d_out`` (di/dv) for cells with voltages ``v``.

    ``v`` is flat of size K*n (K stacked right-hand sides); ``g`` is flat of size n.
    """
    n = g.size
    for k in prange(v.size):
        i_out[k], d_out[k] = _cell(v[k], g[k % n], access, iv, v0, p0, p1, p2)


def cell_current_numpy(v, g, access, iv, v0, p0, p1, p2, i_out, d_out):
    """Plain-numpy twin of :func:`cell_current_numba` (same arguments)."""
    n = g.size
    gg = np.tile(g, v.size // n)

    def mem(u):
        if iv == IV_LINEAR:
            return gg * u, gg.copy()
        return gg * v0 * np.sinh(u / v0), gg * np.cosh(u / v0)

    def junction(w):
        fwd = w >= -3.0 * p1
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            e = np.exp(np.where(fwd, w, 0.0) / p1)
            arg = (3.0 * p1 / (math.e * np.where(fwd, -1.0, w))) ** 3
        i = np.where(fwd, p0 * (e - 1.0), -p0 * (1.0 + arg)) + p2 * w
        d = np.where(fwd, p0 * e / p1, p0 * 3.0 * arg / np.where(fwd, -1.0, w)) + p2
        return i, d

    def acc(w):
        if access == ACCESS_RESISTOR:
            return w / p0, np.full_like(w, 1.0 / p0)
        i, d = junction(w)
        if access == ACCESS_DIODE_PAIR:
            i2, d2 = junction(-w)
            i, d = i - i2, d + d2
        return i, d

    if access == ACCESS_NONE:
        i, d = mem(v)
    elif access == ACCESS_RESISTOR and iv == IV_LINEAR:
        ge = 1.0 / (1.0 / gg + p0)
        i, d = ge * v, ge
    else:
        lo = np.minimum(0.0, v)
        hi = np.maximum(0.0, v)
        u = 0.5 * v
        active = np.ones(v.shape, bool)
        for _ in range(200):
            im, gm = mem(u)
            ia, ga = acc(v - u)
            f = im - ia
            hi = np.where(active & (f > 0), u, hi)
            lo = np.where(active & ~(f > 0), u, lo)
            un = u - f / (gm + ga)
            bad = ~((lo < un) & (un < hi))
            un = np.where(bad, 0.5 * (lo + hi), un)
            done = (np.abs(un - u) <= 1e-15 * (np.abs(v) + 1e-300)) | (hi - lo <= 4e-16 * np.abs(v))
            u = np.where(active, un, u)
            active &= ~done
            if not active.any():
                break
        im, gm = mem(u)
        ia, ga = acc(v - u)
        i, d = 0.5 * (im + ia), gm * ga / (gm + ga)
    i_out[:] = i
    d_out[:] = d


def cell_current(v, g, access, iv, backend="numba"):
    """Cell currents and differential conductances.

    Parameters
    ----------
    v : ndarray, shape (K, M, N) or (M, N)
        Voltage across each cell (row node minus column node), V.
    g : ndarray, shape (M, N)
        Memristor conductances, S.
    access, iv : access device and memristor I–V law.

    Returns
    -------
    i, di_dv : ndarrays shaped like ``v`` (A and S).
    """
    v = np.ascontiguousarray(v, dtype=float)
    g = np.ascontiguousarray(g, dtype=float)
    i = np.empty(v.size)
    d = np.empty(v.size)
    p0, p1, p2 = access.params()
    fn = cell_current_numba if backend == "numba" else cell_current_numpy
    fn(v.ravel(), g.ravel(), access.code, iv.code, float(iv.v0), float(p0), float(p1), float(p2), i, d)
    return i.reshape(v.shape), d.reshape(v.shape)


def memristor_voltage(i_cell, g, iv):
    """Voltage across the memristor itself, from the cell current (A) and its conductance (S).

    Programming acts on this voltage, not on the whole cell voltage: an access
    transistor or selector in series takes its own share.
    """
    if iv.code == IV_LINEAR:
        return i_cell / g
    return iv.v0 * np.arcsinh(i_cell / (g * iv.v0))
