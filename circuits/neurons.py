"""Neuron circuits: a transimpedance stage, an activation circuit and per-neuron mismatch.

A neuron group receives the currents of the tile lines it senses. For a
differential pair the two lines' currents are subtracted. The op-amp stage
turns the current into a pre-activation voltage

    u = R_f A/(1+A) (1 + e_gain) i + v_offset + e_offset

(A: open-loop gain; e_gain, e_offset: this neuron's mismatch, drawn once), and
the activation circuit turns u into the activity the next tile is driven with:

- ``linear``: u clipped at the op-amp rails, in volts;
- ``hardsigmoid``: (clip(u, rails) - v_rail_neg) / (v_rail_pos - v_rail_neg),
  the rails of the op-amp giving the non-linearity (rails at 0 and 1 V give the
  usual clip(u, 0, 1));
- ``sigmoid``: 1 / (1 + exp(-slope (1 + e_slope) (u - v_mid))), a sigmoid-like
  circuit;
- ``stochastic``: a comparator against v_mid with logistic input noise of rms
  ``noise``: it fires (activity 1) with probability sigmoid((u - v_mid) / s),
  s = noise sqrt(3) / pi, i.e. Bernoulli(sigmoid) firing.

Activities of ``hardsigmoid``, ``sigmoid`` and ``stochastic`` groups lie in
[0, 1]; a tile row driven by an activity a sees ``a * v_read``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crossbar.checks import check_range
from crossbar.errors import ParameterError

from .converters import ADC, DAC

ROLES = ("input", "hidden", "output")
ACTIVATIONS = ("linear", "hardsigmoid", "sigmoid", "stochastic")


@dataclass(frozen=True)
class NeuronParams:
    """Parameters of a group of identical (up to mismatch) neuron circuits, SI units."""

    role: str = "hidden"
    """input (driven by DACs), hidden or output."""
    activation: str = "linear"
    """linear, hardsigmoid, sigmoid or stochastic."""
    bias: bool = False
    """The group provides one extra always-on line, a bias input to the tiles it drives."""
    r_feedback: float = 10e3
    """Feedback resistance of the transimpedance stage, ohm."""
    gain: float = math.inf
    """Open-loop gain of the op-amp (inf: ideal)."""
    v_rail_pos: float = 1.0
    """Positive output rail, V."""
    v_rail_neg: float = -1.0
    """Negative output rail, V."""
    v_offset: float = 0.0
    """Nominal output offset, V."""
    slope: float = 1.0
    """Slope of the sigmoid circuit, 1/V."""
    v_mid: float = 0.0
    """Centre of the sigmoid or comparator threshold, V."""
    noise: float = 0.0
    """Comparator input noise (stochastic neurons), V rms."""
    tau: float = 0.0
    """Time constant of the leaky integrator, s (0: static neuron)."""
    gain_std: float = 0.0
    """Neuron-to-neuron spread of the transimpedance gain, relative."""
    offset_std: float = 0.0
    """Neuron-to-neuron spread of the output offset, V."""
    slope_std: float = 0.0
    """Neuron-to-neuron spread of the sigmoid slope, relative."""
    dac: DAC | None = None
    """Input DAC (input groups)."""
    adc: ADC | None = None
    """ADC digitising what a rule observes of this group."""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ParameterError(f"role = {self.role!r}; allowed: {', '.join(ROLES)}")
        if self.activation not in ACTIVATIONS:
            raise ParameterError(f"activation = {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        check_range("r_feedback", self.r_feedback, 0.0, low_open=True, unit="ohm")
        check_range("gain", self.gain, 0.0, math.inf, low_open=True) if math.isfinite(self.gain) else None
        check_range("v_rail_pos", self.v_rail_pos, self.v_rail_neg, math.inf, low_open=True, unit="V")
        check_range("slope", self.slope, 0.0, low_open=True, unit="1/V")
        check_range("noise", self.noise, 0.0, unit="V")
        check_range("tau", self.tau, 0.0, unit="s")
        for name in ("gain_std", "slope_std"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("offset_std", self.offset_std, 0.0, unit="V")
        if self.activation == "stochastic" and self.noise <= 0:
            raise ParameterError("noise = 0 V is outside the allowed range (0, inf) V for a stochastic group")


class NeuronGroup:
    """A group of neuron circuits with mismatch drawn once from ``rng``."""

    def __init__(self, name: str, size: int, params: NeuronParams, rng: np.random.Generator):
        if int(size) != size or size < 1:
            raise ParameterError(f"group {name}: size = {size!r} is outside the allowed range [1, inf)")
        self.name = name
        self.size = int(size)
        self.params = params
        p = params
        self.gain_error = rng.normal(0.0, p.gain_std, self.size) if p.gain_std else np.zeros(self.size)
        self.offset = p.v_offset + (rng.normal(0.0, p.offset_std, self.size) if p.offset_std else 0.0)
        self.slope = p.slope * (1 + (rng.normal(0.0, p.slope_std, self.size) if p.slope_std else 0.0))
        self.transimpedance = p.r_feedback * (p.gain / (1 + p.gain) if math.isfinite(p.gain) else 1.0)
        self._volts_per_amp = self.transimpedance * (1 + self.gain_error)   # per neuron, gain mismatch included

    @property
    def lines(self) -> int:
        """Lines this group drives (its neurons plus the bias line)."""
        return self.size + int(self.params.bias)

    def preactivation(self, current):
        """Pre-activation voltage u (K, size) from the sensed currents (A); clipped at the rails.

        Returns ``(u, n_saturated)``.
        """
        p = self.params
        u = self._volts_per_amp * current + self.offset
        if u.size == 0 or (p.v_rail_neg <= u.min() and u.max() <= p.v_rail_pos):   # the common case
            return u, 0
        clipped = np.clip(u, p.v_rail_neg, p.v_rail_pos)
        return clipped, int(np.count_nonzero(clipped != u))

    def activate(self, u, rng: np.random.Generator | None = None):
        """Activities (K, size) from pre-activations ``u``."""
        p = self.params
        if p.activation == "linear":
            return np.array(u, dtype=float)
        if p.activation == "hardsigmoid":
            return (np.clip(u, p.v_rail_neg, p.v_rail_pos) - p.v_rail_neg) / (p.v_rail_pos - p.v_rail_neg)
        if p.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-self.slope * (u - p.v_mid)))
        if rng is None:
            raise ParameterError(f"group {self.name}: stochastic neurons need a random generator")
        s = p.noise * math.sqrt(3.0) / math.pi      # logistic scale with rms `noise`
        return (u + rng.logistic(0.0, s, np.shape(u)) > p.v_mid).astype(float)

    def firing_probability(self, u):
        """Stochastic groups: the probability of firing for pre-activation u."""
        s = self.params.noise * math.sqrt(3.0) / math.pi
        return 1.0 / (1.0 + np.exp(-(u - self.params.v_mid) / s))
