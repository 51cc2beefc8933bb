"""Pulse schedules: what a learning rule asks the programming drivers to do.

A schedule says which weights should move, in which direction and for how long;
:func:`crossbar.program.program` turns it into the row and column voltages of
each phase, solves the circuit where wires are resistive, and updates the
devices. Signs refer to logical weights: on a differential pair a positive
request potentiates G+ and depresses G-, a negative one the reverse.

- :class:`OuterProductWrite`: a parallel rank-one sign update (Manhattan rule
  on ``sign(x_i) sign(d_j)``) in four phases; a device sees the full write
  voltage only where its row and column pulses coincide.
- :class:`RowByRowWrite`: one row at a time, each column with its own signed
  width, so any sign/width pattern (Cst, RProp) is written in 2 M phases.
- :class:`WriteVerify`: single-device write-verify towards target conductances.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ParameterError
from .write_kernels import width_range


def _signs(name, a):
    a = np.asarray(a)
    if a.ndim != 1 or not np.all(np.isin(a, (-1, 0, 1))):
        raise ParameterError(f"{name} must be a 1-D array of -1, 0 or +1")
    return a.astype(np.int8)


@dataclass(frozen=True)
class OuterProductWrite:
    """Parallel write of ``sign(rows_i * cols_j)`` to every selected device.

    rows : (M,) in {-1, 0, +1}; cols : (N,) in {-1, 0, +1} (logical columns);
    width : pulse width, s; count : pulses per phase.
    """

    rows: np.ndarray
    cols: np.ndarray
    width: float
    count: int = 1

    def __post_init__(self):
        object.__setattr__(self, "rows", _signs("rows", self.rows))
        object.__setattr__(self, "cols", _signs("cols", self.cols))
        _check_width("width", self.width)
        if int(self.count) != self.count or self.count < 1:
            raise ParameterError(f"count = {self.count!r} is outside the allowed range [1, inf)")

    def signed_widths(self):
        """The equivalent per-weight signed widths (M, N)."""
        return np.outer(self.rows, self.cols) * self.width * self.count


@dataclass(frozen=True)
class RowByRowWrite:
    """Per-weight signed pulse widths (M, N logical), written one row at a time.

    ``widths[i, j] > 0`` potentiates weight (i, j) for that many seconds, ``< 0``
    depresses it, ``0`` leaves it alone (no pulse).
    """

    widths: np.ndarray

    def __post_init__(self):
        w = np.asarray(self.widths, dtype=float)
        if w.ndim != 2:
            raise ParameterError(f"widths must be a 2-D array (rows, cols); got shape {w.shape}")
        finite, shortest, longest = width_range(w)
        if not finite:
            raise ParameterError("widths must be finite pulse widths (allowed range (-inf, inf) s, the sign "
                                 "choosing SET or RESET)")
        object.__setattr__(self, "widths", w)
        object.__setattr__(self, "_range", (shortest, longest))

    def signed_widths(self):
        return self.widths

    def width_range(self) -> tuple[float, float]:
        """(shortest nonzero, longest) |width|, s; (inf, 0) when nothing is sent."""
        return self._range


@dataclass(frozen=True)
class WriteVerify:
    """Write-verify: pulse each listed device until its measured conductance is within tolerance.

    targets : (M, N_phys) target conductances in S, NaN where a device is left alone.
    """

    targets: np.ndarray
    width: float
    tol: float = 0.02
    max_pulses: int = 100
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        _check_width("width", self.width)
        if not 0 < self.tol < 1:
            raise ParameterError(f"tol = {self.tol!r} is outside the allowed range (0, 1)")


def _check_width(name, w):
    w = np.asarray(w, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ParameterError(f"{name} must be finite pulse widths >= 0 s (allowed range [0, inf) s)")
