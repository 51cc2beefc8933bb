"""An independent, deliberately plain nodal-analysis reference for crossbar tiles.

It knows nothing of the packed line layout or the Schur-complement solver: it
lists every element between named nodes (wire segments, terminations, and the
access device and memristor of each cell as two elements joined by an internal
node) and solves KCL with scipy (sparse direct solve when linear, scipy.optimize
root finding otherwise).
"""
from __future__ import annotations

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from crossbar.cells import ACCESS_DIODE, ACCESS_DIODE_PAIR, ACCESS_NONE, ACCESS_RESISTOR, IV_LINEAR


def _elements(tile, row_g_ext, row_v, col_g_ext, col_v):
    """Nodes and linear/non-linear elements of the tile for one right-hand side."""
    M, Np = tile.g.shape
    rr = np.broadcast_to(tile.wires.r_row_segment, (M, Np))
    rc = np.broadcast_to(tile.wires.r_col_segment, (M, Np))
    names = {}

    def node(n):
        return names.setdefault(n, len(names))
    res = []       # (a, b, conductance)
    fixed = {}     # node -> voltage
    inj = []       # (node, current into node)
    cells = []     # (a, b, g) non-linear memristor+access
    for i in range(M):
        for j in range(Np):
            node(f"r{i}_{j}"), node(f"c{i}_{j}")
    for i in range(M):   # row wires: terminal node rt{i}
        for j in range(1, Np):
            res.append((node(f"r{i}_{j-1}"), node(f"r{i}_{j}"), 1 / rr[i, j]))
        g, v = row_g_ext[i], row_v[i]
        if g == 0:
            continue
        t = node(f"rt{i}")
        res.append((t, node(f"r{i}_0"), 1 / rr[i, 0]))
        if np.isinf(g):
            fixed[t] = v
        else:
            res.append((t, -1, g))
            inj.append((t, g * v))
    for j in range(Np):
        for i in range(M - 1):
            res.append((node(f"c{i}_{j}"), node(f"c{i+1}_{j}"), 1 / rc[i, j]))
        g, v = col_g_ext[j], col_v[j]
        if g == 0:
            continue
        t = node(f"ct{j}")
        res.append((node(f"c{M-1}_{j}"), t, 1 / rc[M - 1, j]))
        if np.isinf(g):
            fixed[t] = v
        else:
            res.append((t, -1, g))
            inj.append((t, g * v))
    for i in range(M):
        for j in range(Np):
            cells.append((node(f"r{i}_{j}"), node(f"c{i}_{j}"), tile.g[i, j]))
    return names, res, fixed, inj, cells


def _linear_cell_g(tile, g):
    if tile.access.code == ACCESS_RESISTOR:
        return 1 / (1 / g + tile.access.r_on)
    return g


def solve_reference(tile, row_g_ext, row_v, col_g_ext, col_v, guess=None):
    """Node voltages {name: V} for one right-hand side.

    ``guess`` ({name: V}) seeds the non-linear root finder; the answer is accepted
    only when this module's own KCL equations hold to 1e-15 A.
    """
    names, res, fixed, inj, cells = _elements(tile, row_g_ext, row_v, col_g_ext, col_v)
    n = len(names)
    linear = tile.iv.code == IV_LINEAR and tile.access.code in (ACCESS_NONE, ACCESS_RESISTOR)
    if linear:
        res = res + [(a, b, _linear_cell_g(tile, g)) for a, b, g in cells]
        rows, cols, vals = [], [], []
        for a, b, g in res:
            for p, q, s in ((a, a, g), (b, b, g), (a, b, -g), (b, a, -g)):
                if p >= 0 and q >= 0:
                    rows.append(p), cols.append(q), vals.append(s)
        A = sp.csr_matrix((vals, (rows, cols)), shape=(n, n)).tolil()
        b = np.zeros(n)
        for t, cur in inj:
            b[t] += cur
        for t, v in fixed.items():
            A[t, :] = 0
            A[t, t] = 1
            b[t] = v
        x = sla.spsolve(A.tocsc(), b)
        return {k: x[i] for k, i in names.items()}
    return _solve_nonlinear(tile, names, res, fixed, inj, cells, guess)


def _access_current(access, w):
    if access.code == ACCESS_RESISTOR:
        return w / access.r_on
    i_s, nvt, gmin = access.params()

    def junction(x):   # SPICE level-1 diode: Shockley, with SPICE's reverse-bias form below -3 nVt
        if x >= -3 * nvt:
            return i_s * np.expm1(x / nvt) + gmin * x
        return -i_s * (1 + (3 * nvt / (np.e * x)) ** 3) + gmin * x
    i = junction(w)
    if access.code == ACCESS_DIODE_PAIR:
        i = i - junction(-w)
    return i


def _memristor_current(iv, g, u):
    return g * u if iv.code == IV_LINEAR else g * iv.v0 * np.sinh(u / iv.v0)


def _solve_nonlinear(tile, names, res, fixed, inj, cells, guess):
    n0 = len(names)
    has_access = tile.access.code != ACCESS_NONE
    n = n0 + (len(cells) if has_access else 0)
    fixed_idx = np.array(list(fixed.keys()), dtype=int)
    fixed_val = np.array(list(fixed.values()))

    @np.errstate(over="ignore")
    def kcl(x):
        x = x.copy()
        x[fixed_idx] = fixed_val
        f = np.zeros(n)
        for a, b, g in res:
            va = x[a] if a >= 0 else 0.0
            vb = x[b] if b >= 0 else 0.0
            f[a] += g * (va - vb) if a >= 0 else 0.0
            if b >= 0:
                f[b] -= g * (va - vb)
        for t, cur in inj:
            f[t] -= cur
        for k, (a, b, g) in enumerate(cells):
            if has_access:
                m = n0 + k   # internal node between access device and memristor
                ia = _access_current(tile.access, x[a] - x[m])
                im = _memristor_current(tile.iv, g, x[m] - x[b])
                f[a] += ia
                f[m] += im - ia
                f[b] -= im
            else:
                im = _memristor_current(tile.iv, g, x[a] - x[b])
                f[a] += im
                f[b] -= im
        f[fixed_idx] = x[fixed_idx] - fixed_val
        return f

    x0 = np.zeros(n)
    if guess is not None:
        for k, i in names.items():
            x0[i] = guess.get(k, 0.0)
        M, Np = tile.g.shape
        for k, (a, b, g) in enumerate(cells):   # internal node between access device and memristor
            if has_access:
                x0[n0 + k] = guess.get(f"m{k // Np}_{k % Np}", 0.5 * (x0[a] + x0[b]))
    x0[fixed_idx] = fixed_val
    sol = so.root(kcl, x0, method="hybr", options={"xtol": 1e-14, "maxfev": 200000})
    if not sol.success:
        sol = so.root(kcl, sol.x, method="lm", options={"xtol": 1e-15, "ftol": 1e-15, "maxiter": 200000})
    # KCL must hold to rounding: 1e-15 A per siemens of the stiffest element
    g_max = max([1.0] + [g for _, _, g in res])
    assert np.abs(kcl(sol.x)).max() < 1e-15 * g_max, np.abs(kcl(sol.x)).max()
    return {k: sol.x[i] for k, i in names.items()}
