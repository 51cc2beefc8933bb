"""Kernels of the structured solver for a crossbar with resistive wires.

The nodal system of a tile has two layers of M×N nodes: the row-wire node and
the column-wire node at each crosspoint. Along a row (or column) the nodes form
a chain of wire segments, so each line alone is a tridiagonal system; the two
layers are coupled only through the cells, one conductance ``D`` per crosspoint.

Packed line conductances (S), shape (M, N):

- ``g_row[i, j]``, j >= 1: segment between row nodes (i, j-1) and (i, j);
  ``g_row[i, 0]``: the row's end conductance (first segment in series with
  whatever is at the terminal; 0 for a floating line).
- ``g_col[i, j]``, i <= M-2: segment between column nodes (i, j) and (i+1, j);
  ``g_col[M-1, j]``: the column's end conductance.

The solver eliminates the row layer exactly, ``R = (T_r + D)^-1 (b_R + D C)``,
and runs conjugate gradients on the Schur complement of the column layer,
``S = T_c + D - D (T_r + D)^-1 D`` (symmetric positive definite), preconditioned
by the column-line solve ``(T_c + D)^-1``. Each iteration costs one row-line and
one column-line tridiagonal sweep. Batches of K right-hand sides share the
factorisations; ``D`` is either shared (shape (1, M, N)) or per right-hand side
(shape (K, M, N), as in Newton steps of a non-linear solve).

Every numba kernel has a plain-numpy twin with the same arguments
(``*_numpy``); ``tests/test_linesolve.py`` checks that they agree.
"""
from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

_COL_BLOCK = 64  # columns swept together: long enough to vectorise, short enough to split over threads


# ------------------------------------------------------------------ factorisations

@nb.njit(parallel=True, cache=True)
def factor_rows_numba(g_row, D, e, inv):
    """Thomas factorisation of every row line of ``T_r + D``.

    ``inv[k, i, j] = 1 / pivot`` and ``e[k, i, j] = g_row[i, j+1] * inv[k, i, j]``.
    """
    Kd, M, N = D.shape
    for ki in prange(Kd * M):
        k = ki // M
        i = ki % M
        e_prev = 0.0
        for j in range(N):
            g_left = g_row[i, j]
            g_right = g_row[i, j + 1] if j + 1 < N else 0.0
            piv = g_left + g_right + D[k, i, j]
            if j > 0:
                piv -= g_left * e_prev
            iv = 1.0 / piv
            inv[k, i, j] = iv
            e_prev = g_right * iv
            e[k, i, j] = e_prev


def factor_rows_numpy(g_row, D, e, inv):
    Kd, M, N = D.shape
    e_prev = np.zeros((Kd, M))
    for j in range(N):
        g_left = g_row[:, j]
        g_right = g_row[:, j + 1] if j + 1 < N else 0.0
        piv = g_left + g_right + D[:, :, j]
        if j > 0:
            piv = piv - g_left * e_prev
        inv[:, :, j] = 1.0 / piv
        e_prev = g_right * inv[:, :, j]
        e[:, :, j] = e_prev


@nb.njit(parallel=True, cache=True)
def factor_cols_numba(g_col, D, e, inv):
    """Thomas factorisation of every column line of ``T_c + D`` (swept from row 0 down)."""
    Kd, M, N = D.shape
    nb_ = (N + _COL_BLOCK - 1) // _COL_BLOCK
    for kb in prange(Kd * nb_):
        k = kb // nb_
        j0 = (kb % nb_) * _COL_BLOCK
        j1 = min(N, j0 + _COL_BLOCK)
        for i in range(M):
            for j in range(j0, j1):
                piv = g_col[i, j] + D[k, i, j]
                if i > 0:
                    g_up = g_col[i - 1, j]
                    piv += g_up - g_up * e[k, i - 1, j]
                iv = 1.0 / piv
                inv[k, i, j] = iv
                e[k, i, j] = (g_col[i, j] * iv) if i + 1 < M else 0.0


def factor_cols_numpy(g_col, D, e, inv):
    Kd, M, N = D.shape
    for i in range(M):
        piv = g_col[i] + D[:, i]
        if i > 0:
            piv = piv + g_col[i - 1] - g_col[i - 1] * e[:, i - 1]
        inv[:, i] = 1.0 / piv
        e[:, i] = g_col[i] * inv[:, i] if i + 1 < M else 0.0


# ------------------------------------------------------------------ line solves

@nb.njit(parallel=True, cache=True)
def solve_rows_numba(g_row, e, inv, rhs, scale, out):
    """``out = (T_r + D)^-1 (scale * rhs)`` line by line; ``scale`` is D or ones."""
    K, M, N = rhs.shape
    Kd = e.shape[0]
    Ks = scale.shape[0]
    for ki in prange(K * M):
        k = ki // M
        i = ki % M
        kd = k if Kd > 1 else 0
        ks = k if Ks > 1 else 0
        y = 0.0
        for j in range(N):
            y = (scale[ks, i, j] * rhs[k, i, j] + g_row[i, j] * y) * inv[kd, i, j] if j > 0 \
                else scale[ks, i, 0] * rhs[k, i, 0] * inv[kd, i, 0]
            out[k, i, j] = y
        x = out[k, i, N - 1]
        for j in range(N - 2, -1, -1):
            x = out[k, i, j] + e[kd, i, j] * x
            out[k, i, j] = x


def solve_rows_numpy(g_row, e, inv, rhs, scale, out):
    K, M, N = rhs.shape
    r = scale * rhs
    y = np.zeros((K, M))
    for j in range(N):
        y = (r[:, :, j] + (g_row[:, j] * y if j > 0 else 0.0)) * inv[:, :, j]
        out[:, :, j] = y
    for j in range(N - 2, -1, -1):
        out[:, :, j] = out[:, :, j] + e[:, :, j] * out[:, :, j + 1]


@nb.njit(parallel=True, cache=True)
def solve_cols_numba(g_col, e, inv, rhs, out):
    """``out = (T_c + D)^-1 rhs`` for every column line."""
    K, M, N = rhs.shape
    Kd = e.shape[0]
    nb_ = (N + _COL_BLOCK - 1) // _COL_BLOCK
    for kb in prange(K * nb_):
        k = kb // nb_
        kd = k if Kd > 1 else 0
        j0 = (kb % nb_) * _COL_BLOCK
        j1 = min(N, j0 + _COL_BLOCK)
        for j in range(j0, j1):
            out[k, 0, j] = rhs[k, 0, j] * inv[kd, 0, j]
        for i in range(1, M):
            for j in range(j0, j1):
                out[k, i, j] = (rhs[k, i, j] + g_col[i - 1, j] * out[k, i - 1, j]) * inv[kd, i, j]
        for i in range(M - 2, -1, -1):
            for j in range(j0, j1):
                out[k, i, j] += e[kd, i, j] * out[k, i + 1, j]


def solve_cols_numpy(g_col, e, inv, rhs, out):
    K, M, N = rhs.shape
    out[:, 0] = rhs[:, 0] * inv[:, 0]
    for i in range(1, M):
        out[:, i] = (rhs[:, i] + g_col[i - 1] * out[:, i - 1]) * inv[:, i]
    for i in range(M - 2, -1, -1):
        out[:, i] = out[:, i] + e[:, i] * out[:, i + 1]


# ------------------------------------------------------------------ operators

@nb.njit(parallel=True, cache=True)
def col_operator_numba(g_col, D, p, w, q):
    """``q = (T_c + D) p - D w``: the column-layer stencil with the row layer at ``w``."""
    K, M, N = p.shape
    Kd = D.shape[0]
    nb_ = (N + _COL_BLOCK - 1) // _COL_BLOCK
    for kb in prange(K * nb_):
        k = kb // nb_
        kd = k if Kd > 1 else 0
        j0 = (kb % nb_) * _COL_BLOCK
        j1 = min(N, j0 + _COL_BLOCK)
        for i in range(M):
            for j in range(j0, j1):
                pc = p[k, i, j]
                v = g_col[i, j] * pc + D[kd, i, j] * (pc - w[k, i, j])
                if i + 1 < M:
                    v -= g_col[i, j] * p[k, i + 1, j]
                if i > 0:
                    v += g_col[i - 1, j] * (pc - p[k, i - 1, j])
                q[k, i, j] = v


def col_operator_numpy(g_col, D, p, w, q):
    v = g_col * p + D * (p - w)
    v[:, :-1] -= g_col[:-1] * p[:, 1:]
    v[:, 1:] += g_col[:-1] * (p[:, 1:] - p[:, :-1])
    q[:] = v


@nb.njit(parallel=True, cache=True)
def row_operator_numba(g_row, D, r, c, out):
    """``out = (T_r + D) r - D c``: the row-layer stencil with the column layer at ``c``."""
    K, M, N = r.shape
    Kd = D.shape[0]
    for ki in prange(K * M):
        k = ki // M
        i = ki % M
        kd = k if Kd > 1 else 0
        for j in range(N):
            rc = r[k, i, j]
            v = g_row[i, j] * rc + D[kd, i, j] * (rc - c[k, i, j])
            if j > 0:
                v -= g_row[i, j] * r[k, i, j - 1]
            if j + 1 < N:
                v += g_row[i, j + 1] * (rc - r[k, i, j + 1])
            out[k, i, j] = v


def row_operator_numpy(g_row, D, r, c, out):
    v = g_row * r + D * (r - c)
    v[:, :, 1:] -= g_row[:, 1:] * r[:, :, :-1]
    v[:, :, :-1] += g_row[:, 1:] * (r[:, :, :-1] - r[:, :, 1:])
    out[:] = v


# ------------------------------------------------------------------ fused CG steps
# Each CG iteration streams a handful of (K, M, N) arrays; the steps below fuse
# the vector updates with the inner products they feed, and parallelise over
# (right-hand side, line) pairs so that batches and single solves both use all
# threads. Inner products are summed per line first (``partial``), then per
# right-hand side, which keeps the result independent of the thread count.

@nb.njit(parallel=True, cache=True)
def line_dot_numba(a, b, partial):
    """``partial[k, i]`` sums of ``a*b`` along each row line."""
    K, M, N = a.shape
    for ki in prange(K * M):
        k = ki // M
        i = ki % M
        s = 0.0
        for j in range(N):
            s += a[k, i, j] * b[k, i, j]
        partial[k, i] = s


def line_dot_numpy(a, b, partial):
    partial[:] = (a * b).sum(axis=2)


@nb.njit(cache=True)
def schur_apply_numba(g_row, g_col, D, e_r, inv_r, p, w, q, partial):
    """``q = S p`` (``w`` = row layer response) and ``partial[k, b]`` sums of ``p*q``."""
    solve_rows_numba(g_row, e_r, inv_r, p, D, w)
    col_operator_numba(g_col, D, p, w, q)
    line_dot_numba(p, q, partial)


def schur_apply_numpy(g_row, g_col, D, e_r, inv_r, p, w, q, partial):
    solve_rows_numpy(g_row, e_r, inv_r, p, D, w)
    col_operator_numpy(g_col, D, p, w, q)
    line_dot_numpy(p, q, partial)


@nb.njit(parallel=True, cache=True)
def update_numba(alpha, p, q, x, r, partial):
    """``x += alpha p``, ``r -= alpha q`` and ``partial[k, i]`` sums of ``r*r``."""
    K, M, N = x.shape
    for ki in prange(K * M):
        k = ki // M
        i = ki % M
        a = alpha[k]
        s = 0.0
        for j in range(N):
            x[k, i, j] += a * p[k, i, j]
            rv = r[k, i, j] - a * q[k, i, j]
            r[k, i, j] = rv
            s += rv * rv
        partial[k, i] = s


def update_numpy(alpha, p, q, x, r, partial):
    x += alpha[:, None, None] * p
    r -= alpha[:, None, None] * q
    partial[:] = (r * r).sum(axis=2)


@nb.njit(cache=True)
def precondition_numba(g_col, e_c, inv_c, r, z, partial):
    """``z = (T_c + D)^-1 r`` and ``partial[k, i]`` sums of ``r*z``."""
    solve_cols_numba(g_col, e_c, inv_c, r, z)
    line_dot_numba(r, z, partial)


def precondition_numpy(g_col, e_c, inv_c, r, z, partial):
    solve_cols_numpy(g_col, e_c, inv_c, r, z)
    line_dot_numpy(r, z, partial)


@nb.njit(parallel=True, cache=True)
def xpby_numba(z, beta, p):
    """``p = z + beta p`` per right-hand side."""
    K, M, N = p.shape
    for ki in prange(K * M):
        k = ki // M
        i = ki % M
        b = beta[k]
        for j in range(N):
            p[k, i, j] = z[k, i, j] + b * p[k, i, j]


def xpby_numpy(z, beta, p):
    p[:] = z + beta[:, None, None] * p


KERNELS = {
    "numba": dict(factor_rows=factor_rows_numba, factor_cols=factor_cols_numba,
                  solve_rows=solve_rows_numba, solve_cols=solve_cols_numba,
                  col_operator=col_operator_numba, row_operator=row_operator_numba,
                  schur_apply=schur_apply_numba, update=update_numba, precondition=precondition_numba,
                  xpby=xpby_numba, line_dot=line_dot_numba),
    "numpy": dict(factor_rows=factor_rows_numpy, factor_cols=factor_cols_numpy,
                  solve_rows=solve_rows_numpy, solve_cols=solve_cols_numpy,
                  col_operator=col_operator_numpy, row_operator=row_operator_numpy,
                  schur_apply=schur_apply_numpy, update=update_numpy, precondition=precondition_numpy,
                  xpby=xpby_numpy, line_dot=line_dot_numpy),
}
