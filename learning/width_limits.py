"""The drivers' limits on pulse widths, applied in one pass (the policies' hot loop).

A policy turns a statistic into requested widths and then quantises them, snaps
float fuzz onto the bounds, caps or rejects widths above the longest pulse and drops
those below the shortest (see :mod:`learning.updates` for the rules). Done with
whole-array numpy operations that is about fifteen passes and as many temporaries
over every weight, every mini-batch: on the EP network's 403,000 weights it cost as
much as the device update itself. ``limit_widths`` does the same arithmetic in one
numba pass; ``_numpy`` is the reference it is tested against (same operations in the
same order, so the results are bit-identical).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

FUZZ = 1e-9

# status codes of the kernels
OK, NOT_FINITE, OVER = 0, 1, 2


def limit_widths(values, *, scale: float, sign_only: bool, quantum: float | None, max_width: float,
                 dt_min: float, cap: bool, backend: str = "numba"):
    """Signed widths from ``values`` within the drivers' limits.

    The request is ``scale * values`` (``sign_only``: ``scale * sign(values)``).
    Returns ``(widths, status, n_nonzero, n_dropped, n_over)``: ``status`` is OK,
    NOT_FINITE (a value is NaN or inf) or OVER (a width above ``max_width`` with
    ``cap`` false); on a bad status the widths and counts are meaningless and the
    caller raises.
    """
    v = np.ascontiguousarray(values, dtype=np.float64)
    q = 0.0 if quantum is None else float(quantum)
    args = (float(scale), bool(sign_only), q, float(max_width), float(dt_min), bool(cap))
    if backend == "numba":
        out = np.empty(v.shape)
        status, n_nonzero, n_dropped, n_over = _numba(v.reshape(-1), *args, out.reshape(-1))
        return out, int(status), int(n_nonzero), int(n_dropped), int(n_over)
    if backend == "numpy":
        return _numpy(v, *args)
    raise ValueError(f"backend must be 'numba' or 'numpy'; got {backend!r}")


def _numpy(values, scale, sign_only, quantum, hi, dt_min, cap):
    if not np.all(np.isfinite(values)):
        return np.zeros(values.shape), NOT_FINITE, 0, 0, 0
    req = scale * np.sign(values) if sign_only else scale * values
    sign = np.sign(req)
    mag = np.abs(req)
    if quantum > 0:
        mag = np.floor(mag / quantum + 0.5) * quantum
    # float fuzz from k * quantum: snap onto the bounds
    mag = np.where((mag > hi) & (mag <= hi * (1 + FUZZ)), hi, mag)
    if dt_min > 0:
        mag = np.where((mag < dt_min) & (mag >= dt_min * (1 - FUZZ)), dt_min, mag)
    over = mag > hi
    n_over = int(np.count_nonzero(over))
    if n_over and not cap:
        return np.zeros(values.shape), OVER, 0, 0, 0
    mag = np.where(over, hi, mag)
    nonzero = sign != 0
    dropped = nonzero & ((mag == 0) | (mag < dt_min))
    mag = np.where(dropped, 0.0, mag)
    return sign * mag, OK, int(np.count_nonzero(nonzero)), int(np.count_nonzero(dropped)), n_over


@nb.njit(cache=True)
def _numba(values, scale, sign_only, quantum, hi, dt_min, cap, out):
    # Selects instead of branches and no early exit, so that LLVM vectorises the loop
    # (signs are random: a branch on them mispredicts half the time); the checks are
    # made once at the end.
    hi_snap = hi * (1 + FUZZ)
    lo_snap = dt_min * (1 - FUZZ)
    n_nonzero = n_dropped = n_over = n_bad = 0
    for i in range(values.size):
        x = values[i]
        n_bad += not (abs(x) < np.inf)
        nonzero = x != 0
        req = (math.copysign(scale, x) if nonzero else 0.0) if sign_only else scale * x
        mag = abs(req)
        if quantum > 0:
            mag = np.floor(mag / quantum + 0.5) * quantum
        mag = hi if (mag > hi and mag <= hi_snap) else mag
        mag = dt_min if (dt_min > 0 and mag < dt_min and mag >= lo_snap) else mag
        over = mag > hi
        n_over += over
        mag = hi if over else mag
        nonzero = req != 0
        n_nonzero += nonzero
        drop = nonzero and (mag == 0 or mag < dt_min)
        n_dropped += drop
        mag = 0.0 if drop else mag
        out[i] = math.copysign(mag, req) if nonzero else 0.0
    if n_bad:
        return NOT_FINITE, 0, 0, 0
    if n_over and not cap:
        return OVER, 0, 0, 0
    return OK, n_nonzero, n_dropped, n_over
