"""Energy and time of a row-by-row V/2 write on linear cells with ideal drivers.

Row i is written in two phases, SET then RESET. In a phase of length T_i (its
longest pulse) a selected cell sees the full write voltage V for its own width
t_ij and V/2 for the rest of the phase; the other cells of row i see V/2
throughout; the other cells of a selected column see V/2 for t_ij. With
A = sum g t over the selected cells, the phase dissipates

    V^2 A + (V/2)^2 (T_i rowsum_i(g) - A_i + sum_j t_ij colsum_j(g) - A_i),

summed over rows and both polarities. Conductances are those at the start of
the write (quasi-static).

Two implementations of the same sums: ``_numpy`` (the reference, whole-array
operations) and ``_numba`` (one pass over the array, no temporaries: on the
815,670 devices of the EP network it is about ten times faster, and it is
called once per tile per mini-batch). Tests check that they agree.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np


def v2_row_write_cost(P, g, v_write: float, backend: str = "numba") -> tuple[float, float, int]:
    """``(energy J, time s, phases)`` of writing signed widths ``P`` (M, N) on conductances ``g`` (S)."""
    P = np.ascontiguousarray(P, dtype=float)
    g = np.ascontiguousarray(g, dtype=float)
    if backend == "numba":
        energy, time, n_phases = _numba(P, g, float(v_write))
        return float(energy), float(time), int(n_phases)
    if backend == "numpy":
        return _numpy(P, g, float(v_write))
    raise ValueError(f"backend must be 'numba' or 'numpy'; got {backend!r}")


def _numpy(P, g, v_write):
    g_rows, g_cols = g.sum(axis=1), g.sum(axis=0)
    energy = time = 0.0
    n_phases = 0
    for t in (np.where(P > 0, P, 0.0), np.where(P < 0, -P, 0.0)):   # SET, then RESET phases
        T = t.max(axis=1)
        A = float(np.sum(g * t))
        energy += v_write ** 2 * A + (v_write / 2) ** 2 * (T @ g_rows - A + t.sum(axis=0) @ g_cols - A)
        time += float(T.sum())
        n_phases += int(np.count_nonzero(T))
    return float(energy), float(time), n_phases


@nb.njit(cache=True)
def _numba(P, g, v_write):
    M, N = P.shape
    col_t_set = np.zeros(N)     # sum over rows of the SET widths of each column
    col_t_reset = np.zeros(N)
    col_g = np.zeros(N)
    a_set = a_reset = row_term = 0.0
    time = 0.0
    n_phases = 0
    for i in range(M):
        t_set = t_reset = g_row = 0.0
        for j in range(N):
            # selects, not branches: the signs are random, and this way the row vectorises
            p = P[i, j]
            gij = g[i, j]
            ps = p if p > 0 else 0.0          # SET width
            pr = -p if p < 0 else 0.0         # RESET width
            g_row += gij
            col_g[j] += gij
            a_set += gij * ps
            a_reset += gij * pr
            col_t_set[j] += ps
            col_t_reset[j] += pr
            t_set = max(t_set, ps)
            t_reset = max(t_reset, pr)
        row_term += (t_set + t_reset) * g_row
        time += t_set + t_reset
        n_phases += (t_set > 0) + (t_reset > 0)
    col_term = 0.0
    for j in range(N):
        col_term += (col_t_set[j] + col_t_reset[j]) * col_g[j]
    a = a_set + a_reset
    energy = v_write * v_write * a + 0.25 * v_write * v_write * (row_term + col_term - 2.0 * a)
    return energy, time, n_phases


# ---------------------------------------------------------------------------------------------
# The other whole-array passes of a write, fused the same way (numpy references below each).

def width_range(widths, backend: str = "numba") -> tuple[bool, float, float]:
    """``(all finite, smallest nonzero |width|, largest |width|)`` of signed widths.

    With no nonzero width the smallest is inf and the largest 0. Used to validate a
    schedule against the drivers' range in one pass instead of five.
    """
    w = np.ascontiguousarray(widths, dtype=float).reshape(-1)
    if backend == "numba":
        finite, lo, hi = _width_range_numba(w)
        return bool(finite), float(lo), float(hi)
    if backend == "numpy":
        if not np.all(np.isfinite(w)):
            return False, np.inf, 0.0
        a = np.abs(w)
        nz = a[a > 0]
        return True, float(nz.min()) if nz.size else np.inf, float(a.max()) if a.size else 0.0
    raise ValueError(f"backend must be 'numba' or 'numpy'; got {backend!r}")


@nb.njit(cache=True)
def _width_range_numba(w):
    # selects and min/max, no early exit: the loop vectorises
    lo = np.inf
    hi = 0.0
    n_bad = 0
    for i in range(w.size):
        a = abs(w[i])
        n_bad += not (a < np.inf)
        hi = max(hi, a)
        lo = min(lo, a if a > 0 else np.inf)
    if n_bad:
        return False, np.inf, 0.0
    return True, lo, hi


def v2_drive(P, v_write: float, backend: str = "numba", out=None):
    """Per-device ``(voltage, duration, pulse count)`` of signed widths ``P`` on passive cells.

    A selected device sees ``+v_write`` for a positive width and ``-v_write`` for a
    negative one, for ``|P|`` seconds; a zero width is no pulse (0 V, 0 s, count 0).
    ``out``: optional (voltage, duration) arrays to fill (numba backend); the counts
    are always a new array, since reports and histories keep them, of one byte per
    device (a fresh int64 array of the EP network's size costs 1,600 page faults).
    """
    P = np.ascontiguousarray(P, dtype=float)
    if backend == "numba":
        v, dt = out if out is not None else (np.empty(P.shape), np.empty(P.shape))
        n = np.empty(P.shape, np.uint8)
        _v2_drive_numba(P.reshape(-1), float(v_write), v.reshape(-1), dt.reshape(-1), n.reshape(-1))
        return v, dt, n
    if backend == "numpy":
        return np.sign(P) * v_write, np.abs(P), (P != 0).astype(np.uint8)
    raise ValueError(f"backend must be 'numba' or 'numpy'; got {backend!r}")


@nb.njit(cache=True)
def _v2_drive_numba(P, v_write, v, dt, n):
    # random signs: selects rather than branches, so the loop vectorises
    for i in range(P.size):
        p = P[i]
        on = p != 0
        v[i] = math.copysign(v_write, p) if on else 0.0
        dt[i] = abs(p)
        n[i] = on


@nb.njit(cache=True)
def interleave_pairs(signed, out):
    """``out[:, 0::2] = signed; out[:, 1::2] = -signed`` in one pass, without the negated temporary
    (the per-device widths of differential pairs; ``signed`` (M, N) C-contiguous, ``out`` (M, 2N))."""
    M, N = signed.shape
    for i in range(M):
        for j in range(N):
            out[i, 2 * j] = signed[i, j]
            out[i, 2 * j + 1] = -signed[i, j]
