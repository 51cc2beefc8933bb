"""What sits at the end of each row and column line during a solve.

Every line has one terminal: rows at their left end (before column 0), columns
at their bottom end (after row M-1). Whatever is attached there is reduced to a
Norton equivalent, a conductance ``g`` to a voltage ``v``:

- a voltage driver with source resistance ``r`` (:func:`driver_conductance`): ``g = 1/r``, ``v = V_in``;
- an ideal virtual ground (an ideal TIA input): ``g = inf``, ``v = v_ref``;
- a finite-gain TIA (gain A, feedback R_f): ``g = (1+A)/R_f``,
  ``v = A v_ref / (1+A)`` while its output is inside the rails; a saturated
  op-amp output is a source at the rail behind R_f;
- a load resistor to ground: ``g = 1/R``, ``v = 0``;
- nothing (a floating line): ``g = 0``.

``g = inf`` means the line end is held at ``v`` exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import check_range

INF = math.inf


def driver_conductance(r_source, n: int) -> np.ndarray:
    """Norton conductances (n,) of line drivers with output resistance ``r_source`` (inf when 0)."""
    r = np.broadcast_to(np.asarray(r_source, dtype=float), (n,))
    with np.errstate(divide="ignore"):
        return np.where(r == 0, INF, 1.0 / np.where(r == 0, 1.0, r))


@dataclass(frozen=True)
class VirtualGround:
    """An ideal transimpedance input: the line end is held at ``v_ref``.

    The measured quantity is the current flowing out of the line into it, in A.
    """

    v_ref: float = 0.0
    """Voltage the input is held at, V."""

    def __post_init__(self):
        check_range("v_ref", self.v_ref)

    def norton(self, n: int):
        return np.full(n, INF), np.full(n, self.v_ref)

    def output(self, current, v_end):
        return current


@dataclass(frozen=True)
class TIA:
    """A transimpedance amplifier built on an op-amp with finite gain and rails.

    Output ``V_out = A (v_ref + v_offset - v_in)`` with the feedback resistor
    ``r_feedback`` from output to input, clipped to the rails. The measured
    quantity is ``V_out`` in volts (negative for current flowing into it).
    """

    r_feedback: float = 10e3
    """Feedback resistance R_f, ohm."""
    gain: float = 1e5
    """Open-loop gain A (dimensionless); ``inf`` is an ideal op-amp."""
    v_rail_pos: float = 1.0
    """Positive output rail, V."""
    v_rail_neg: float = -1.0
    """Negative output rail, V."""
    v_ref: float = 0.0
    """Voltage of the non-inverting input, V."""
    v_offset: float = 0.0
    """Input offset voltage, V (added to v_ref)."""

    def __post_init__(self):
        check_range("r_feedback", self.r_feedback, 0.0, low_open=True, unit="ohm")
        if not (self.gain > 0):
            check_range("gain", self.gain, 0.0, low_open=True)
        if not self.v_rail_neg < self.v_rail_pos:
            check_range("v_rail_neg", self.v_rail_neg, -INF, self.v_rail_pos, high_open=True, unit="V")

    @property
    def v_plus(self) -> float:
        return self.v_ref + self.v_offset

    def norton(self, n: int):
        if math.isinf(self.gain):
            return np.full(n, INF), np.full(n, self.v_plus)
        a = self.gain
        return np.full(n, (1 + a) / self.r_feedback), np.full(n, a * self.v_plus / (1 + a))



@dataclass(frozen=True)
class OpAmpInput:
    """The inverting input of an op-amp stage with finite gain, measuring current.

    Seen from the line it is a conductance ``(1+A)/R_f`` to ``A v_ref/(1+A)``
    (a virtual ground when A is infinite). The measured quantity is the current
    flowing into it, A; the neuron circuit that follows turns it into a voltage.
    """

    r_feedback: float = 10e3
    """Feedback resistance, ohm."""
    gain: float = math.inf
    """Open-loop gain (inf: ideal)."""
    v_ref: float = 0.0
    """Non-inverting input voltage, V."""

    def norton(self, n: int):
        if math.isinf(self.gain):
            return np.full(n, INF), np.full(n, self.v_ref)
        a = self.gain
        return np.full(n, (1 + a) / self.r_feedback), np.full(n, a * self.v_ref / (1 + a))

    def output(self, current, v_end):
        return current


@dataclass(frozen=True)
class LoadResistor:
    """A resistor from the line end to ground; the measured quantity is its voltage."""

    r_load: float = 1e3
    """Load resistance, ohm."""

    def __post_init__(self):
        check_range("r_load", self.r_load, 0.0, low_open=True, unit="ohm")

    def norton(self, n: int):
        return np.full(n, 1.0 / self.r_load), np.zeros(n)

    def output(self, current, v_end):
        return v_end
