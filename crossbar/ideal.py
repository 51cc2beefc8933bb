"""DC solve of a tile whose wires are ideal: each row and column is a single node.

When every line end is held (ideal drivers, virtual grounds) nothing is left
to solve: with linear cells the column currents are ``V G - U colsum(G)``, which
is exactly the matrix product ``V G`` for grounded columns. Otherwise the
voltages of the lines that are not held (behind a source resistance, a load, a
finite-gain TIA, or floating) come from a dense nodal solve of at most M + N
unknowns, with Newton iterations when the cells are non-linear.
"""
from __future__ import annotations

import numpy as np

from .cells import cell_current, is_linear, linear_conductance
from .errors import ConvergenceError
from .solution import Solution


def solve_ideal(g, access, iv, row_g, row_v, col_g, col_v, *, options, backend) -> Solution:
    M, N = g.shape
    K = row_v.shape[0]
    held_r = np.isinf(row_g)
    held_c = np.isinf(col_g)
    V = np.where(held_r, row_v, 0.0)
    U = np.where(held_c, col_v, 0.0)
    free_r = np.flatnonzero(~held_r)
    free_c = np.flatnonzero(~held_c)
    linear = is_linear(access, iv)
    steps = 0
    if linear:
        G = linear_conductance(g, access)

        def law(v_cell):
            return G * v_cell
        if free_r.size or free_c.size:
            V, U = _linear_free_lines(G, row_g, row_v, col_g, col_v, V, U, free_r, free_c)
        # current into each held column (out of the line) and out of each held row, by KCL;
        # a side that is all at 0 V contributes nothing, so its products are skipped
        col_sum = np.zeros((K, N))
        row_sum = np.zeros((K, M))
        if V.any():
            col_sum += V @ G
            row_sum += V * G.sum(axis=1)
        if U.any():
            col_sum -= U * G.sum(axis=0)
            row_sum -= U @ G.T
        i_cell = None
    else:
        def law(v_cell):
            return cell_current(v_cell, g, access, iv, backend=backend)[0]
        if free_r.size or free_c.size:
            V, U, steps = _newton_free_lines(g, access, iv, row_g, row_v, col_g, col_v, V, U,
                                             free_r, free_c, options, backend)
        i_cell = law(V[:, :, None] - U[:, None, :])
        col_sum = i_cell.sum(axis=1)
        row_sum = i_cell.sum(axis=2)
    g_r = np.where(held_r, 0.0, row_g)   # finite Norton conductances; held lines use KCL
    g_c = np.where(held_c, 0.0, col_g)
    i_row_end = np.where(held_r, row_sum, g_r * (np.nan_to_num(row_v) - V))
    i_col_end = np.where(held_c, col_sum, g_c * (U - np.nan_to_num(col_v)))
    return Solution(v_row=np.broadcast_to(V[:, :, None], (K, M, N)),
                    v_col=np.broadcast_to(U[:, None, :], (K, M, N)),
                    i_cell_=i_cell, i_row_end=i_row_end, i_col_end=i_col_end,
                    row_end_v=row_v, col_end_v=col_v, row_end_g=row_g, col_end_g=col_g,
                    cell_law=law, newton_steps=steps)


def _free_system(G, row_g, col_g, free_r, free_c):
    """Nodal matrix of the free lines (rows first) and the coupling to all lines."""
    nr = free_r.size
    n = nr + free_c.size
    A = np.zeros((n, n))
    gr = np.where(np.isinf(row_g), 0.0, row_g)
    gc = np.where(np.isinf(col_g), 0.0, col_g)
    A[np.arange(nr), np.arange(nr)] = gr[free_r] + G[free_r].sum(axis=1)
    A[nr + np.arange(free_c.size), nr + np.arange(free_c.size)] = gc[free_c] + G[:, free_c].sum(axis=0)
    A[:nr, nr:] = -G[np.ix_(free_r, free_c)]
    A[nr:, :nr] = -G[np.ix_(free_r, free_c)].T
    return A


def _linear_free_lines(G, row_g, row_v, col_g, col_v, V, U, free_r, free_c):
    nr = free_r.size
    gr = np.where(np.isinf(row_g), 0.0, row_g)
    gc = np.where(np.isinf(col_g), 0.0, col_g)
    # right-hand side: own source plus the held lines seen through the cells
    b_r = gr[free_r] * np.nan_to_num(row_v[:, free_r]) + U @ G[free_r].T
    b_c = gc[free_c] * np.nan_to_num(col_v[:, free_c]) + V @ G[:, free_c]
    if free_c.size == 0:
        V = V.copy()
        V[:, free_r] = b_r / (gr[free_r] + G[free_r].sum(axis=1))
        return V, U
    if nr == 0:
        U = U.copy()
        U[:, free_c] = b_c / (gc[free_c] + G[:, free_c].sum(axis=0))
        return V, U
    # held-line contributions above used V/U with free entries 0, so they are exact
    A = _free_system(G, row_g, col_g, free_r, free_c)
    x = np.linalg.solve(A, np.concatenate([b_r, b_c], axis=1).T).T
    V = V.copy()
    U = U.copy()
    V[:, free_r] = x[:, :nr]
    U[:, free_c] = x[:, nr:]
    return V, U


def _newton_free_lines(g, access, iv, row_g, row_v, col_g, col_v, V, U, free_r, free_c, options, backend):
    """Newton on the free line voltages with a dense Jacobian per right-hand side."""
    nr = free_r.size
    gr = np.where(np.isinf(row_g), 0.0, row_g)
    gc = np.where(np.isinf(col_g), 0.0, col_g)
    V = V.copy()
    U = U.copy()
    K = V.shape[0]
    n = nr + free_c.size
    for step in range(1, options.newton_maxiter + 1):
        i, d = cell_current(V[:, :, None] - U[:, None, :], g, access, iv, backend=backend)
        f_r = gr[free_r] * (V[:, free_r] - np.nan_to_num(row_v[:, free_r])) + i[:, free_r, :].sum(axis=2)
        f_c = gc[free_c] * (U[:, free_c] - np.nan_to_num(col_v[:, free_c])) - i[:, :, free_c].sum(axis=1)
        J = np.zeros((K, n, n))
        ar = np.arange(nr)
        ac = nr + np.arange(free_c.size)
        J[:, ar, ar] = gr[free_r] + d[:, free_r, :].sum(axis=2)
        J[:, ac, ac] = gc[free_c] + d[:, :, free_c].sum(axis=1)
        J[:, :nr, nr:] = -d[:, free_r][:, :, free_c]
        J[:, nr:, :nr] = -np.swapaxes(d[:, free_r][:, :, free_c], 1, 2)
        delta = -np.linalg.solve(J, np.concatenate([f_r, f_c], axis=1)[..., None])[..., 0]
        dv = np.abs(delta).max(axis=1)
        scale = np.minimum(1.0, options.dv_max / np.maximum(dv, 1e-300))[:, None]
        delta *= scale
        V[:, free_r] += delta[:, :nr]
        U[:, free_c] += delta[:, nr:]
        upd = np.abs(delta).max()
        if np.all(scale == 1.0) and upd <= options.newton_tol * (1.0 + max(np.abs(V).max(), np.abs(U).max())):
            return V, U, step
    raise ConvergenceError(f"ideal-wire crossbar solve: Newton did not converge in {options.newton_maxiter} steps",
                           residual=float(upd), iterations=options.newton_maxiter)
