"""Validation helpers that raise :class:`ParameterError` with the name and range."""
from __future__ import annotations

import math

import numpy as np

from .errors import ParameterError


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def check_range(name: str, value, low=-math.inf, high=math.inf, *,
                low_open: bool = False, high_open: bool = False, unit: str = ""):
    """Check that every element of ``value`` is finite and within [low, high].

    ``low_open``/``high_open`` make the bound strict. Returns ``value``
    unchanged so the call can be used inline. The error names the parameter,
    the offending value and the allowed range.
    """
    arr = np.asarray(value, dtype=float)
    lb = "(" if low_open else "["
    hb = ")" if high_open else "]"
    rng = f"{lb}{_fmt(low)}, {_fmt(high)}{hb}{(' ' + unit) if unit else ''}"
    if arr.size == 0:
        return value
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].flat[0]
        raise ParameterError(f"{name} must be finite; got {bad} (allowed range {rng})")
    too_low = arr <= low if low_open else arr < low
    too_high = arr >= high if high_open else arr > high
    if np.any(too_low) or np.any(too_high):
        bad = arr[too_low | too_high].flat[0]
        where = ""
        if arr.ndim:
            idx = np.argwhere(too_low | too_high)[0]
            where = f" at index {tuple(int(i) for i in idx)}"
        raise ParameterError(f"{name} = {_fmt(float(bad))}{where} is outside the allowed range {rng}")
    return value


def check_positive(name: str, value, unit: str = ""):
    """Strictly positive and finite."""
    return check_range(name, value, 0.0, math.inf, low_open=True, unit=unit)


def check_finite_array(name: str, value) -> np.ndarray:
    """Convert to a float array and reject NaN and infinities, naming the index."""
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ParameterError(f"{name} contains a non-finite value {arr[idx]} at index {idx}")
    return arr
