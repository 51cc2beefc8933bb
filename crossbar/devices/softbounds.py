"""The linear / soft-bounds device family.

With x = (G - g_min)/dG_r in [0, 1]:

    SET:    dx/dt = +(1/tau) (1 - gamma x)
    RESET:  dx/dt = -(1/tau) (1 - gamma (1 - x))

gamma = 0 is the linear (constant-step) device; as gamma -> 1 the step
shrinks to zero at the far bound (soft bounds). In the distance u from the
bound a pulse leaves, both read du/dt = r (1 - gamma u), r = 1/tau, solved
exactly: u(dt) = u + (1 - gamma u)(1 - e^{-gamma r dt}) / gamma.

tau is set so that one pulse of dt_max takes x from 0 to 1 exactly:
tau = gamma dt_max / -ln(1 - gamma), and tau = dt_max in the linear limit.

References
----------
S. Fusi and L. F. Abbott, "Limits on the memory storage capacity of bounded
synapses", Nat. Neurosci. 10, 2007 (soft- versus hard-bounded synapses).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import check_range
from .base import DeviceArrays, DeviceModel, alias


def _step(u, rate, dt, v_ratio, gamma):
    """Increase of u over a pulse; expm1 keeps it exact for small gamma."""
    if gamma == 0.0:
        return rate * dt
    return -(1.0 - gamma * u) * np.expm1(-gamma * rate * dt) / gamma


def _drift(u, rate, v_ratio, gamma):
    """du/dt (1/s)."""
    return rate * (1.0 - gamma * u)


class SoftBoundsArrays(DeviceArrays):
    """Per-device SET and RESET rates 1/tau (1/s) of a :class:`SoftBoundsDevice`."""

    __slots__ = ()
    rate_set = alias("rate_p", "SET rate 1/tau of each device (1/s).")
    rate_reset = alias("rate_d", "RESET rate 1/tau of each device (1/s).")


@dataclass(frozen=True, slots=True)
class SoftBoundsDevice(DeviceModel):
    """Linear (gamma = 0) to soft-bounded (gamma -> 1) device; rate independent of amplitude."""

    gamma: float = 0.5
    """Soft-bound strength in [0, 1) (dimensionless).

    Near the far bound the rate is (1 - gamma) times the rate at the near one."""

    _step = staticmethod(_step)
    _drift = staticmethod(_drift)
    arrays_type = SoftBoundsArrays

    def _check_model(self) -> None:
        check_range("gamma", self.gamma, 0.0, 1.0, high_open=True)

    @property
    def tau(self) -> float:
        """Time constant tau (s) of a nominal device, for both directions."""
        if self.gamma == 0:
            return self.dt_max
        return self.gamma * self.dt_max / -math.log1p(-self.gamma)

    def nominal_rates(self) -> tuple[float, float]:
        """(1/tau, 1/tau) of a nominal device (1/s)."""
        return 1.0 / self.tau, 1.0 / self.tau

    def _shapes(self) -> tuple[float, float]:
        return self.gamma, self.gamma
