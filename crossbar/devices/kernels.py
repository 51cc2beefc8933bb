"""Numba kernels of the device update; their numpy twins are in
:mod:`crossbar.devices.reference` and have the same signatures.

One kernel is compiled per model, around the model's closed-form ``step``
(see :mod:`crossbar.devices.base`). Per-device inputs are flat arrays of
length n, or of length 1 for a value shared by all devices: the kernels read
those with stride 0 instead of needing a full-size copy.

The per-model update kernels are not cached on disk: numba cannot cache a
function built around another one at run time (each process would only add
cache files that never hit). Each compiles in a few seconds, once per process;
the shared helpers below are cached.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from numba import njit, prange, types

# Explicit signatures: one compilation whatever the caller passes (a read-only
# broadcast view or a fresh array), and the helpers compile at import, cached.
_IN = types.Array(types.float64, 1, "C", readonly=True)
_OUT = types.Array(types.float64, 1, "C")
_F = types.float64

N_CHUNKS = 64
"""Work units of the parallel loops. Results do not depend on it: a device's
noise draw is its rank among the switched devices in C order, whatever the split."""


@njit(inline="always")
def _direction(v, dt, v_set, v_reset):
    """+1 potentiate, -1 depress, 0 no change (strict thresholds, dt > 0)."""
    if dt > 0.0:
        if v > v_set:
            return 1
        if v < v_reset:
            return -1
    return 0


@njit(inline="always")
def _strides(n, v, dt, rate_p, rate_d):
    """Index strides of the per-device inputs: 1 for a full array, 0 for one shared value."""
    return (1 if v.size == n else 0, 1 if dt.size == n else 0,
            1 if rate_p.size == n else 0, 1 if rate_d.size == n else 0)


@njit(types.int64(types.int64, _IN, _IN, _F, _F), parallel=True, cache=True)
def count_switched(n, v, dt, v_set, v_reset):
    """Number of the n devices that a pulse (v, dt) switches."""
    sv = 1 if v.size == n else 0
    st = 1 if dt.size == n else 0
    count = 0
    for i in prange(n):
        if _direction(v[i * sv], dt[i * st], v_set, v_reset) != 0:
            count += 1
    return count


@njit(types.int64[:](types.int64, types.int64, _IN, _IN, _F, _F), parallel=True, cache=True)
def _noise_offsets(n, size, v, dt, v_set, v_reset):
    """offsets[c] = number of switched devices before chunk c (chunks of ``size``)."""
    sv = 1 if v.size == n else 0
    st = 1 if dt.size == n else 0
    n_chunks = (n + size - 1) // size
    counts = np.zeros(n_chunks + 1, np.int64)
    for c in prange(n_chunks):
        k = 0
        for i in range(c * size, min(n, (c + 1) * size)):
            if _direction(v[i * sv], dt[i * st], v_set, v_reset) != 0:
                k += 1
        counts[c + 1] = k
    return np.cumsum(counts)


@functools.lru_cache(maxsize=None)
def update_kernel(step):
    """Compile the update kernel of a model around its ``step`` function.

    The returned function has the signature and semantics of
    :func:`crossbar.devices.reference.update`, without its first argument.
    """
    step = njit(step)

    @njit(types.UniTuple(types.int64, 2)(_IN, _IN, _IN, _IN, _IN, _IN, _F, _OUT, *[_F] * 7),
          parallel=True)
    def update(g, v, dt, rate_p, rate_d, z, sigma, out, g_min, g_max, v_set, v_reset,
               shape_p, shape_d, rate_scale):
        n = g.size
        sv, st, sp, sd = _strides(n, v, dt, rate_p, rate_d)
        dg = g_max - g_min
        noisy = z.size > 0
        size = max(1, (n + N_CHUNKS - 1) // N_CHUNKS)
        n_chunks = (n + size - 1) // size
        # Where each chunk starts reading z; only needed when there is noise.
        first = (_noise_offsets(n, size, v, dt, v_set, v_reset) if noisy
                 else np.zeros(n_chunks + 1, np.int64))
        n_switched = np.zeros(n_chunks, np.int64)
        n_clipped = np.zeros(n_chunks, np.int64)
        for c in prange(n_chunks):
            k = first[c]
            switched = 0
            clipped = 0
            for i in range(c * size, min(n, (c + 1) * size)):
                vi = v[i * sv]
                ti = dt[i * st]
                d = _direction(vi, ti, v_set, v_reset)
                if d == 0:
                    out[i] = g[i]
                    continue
                # Select the direction's constants rather than branch on it:
                # random signs would mispredict. s * (g - base) is exactly the
                # twin's g - g_min or g_max - g, and g + s * (du dg) its
                # g + du dg or g - du dg.
                up = d > 0
                s = 1.0 if up else -1.0
                base = g_min if up else g_max
                gi = g[i]
                du = step(s * (gi - base) / dg,
                          (rate_p[i * sp] if up else rate_d[i * sd]) * rate_scale, ti,
                          vi / (v_set if up else v_reset), shape_p if up else shape_d)
                gi += s * (du * dg)
                if noisy:
                    gi += sigma * z[k]
                    k += 1
                switched += 1
                if gi < g_min:
                    gi = g_min
                    clipped += 1
                elif gi > g_max:
                    gi = g_max
                    clipped += 1
                out[i] = gi
            n_switched[c] = switched
            n_clipped[c] = clipped
        return n_switched.sum(), n_clipped.sum()

    return update


# ---- the exponential device, split around numpy's vectorised exp and log1p ----
#
# The fused kernel above calls libm's scalar exp and log1p once per device; numba
# here has no vector math library, so those two calls are most of its time. numpy's
# exp and log1p are SIMD loops (about 2 ns per device on AVX-512 against about 10).
# So for the exponential model the update is split in three passes: numba writes
# each device's exponent and factor, numpy evaluates log1p(factor * exp(exponent))
# in place, and the fused kernel above finishes (sign, noise, clamp, counts) with
# a "step" that only divides by beta. The arithmetic is the reference's, operation
# for operation, so this path equals crossbar.devices.reference to the last bit.

@njit(types.void(_IN, _IN, _IN, _IN, _IN, _OUT, _OUT, *[_F] * 7), parallel=True, cache=True)
def exponential_arguments(g, v, dt, rate_p, rate_d, exponent, factor, g_min, g_max, v_set, v_reset,
                          beta_p, beta_d, rate_scale):
    """exponent = -beta u and factor = beta c dt per device (factor 0 where nothing switches)."""
    n = g.size
    sv, st, sp, sd = _strides(n, v, dt, rate_p, rate_d)
    dg = g_max - g_min
    for i in prange(n):
        ti = dt[i * st]
        d = _direction(v[i * sv], ti, v_set, v_reset)
        up = d > 0
        s = 1.0 if up else -1.0
        beta = beta_p if up else beta_d
        rate = (rate_p[i * sp] if up else rate_d[i * sd]) * rate_scale
        exponent[i] = -beta * (s * (g[i] - (g_min if up else g_max)) / dg)
        factor[i] = beta * rate * ti if d != 0 else 0.0


def _du_from_log1p(u, log1p_term, dt, v_ratio, beta):
    """The exponential step once log1p(beta c dt exp(-beta u)) is known: divide by beta."""
    return log1p_term / beta


class _Scratch(threading.local):
    """Two work arrays per thread, grown on demand and kept: fresh multi-megabyte
    arrays on every pulse would cost page faults comparable to the maths."""

    def __init__(self):
        self.buf = np.empty(0)

    def pair(self, n):
        if self.buf.size < 2 * n:
            self.buf = np.empty(2 * n)
        return self.buf[:n], self.buf[n:2 * n]


_scratch = _Scratch()


def exponential_update(g, v, dt, rate_p, rate_d, z, sigma, out, g_min, g_max, v_set, v_reset,
                       beta_p, beta_d, rate_scale):
    """The update kernel of :class:`~crossbar.devices.ExponentialDevice` with both betas > 0.

    Signature and semantics of :func:`crossbar.devices.reference.update` without its
    first argument; the same result as ``update_kernel(ExponentialDevice._step)``
    up to the rounding of exp and log1p (numpy's against libm's).
    """
    if not (beta_p > 0.0 and beta_d > 0.0):
        raise ValueError("exponential_update needs beta_p > 0 and beta_d > 0 (use update_kernel)")
    exponent, factor = _scratch.pair(g.size)
    exponential_arguments(g, v, dt, rate_p, rate_d, exponent, factor, g_min, g_max, v_set, v_reset,
                          beta_p, beta_d, rate_scale)
    log1p_term = np.exp(exponent, out=exponent)
    np.multiply(log1p_term, factor, out=log1p_term)
    np.log1p(log1p_term, out=log1p_term)
    finish = update_kernel(_du_from_log1p)
    return finish(g, v, dt, log1p_term, log1p_term, z, sigma, out, g_min, g_max, v_set, v_reset,
                  beta_p, beta_d, 1.0)
