"""C-EP and C-VF's nudged phase in floating point, with the moving weights kept as low-rank factors.

In continual EP the weights move at every nudged step by outer products of
activities (``lr / (beta B)`` times a batch sum of rank-one terms), and the
next step reads through the moved weights. Written out, that is K updates of
every full matrix per mini-batch, six times the cost of plain EP for the
thesis' C-EP-1h. Here a tile's change since the free phase is kept as two
thin factors, ``dW = Lf^T Rf`` (m rows each, m a multiple of the batch size),
and a read through ``W + dW`` is ``A W + (A Lf^T) Rf``: products of the
batch with m-row factors instead of updates of the whole matrix. The change is
written into the matrices once, at the end.

For the EP rule the increments telescope, so the factors never grow:
``dW_n(t) = c (P_n(t) - P_n(0))`` with ``P_n(t) = A_n(t)^T A_{n+1}(t)``. For the
VF rule every step appends its 'pre x post change' terms (except on the
first tile, whose 'pre' is the clamped input: those telescope as well); a tile
whose factors would outgrow its smaller side (the 10-column output tile of
C-VF-1h: 600 rows after 15 steps) is cheaper as a dense change, updated at
every step, and is kept that way. The result equals
:meth:`learning.ep_software.SoftwareEP` with ``lowrank=False`` (which updates
the matrices step by step) to rounding; tests/test_ep_continual_software.py
checks that.
"""
from __future__ import annotations

import numpy as np

from learning.ep_software import (LayeredNet, Settled, advance, gated, input_drive, preactivations, split_nudge,
                                  tile_reads)


def continual_nudged_phase(net: LayeredNet, x, y, free: Settled, beta: float, K: int, lrs, *, rule="ep",
                           mode="discrete", eps=1.0, nudge_at="current", dense: bool | None = None,
                           frozen=(), rho_prime=False) -> Settled:
    """Run K nudged steps from ``free`` with the weights moving at each; apply the moves to ``net``.

    ``lrs``: one learning rate per weight matrix (a backward matrix shares its
    forward matrix's). ``dense``: keep the VF changes of tiles n >= 1 dense
    (True) or as factors (False); None chooses by size. ``nudge_at``: as in
    :func:`learning.ep_software.step`. ``frozen``: tiles whose bias row (the
    lower layer's bias unit) must not move. ``rho_prime``: VF changes times the
    activation's slope at the tile's read (:func:`learning.ep_software.vf_increments`).
    Returns the last nudged state.
    """
    L, B = net.depth, len(x)
    coef = [lr / (beta * B) for lr in lrs]

    def biased(st):
        return [net.with_bias(n, st.a[n]) for n in range(L + 1)]

    def pre(n, a):
        """A tile's pre-side factor: a frozen bias row gets a zero bias column, so it never moves."""
        if n not in frozen:
            return a
        a = a.copy()
        a[:, -1] = 0.0
        return a

    a0 = biased(free)
    fwd = [_no_factors(a0, n) for n in range(L)]     # dW_n = Lf^T Rf, coefficients folded into Rf
    bwd = [_no_factors(a0, n) for n in range(L)]     # dback_n (untied nets only)
    # VF appends 2B rows per step on tiles n >= 1; past the tile's smaller side a dense change is cheaper
    dense = [rule == "vf" and n >= 1 and (2 * K * B >= min(net.W[n].shape) if dense is None else dense)
             for n in range(L)]
    for n in range(L):
        if dense[n]:
            fwd[n] = np.zeros_like(net.W[n])
            bwd[n] = np.zeros_like(net.W[n]) if net.back is not None else fwd[n]
    drive0 = input_drive(net, x)                 # through the free phase's W_0
    into_u, onto_a = split_nudge((y, beta), nudge_at)
    prev, a_prev = free, a0
    moved0 = np.zeros_like(a0[1])               # rho_prime: the first tile's gated changes, summed over steps
    for _ in range(K):
        u = preactivations(net, prev.a, drive0, nudge=into_u)
        extra_f, extra_b = [None] * L, [None] * L    # the reads' parts through the moved weights
        for n in range(L):
            if dense[n]:
                extra_f[n] = a_prev[n] @ fwd[n][:, :net.sizes[n + 1]]
                extra_b[n] = a_prev[n + 1] @ bwd[n][:net.sizes[n], :].T
            else:
                lf, rf = fwd[n]
                extra_f[n] = (a_prev[n] @ lf.T) @ rf[:, :net.sizes[n + 1]]
                if n >= 1:
                    lb, rb = fwd[n] if net.back is None else bwd[n]
                    extra_b[n] = (a_prev[n + 1] @ rb.T) @ lb[:, :net.sizes[n]]
            u[n + 1] += extra_f[n]
            if extra_b[n] is not None:
                u[n] += extra_b[n]
        gate_f, gate_b = tile_reads(net, prev.a, extra_f, extra_b, drive0) if rho_prime else ([None] * L, [None] * L)
        cur = advance(net, prev, u, mode=mode, eps=eps, nudge=onto_a)
        a_cur = biased(cur)
        for n in range(L):
            c = coef[n]
            if rule == "ep":
                fwd[n] = (pre(n, np.vstack([a_cur[n], a0[n]])), np.vstack([c * a_cur[n + 1], -c * a0[n + 1]]))
                continue
            if n == 0:      # the clamped input never changes: the first tile's VF change stays x^T (sum)
                if rho_prime:
                    moved0 += gated(net, 1, a_cur[1] - a_prev[1], gate_f[0])
                    fwd[0] = (pre(0, a0[0]), c * moved0)
                else:       # and without the slope the sum telescopes
                    fwd[0] = (pre(0, a0[0]), c * (a_cur[1] - a0[1]))
                continue
            term_f = (pre(n, a_prev[n]), c * gated(net, n + 1, a_cur[n + 1] - a_prev[n + 1], gate_f[n]))
            term = (gated(net, n, a_cur[n] - a_prev[n], gate_b[n]), c * a_prev[n + 1])
            if dense[n]:                # bwd[n] is fwd[n] itself on a tied net
                fwd[n] += term_f[0].T @ term_f[1]
                bwd[n] += term[0].T @ term[1]
                continue
            fwd[n] = _append(fwd[n], *term_f)
            if net.back is None:
                fwd[n] = _append(fwd[n], *term)
            else:
                bwd[n] = _append(bwd[n], *term)
        prev, a_prev = cur, a_cur
    for n in range(L):
        if dense[n]:
            net.W[n] += fwd[n]
            if net.back is not None:
                net.back[n] += bwd[n]
            continue
        net.W[n] += fwd[n][0].T @ fwd[n][1]
        if net.back is not None and n >= 1:
            net.back[n] += bwd[n][0].T @ bwd[n][1]
    return prev


def _no_factors(a0, n):
    """Zero-row factors of tile n (a change of zero), in the activities' precision."""
    return np.zeros((0, a0[n].shape[1]), a0[n].dtype), np.zeros((0, a0[n + 1].shape[1]), a0[n + 1].dtype)


def _append(factors, left, right):
    return np.vstack([factors[0], left]), np.vstack([factors[1], right])
