"""Data converters at the chip's edges: DACs that drive input lines, ADCs that digitise outputs.

Both quantise uniformly and clip to their range; a clipped value is counted
(``n_clipped``), never silently lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbar.checks import check_range


@dataclass(frozen=True)
class DAC:
    """Maps a value in [0, 1] to a voltage in [v_min, v_max] with ``bits`` of resolution."""

    bits: int = 8
    """Resolution, bits (1..32)."""
    v_min: float = 0.0
    """Output for code 0, V."""
    v_max: float = 0.2
    """Output for the full-scale code, V."""

    def __post_init__(self):
        check_range("bits", self.bits, 1, 32)
        check_range("v_max", self.v_max, self.v_min, np.inf, low_open=True, unit="V")

    def __call__(self, x):
        """Voltages for values ``x``; returns ``(volts, n_clipped)``."""
        x = np.asarray(x, dtype=float)
        clipped = np.clip(x, 0.0, 1.0)
        n = int(np.count_nonzero(clipped != x))
        levels = 2 ** self.bits - 1
        code = np.round(clipped * levels) / levels
        return self.v_min + code * (self.v_max - self.v_min), n


@dataclass(frozen=True)
class ADC:
    """Quantises a measured value in [lo, hi] (the unit of whatever it digitises) to ``bits``."""

    bits: int = 8
    """Resolution, bits (1..32)."""
    lo: float = -1.0
    """Bottom of the input range."""
    hi: float = 1.0
    """Top of the input range."""

    def __post_init__(self):
        check_range("bits", self.bits, 1, 32)
        check_range("hi", self.hi, self.lo, np.inf, low_open=True)

    def __call__(self, y):
        """Digitised values (in the input's unit); returns ``(values, n_clipped)``."""
        y = np.asarray(y, dtype=float)
        clipped = np.clip(y, self.lo, self.hi)
        n = int(np.count_nonzero(clipped != y))
        levels = 2 ** self.bits - 1
        code = np.round((clipped - self.lo) / (self.hi - self.lo) * levels)
        return self.lo + code / levels * (self.hi - self.lo), n
