"""Per-event summaries of a whole tile: mean, std, min, max and a fixed-bin histogram.

The numba kernel :func:`summarize_numba` and its plain-numpy twin
:func:`summarize_numpy` take the same arguments and agree (a test checks it):
the histogram counts exactly, the moments to rounding.

Binning. With ``nb`` bins over ``[lo, hi]`` a finite value ``x`` goes to

* ``below`` if ``x < lo`` and ``above`` if ``x > hi`` (counted, never clipped into
  the edge bins);
* bin ``min(floor((x - lo) * (nb / (hi - lo))), nb - 1)`` otherwise (numbered from
  0), so ``x = hi`` falls in the last bin, as in :func:`numpy.histogram`. (A value
  within a rounding error of an inner edge may land on either side of it.)

Non-finite values (nan, ±inf) are counted in ``nonfinite`` and left out of the
moments, extrema and histogram. The moments are accumulated in float64 about a
reference value (the first finite element), so a narrow spread around a large mean
keeps its digits.
"""
from __future__ import annotations

import numpy as np
from numba import njit

SUMMARY_DTYPE = np.dtype([
    ("mean", "f8"), ("std", "f8"), ("min", "f8"), ("max", "f8"),
    ("below", "i8"), ("above", "i8"), ("nonfinite", "i8"),
])
"""One row of ``/tiles/<name>/summary``: moments (S) over the finite devices, and the
counts of devices below the histogram range, above it, and non-finite."""

_BLOCK = 4096
# reassociation lets LLVM vectorise the sums and extrema; no 'nnan'/'ninf' (the slow
# path must see non-finite values) and no 'contract' in the binning (an FMA would
# round differently from numpy and move values across bin edges).
_FAST = {"reassoc", "nsz", "arcp"}


@njit(nogil=True, cache=True, fastmath=_FAST)
def _moments_fast(x, ref):
    # two loops: fused, the sums and the extrema stop vectorising
    s = 0.0
    s2 = 0.0
    for k in range(x.shape[0]):
        d = np.float64(x[k]) - ref
        s += d
        s2 += d * d
    mn = x[0]
    mx = x[0]
    for k in range(x.shape[0]):
        v = x[k]
        mn = v if v < mn else mn
        mx = v if v > mx else mx
    return s, s2, mn, mx


@njit(nogil=True, cache=True)
def _bins_fast(x, lo, inv_w, hist, idx):
    """Histogram of all-finite ``x`` (``hist`` has nb + 2 slots: below, bins, above).

    Values past the last bin go to ``above``, whether or not they exceed ``hi``:
    the caller either knows they do not (and moves them to the last bin) or uses
    :func:`_bins_checked`. Blocked so the bin indices stay in L1.
    """
    n = x.shape[0]
    nbf = hist.shape[0] - 2.0
    for k0 in range(0, n, idx.shape[0]):
        m = min(n - k0, idx.shape[0])
        xs = x[k0:k0 + m]
        for k in range(m):
            b = (np.float64(xs[k]) - lo) * inv_w
            i = np.int32(min(b, nbf)) + 1
            idx[k] = i if b >= 0.0 else 0
        for k in range(m):
            hist[idx[k]] += 1


@njit(nogil=True, cache=True)
def _bins_checked(x, lo, inv_w, hi, hist, idx):
    """As :func:`_bins_fast`, but a value <= hi never goes to ``above``."""
    n = x.shape[0]
    nb = hist.shape[0] - 2
    nbf = nb + 0.0
    for k0 in range(0, n, idx.shape[0]):
        m = min(n - k0, idx.shape[0])
        xs = x[k0:k0 + m]
        for k in range(m):
            v = np.float64(xs[k])
            b = (v - lo) * inv_w
            i = np.int32(min(b, nbf)) + 1
            i = nb if (i > nb) & (v <= hi) else i
            idx[k] = i if b >= 0.0 else 0
        for k in range(m):
            hist[idx[k]] += 1


@njit(nogil=True, cache=True)
def _slow(x, lo, inv_w, hi, hist):
    """Reference loop that skips non-finite values (used only when some are present)."""
    nb = hist.shape[0] - 2
    ref = 0.0
    got = False
    s = 0.0
    s2 = 0.0
    mn = np.inf
    mx = -np.inf
    cnt = 0
    bad = 0
    for k in range(x.shape[0]):
        v = np.float64(x[k])
        if not np.isfinite(v):
            bad += 1
            continue
        if not got:
            ref = v
            got = True
        d = v - ref
        s += d
        s2 += d * d
        mn = min(mn, v)
        mx = max(mx, v)
        cnt += 1
        b = (v - lo) * inv_w
        if b < 0.0:
            hist[0] += 1
        elif v > hi:
            hist[nb + 1] += 1
        else:
            hist[min(np.int32(min(b, nb + 0.0)), nb - 1) + 1] += 1
    return ref, s, s2, mn, mx, cnt, bad


@njit(nogil=True, cache=True)
def summarize_numba(x, lo, hi, hist, idx):
    """Summary of the flat array ``x`` (float32 or float64), numba kernel.

    Parameters
    ----------
    x : ndarray (n,)
    lo, hi : float
        Histogram range, S.
    hist : ndarray of int64 (nb + 2,)
        Zeroed by the caller; filled with ``[below, bin_0 .. bin_{nb-1}, above]``.
    idx : ndarray of int32
        Scratch space for one block of bin indices (any length >= 1).

    Returns
    -------
    (mean, std, min, max, nonfinite)
        Over the finite elements; mean/std/min/max are nan when there are none.
    """
    n = x.shape[0]
    nb = hist.shape[0] - 2
    inv_w = nb / (hi - lo)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    ref = np.float64(x[0])
    s, s2, mn, mx = _moments_fast(x, ref)
    if np.isfinite(s) and np.isfinite(s2):
        if mx <= hi:                      # nothing is above hi: what overflowed is x ~ hi
            _bins_fast(x, lo, inv_w, hist, idx)
            hist[nb] += hist[nb + 1]
            hist[nb + 1] = 0
        else:
            _bins_checked(x, lo, inv_w, hi, hist, idx)
        cnt = n
        bad = 0
        mn = np.float64(mn)
        mx = np.float64(mx)
    else:
        ref, s, s2, mn, mx, cnt, bad = _slow(x, lo, inv_w, hi, hist)
    if cnt == 0:
        return np.nan, np.nan, np.nan, np.nan, bad
    m = s / cnt
    var = max(s2 / cnt - m * m, 0.0)
    return ref + m, np.sqrt(var), mn, mx, bad


def summarize_numpy(x, lo, hi, hist, idx=None):
    """Plain-numpy twin of :func:`summarize_numba` (same arguments, same results)."""
    x = np.asarray(x)
    nb = hist.shape[0] - 2
    inv_w = nb / (hi - lo)
    v = x.astype(np.float64)
    ok = np.isfinite(v)
    bad = int(v.size - np.count_nonzero(ok))
    if bad:
        v = v[ok]
    if v.size == 0:
        return np.nan, np.nan, np.nan, np.nan, bad
    b = (v - lo) * inv_w
    i = np.minimum(b, nb).astype(np.int64) + 1      # b >= 0 below: truncation is floor
    i = np.where(v > hi, nb + 1, np.minimum(i, nb))
    i = np.where(b >= 0.0, i, 0)
    hist += np.bincount(i, minlength=nb + 2)
    ref = v[0]
    d = v - ref
    m = d.mean()
    var = max(float(np.mean(d * d)) - m * m, 0.0)
    return ref + m, float(np.sqrt(var)), float(v.min()), float(v.max()), bad


def summarize_rows(block, lo, hi, hist_out, summary_out, backend="numba"):
    """Summaries of each row of ``block`` (k, n) into ``hist_out`` (k, nb) and
    ``summary_out`` (k,) of :data:`SUMMARY_DTYPE`."""
    fn = summarize_numba if backend == "numba" else summarize_numpy
    nb = hist_out.shape[1]
    h = np.zeros(nb + 2, dtype=np.int64)
    idx = np.empty(_BLOCK, dtype=np.int32)
    for r in range(block.shape[0]):
        h[:] = 0
        mean, std, mn, mx, bad = fn(block[r], float(lo), float(hi), h, idx)
        hist_out[r] = h[1:-1]
        summary_out[r] = (mean, std, mn, mx, h[0], h[-1], bad)
