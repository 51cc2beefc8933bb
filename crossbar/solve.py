"""DC solve of a crossbar tile: node voltages and branch currents for a batch of drives.

Three paths, chosen by the circuit:

- **ideal wires** (every segment resistance 0): each line is one node. When every
  line end is held (ideal drivers and virtual grounds) the column currents are
  the matrix product ``V G`` exactly; otherwise the few line voltages come from a
  dense nodal solve (or Newton iterations for non-linear cells).
- **resistive wires, linear cells**: the structured Schur-complement conjugate
  gradient of :mod:`crossbar.linesolve`, warm-startable from a previous solution.
- **resistive wires, non-linear cells** (selectors, sinh I–V): damped Newton
  iterations, each linear step solved by the same structured solver.

The circuit is checked first: a non-finite input, a negative resistance, or a
set of lines with no conductive path to any terminal raises an error that names
the parameter or the nodes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import linesolve
from .cells import cell_current, is_linear, linear_conductance
from .errors import ConvergenceError, FloatingNodeError, ParameterError
from .solution import Solution


@dataclass(frozen=True)
class SolverOptions:
    """Tolerances of the iterative solves."""

    tol: float = 1e-12
    """Relative residual at which conjugate gradients stop."""
    maxiter: int = 5000
    """Most conjugate-gradient iterations per linear solve."""
    newton_tol: float = 1e-12
    """Newton stops when the largest node-voltage update is below newton_tol * (1 V + |V|)."""
    newton_maxiter: int = 200
    """Most Newton steps."""
    dv_max: float = 0.1
    """Largest change of any cell voltage in one Newton step, V (damping)."""


# ------------------------------------------------------------------ input checks

def _end_conductance(name, r_first, g_ext):
    """Conductance from a Norton source through the first wire segment (0: floating)."""
    g_ext = np.asarray(g_ext, dtype=float)
    if np.any(np.isnan(g_ext)) or np.any(g_ext < 0):
        raise ParameterError(f"{name}: termination conductances must be >= 0 (or inf); got {g_ext}")
    with np.errstate(divide="ignore"):
        r_ext = np.where(np.isinf(g_ext), 0.0, 1.0 / g_ext)
        return np.where(g_ext == 0, 0.0, 1.0 / (r_first + r_ext))


def check_floating(g_cell, row_g, col_g):
    """Raise FloatingNodeError if some lines have no conductive path to a terminal.

    Lines are graph vertices (rows 0..M-1, columns M..M+N-1) joined by every cell
    that conducts; a component is anchored when one of its lines has a termination.
    """
    M, N = g_cell.shape
    if np.all(row_g > 0) and np.all(col_g > 0):
        return   # every line is terminated: nothing can float
    ii, jj = np.nonzero(g_cell > 0)
    graph = coo_matrix((np.ones(ii.size), (ii, M + jj)), shape=(M + N, M + N))
    n_comp, label = connected_components(graph, directed=False)
    anchored = np.zeros(n_comp, bool)
    anchored[label[:M][row_g > 0]] = True
    anchored[label[M:][col_g > 0]] = True
    floating = ~anchored[label]
    if floating.any():
        rows = np.flatnonzero(floating[:M])
        cols = np.flatnonzero(floating[M:])
        names = [f"row {i} (nodes r{i}_0..r{i}_{N - 1})" for i in rows[:5]] + \
                [f"column {j} (nodes c0_{j}..c{M - 1}_{j})" for j in cols[:5]]
        more = rows.size + cols.size - len(names)
        raise FloatingNodeError(
            "circuit is singular: no conductive path to any driven or sensed terminal from "
            + ", ".join(names) + (f" and {more} more lines" if more > 0 else "")
            + " (connect a driver or sense circuit, or give the cells a non-zero conductance)",
            nodes=[f"r{i}_0" for i in rows] + [f"c0_{j}" for j in cols])


def _check_inputs(g, r_row, r_col, row_v, col_v, row_g, col_g):
    for name, a in (("conductance", g), ("r_row_segment", r_row), ("r_col_segment", r_col)):
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(x) for x in np.argwhere(bad)[0])
            raise ParameterError(f"{name}{list(idx)} = {a[idx]} is not finite")
    if np.any(g < 0):
        idx = tuple(int(x) for x in np.argwhere(g < 0)[0])
        raise ParameterError(f"conductance{list(idx)} = {g[idx]:g} S is outside the allowed range [0, inf) S")
    for name, r in (("r_row_segment", r_row), ("r_col_segment", r_col)):
        if np.any(r < 0):
            idx = tuple(int(x) for x in np.argwhere(r < 0)[0])
            raise ParameterError(f"{name}{list(idx)} = {r[idx]:g} ohm is outside the allowed range [0, inf) ohm")
    ideal = not (r_row.any() or r_col.any())
    if not ideal and (np.any(r_row == 0) or np.any(r_col == 0)):
        name, r = ("r_row_segment", r_row) if np.any(r_row == 0) else ("r_col_segment", r_col)
        idx = tuple(int(x) for x in np.argwhere(r == 0)[0])
        raise ParameterError(
            f"{name}{list(idx)} = 0 ohm while other segments are resistive: wire segments must be all 0 "
            "(ideal wires) or all in (0, inf) ohm")
    for name, v, gg in (("row drive voltage", row_v, row_g), ("column drive voltage", col_v, col_g)):
        used = v[:, gg > 0]
        if not np.all(np.isfinite(used)):
            k, i = (int(x) for x in np.argwhere(~np.isfinite(used))[0])
            raise ParameterError(f"{name} [{k}, line {np.flatnonzero(gg > 0)[i]}] = {used[k, i]} is not finite")
    return ideal


# ------------------------------------------------------------------ public entry point

def solve_crossbar(g, access, iv, r_row, r_col, row_g_ext, row_v_ext, col_g_ext, col_v_ext, *,
                   x0: Solution | None = None, options: SolverOptions = SolverOptions(),
                   backend: str = "numba") -> Solution:
    """Solve the DC operating point of a tile for K drives.

    Parameters
    ----------
    g : (M, N) S
        Memristor conductances of the physical array.
    access, iv
        Access device and memristor I–V law (:mod:`crossbar.cells`).
    r_row, r_col : (M, N) ohm
        Wire segment resistances: ``r_row[i, j]`` leads into crosspoint (i, j) from
        the left (j = 0: from the terminal); ``r_col[i, j]`` leaves (i, j) downwards
        (i = M-1: to the terminal). All zero means ideal wires.
    row_g_ext, col_g_ext : (M,), (N,) S
        Norton conductance of what is attached at each line terminal (inf: held, 0: floating).
    row_v_ext, col_v_ext : (K, M), (K, N) V
        Norton source voltages (ignored where the line floats).
    x0 : Solution, optional
        A previous solution of the same shape, used as the starting point.
    """
    g = np.asarray(g, dtype=float)
    M, N = g.shape
    r_row = np.broadcast_to(np.asarray(r_row, dtype=float), (M, N))
    r_col = np.broadcast_to(np.asarray(r_col, dtype=float), (M, N))
    row_g_ext = np.broadcast_to(np.asarray(row_g_ext, dtype=float), (M,))
    col_g_ext = np.broadcast_to(np.asarray(col_g_ext, dtype=float), (N,))
    row_v_ext = np.atleast_2d(np.asarray(row_v_ext, dtype=float))
    col_v_ext = np.atleast_2d(np.asarray(col_v_ext, dtype=float))
    K = max(row_v_ext.shape[0], col_v_ext.shape[0])
    row_v_ext = np.broadcast_to(row_v_ext, (K, M))
    col_v_ext = np.broadcast_to(col_v_ext, (K, N))
    ideal = _check_inputs(g, r_row, r_col, row_v_ext, col_v_ext, row_g_ext, col_g_ext)
    if ideal:
        row_g, col_g = row_g_ext.copy(), col_g_ext.copy()
    else:
        row_g = _end_conductance("row termination", r_row[:, 0], row_g_ext)
        col_g = _end_conductance("column termination", r_col[-1, :], col_g_ext)
    check_floating(g, row_g, col_g)
    row_v = np.where(row_g > 0, row_v_ext, np.nan)
    col_v = np.where(col_g > 0, col_v_ext, np.nan)
    if ideal:
        from .ideal import solve_ideal
        return solve_ideal(g, access, iv, row_g, row_v, col_g, col_v, options=options, backend=backend)
    return _solve_resistive(g, access, iv, r_row, r_col, row_g, row_v, col_g, col_v,
                            x0=x0, options=options, backend=backend)


# ------------------------------------------------------------------ resistive wires

def packed_line_conductances(r_row, r_col, row_g, col_g):
    """``g_row``/``g_col`` in the packed layout of :mod:`crossbar.linesolve`."""
    g_row = 1.0 / r_row
    g_row[:, 0] = row_g
    g_col = 1.0 / r_col
    g_col[-1, :] = col_g
    return np.ascontiguousarray(g_row), np.ascontiguousarray(g_col)


class LineSystem:
    """The structured nodal system ``[[T_r+D, -D], [-D, T_c+D]]`` with its line factorisations.

    Factorised once per conductance state ``D`` (shape (1, M, N), shared by all
    right-hand sides, or (K, M, N)); :meth:`solve` then runs preconditioned
    conjugate gradients on the column-layer Schur complement for any batch.
    """

    def __init__(self, g_row, g_col, D, backend="numba"):
        self.k = linesolve.KERNELS[backend]
        self.g_row, self.g_col, self.D = g_row, g_col, D
        Kd, M, N = D.shape
        self.e_r, self.inv_r = np.empty((Kd, M, N)), np.empty((Kd, M, N))
        self.e_c, self.inv_c = np.empty((Kd, M, N)), np.empty((Kd, M, N))
        self.k["factor_rows"](g_row, D, self.e_r, self.inv_r)
        self.k["factor_cols"](g_col, D, self.e_c, self.inv_c)
        self.ones = np.ones((1, M, N))

    def solve(self, b_row, b_col, *, x0_col=None, options=SolverOptions()):
        """Return ``(R, C, iterations)`` for right-hand sides of shape (K, M, N)."""
        k_, g_row, g_col, D = self.k, self.g_row, self.g_col, self.D
        e_r, inv_r, e_c, inv_c, ones = self.e_r, self.inv_r, self.e_c, self.inv_c, self.ones
        K, M, N = b_row.shape
        w = np.empty((K, M, N))
        k_["solve_rows"](g_row, e_r, inv_r, b_row, ones, w)
        rhs = b_col + D * w                       # Schur right-hand side
        q = np.empty((K, M, N))
        part = np.empty((K, M))               # per-line partial inner products
        if x0_col is None:
            C = np.zeros((K, M, N))
            r = rhs.copy()
        else:
            C = np.array(x0_col, dtype=float, copy=True)
            k_["schur_apply"](g_row, g_col, D, e_r, inv_r, C, w, q, part)
            r = rhs - q
        k_["line_dot"](rhs, rhs, part)
        bnorm = np.sqrt(part.sum(axis=1))
        target = options.tol * np.where(bnorm > 0, bnorm, 1.0)
        k_["line_dot"](r, r, part)
        rnorm = np.sqrt(part.sum(axis=1))
        z = np.empty((K, M, N))
        it = 0
        if np.any(rnorm > target):
            k_["precondition"](g_col, e_c, inv_c, r, z, part)
            rz = part.sum(axis=1)
            p = z.copy()
            for it in range(1, options.maxiter + 1):
                k_["schur_apply"](g_row, g_col, D, e_r, inv_r, p, w, q, part)   # q = S p
                pq = part.sum(axis=1)
                alpha = np.divide(rz, pq, out=np.zeros(K), where=pq != 0)
                k_["update"](alpha, p, q, C, r, part)
                rnorm = np.sqrt(part.sum(axis=1))
                if np.all(rnorm <= target):
                    break
                k_["precondition"](g_col, e_c, inv_c, r, z, part)
                rz_new = part.sum(axis=1)
                beta = np.divide(rz_new, rz, out=np.zeros(K), where=rz != 0)
                rz = rz_new
                k_["xpby"](z, beta, p)
            else:
                raise ConvergenceError(
                    f"crossbar solve: conjugate gradients did not reach relative residual {options.tol:g} in "
                    f"{options.maxiter} iterations (reached {np.max(rnorm / np.where(bnorm > 0, bnorm, 1)):.3g})",
                    residual=float(np.max(rnorm)), iterations=options.maxiter)
        R = np.empty((K, M, N))
        k_["solve_rows"](g_row, e_r, inv_r, b_row + D * C, ones, R)
        return R, C, it


def pcg_lines(g_row, g_col, D, b_row, b_col, *, x0_col=None, options=SolverOptions(), backend="numba"):
    """Solve ``[[T_r+D, -D], [-D, T_c+D]] [R; C] = [b_row; b_col]``; returns ``(R, C, iterations)``."""
    return LineSystem(g_row, g_col, D, backend).solve(b_row, b_col, x0_col=x0_col, options=options)


_CACHE_ELEMENTS = 1 << 17   # ~1 MiB per CG vector


def _end_injection(K, M, N, row_g, row_v, col_g, col_v):
    b_row = np.zeros((K, M, N))
    b_col = np.zeros((K, M, N))
    b_row[:, :, 0] = np.where(row_g > 0, row_g * np.nan_to_num(row_v), 0.0)
    b_col[:, -1, :] = np.where(col_g > 0, col_g * np.nan_to_num(col_v), 0.0)
    return b_row, b_col


def _solve_resistive(g, access, iv, r_row, r_col, row_g, row_v, col_g, col_v, *, x0, options, backend):
    M, N = g.shape
    K = row_v.shape[0]
    g_row, g_col = packed_line_conductances(r_row, r_col, row_g, col_g)
    b_row, b_col = _end_injection(K, M, N, row_g, row_v, col_g, col_v)
    x0_col = x0.v_col if (x0 is not None and x0.v_col.shape == (K, M, N)) else None
    if is_linear(access, iv):
        D = linear_conductance(g, access)[None]
        R, C = np.empty((K, M, N)), np.empty((K, M, N))
        system = LineSystem(g_row, g_col, D, backend)
        its = 0
        # a chunk of right-hand sides small enough for its CG vectors to stay in cache
        step = max(1, _CACHE_ELEMENTS // (M * N))
        for k0 in range(0, K, step):
            sl = slice(k0, min(K, k0 + step))
            R[sl], C[sl], n = system.solve(b_row[sl], b_col[sl], options=options,
                                           x0_col=None if x0_col is None else x0_col[sl])
            its = max(its, n)
        i_cell = D * (R - C)
        steps = 0
    else:
        R, C, its, steps, i_cell = _newton_resistive(g, access, iv, g_row, g_col, b_row, b_col, x0,
                                                     options, backend)
    i_row_end = np.where(row_g > 0, row_g * (np.nan_to_num(row_v) - R[:, :, 0]), 0.0)
    i_col_end = np.where(col_g > 0, col_g * (C[:, -1, :] - np.nan_to_num(col_v)), 0.0)
    return Solution(v_row=R, v_col=C, i_cell_=i_cell, i_row_end=i_row_end, i_col_end=i_col_end,
                    row_end_v=row_v, col_end_v=col_v, row_end_g=row_g, col_end_g=col_g,
                    g_row=g_row, g_col=g_col, iterations=its, newton_steps=steps)


def _newton_resistive(g, access, iv, g_row, g_col, b_row, b_col, x0, options, backend):
    """Damped Newton on the full nodal system; each step is a structured linear solve."""
    k_ = linesolve.KERNELS[backend]
    K, M, N = b_row.shape
    zero_d = np.zeros((1, M, N))
    if x0 is not None and x0.v_row.shape == (K, M, N) and x0.g_row is not None:
        R, C = np.array(x0.v_row, dtype=float), np.array(x0.v_col, dtype=float)
        its = 0
    else:  # start from the linear circuit with the cells' zero-bias conductance
        _, d0 = cell_current(np.zeros((1, M, N)), g, access, iv, backend=backend)
        R, C, its = pcg_lines(g_row, g_col, d0, b_row, b_col, options=options, backend=backend)
    f_row = np.empty((K, M, N))
    f_col = np.empty((K, M, N))
    for step in range(1, options.newton_maxiter + 1):
        i_cell, d = cell_current(R - C, g, access, iv, backend=backend)
        k_["row_operator"](g_row, zero_d, R, C, f_row)   # wire currents leaving row nodes
        k_["col_operator"](g_col, zero_d, C, R, f_col)
        f_row += i_cell - b_row
        f_col -= i_cell + b_col
        dR, dC, n = pcg_lines(g_row, g_col, d, -f_row, -f_col, options=options, backend=backend)
        its += n
        dv = np.abs(dR - dC).max(axis=(1, 2))
        scale = np.minimum(1.0, options.dv_max / np.maximum(dv, 1e-300))[:, None, None]
        R += scale * dR
        C += scale * dC
        upd = max(np.abs(dR).max(), np.abs(dC).max())
        if np.all(scale == 1.0) and upd <= options.newton_tol * (1.0 + max(np.abs(R).max(), np.abs(C).max())):
            i_cell, _ = cell_current(R - C, g, access, iv, backend=backend)
            return R, C, its, step, i_cell
    raise ConvergenceError(f"crossbar solve: Newton did not converge in {options.newton_maxiter} steps "
                           f"(last update {upd:.3g} V)", residual=upd, iterations=options.newton_maxiter)
