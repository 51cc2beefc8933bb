"""A VTEAM-style threshold device with hard bounds.

With x = (G - g_min)/dG_r in [0, 1] and G linear in x (Kvatinsky et al. 2015):

    dx/dt = +k_set   (v / v_set   - 1)^alpha_set     for v > v_set   (> 0)
    dx/dt = 0                                         for v_reset <= v <= v_set
    dx/dt = -k_reset (v / v_reset - 1)^alpha_reset   for v < v_reset (< 0)

There is no window function: x is simply bounded to [0, 1] (the clamp of
:meth:`DeviceModel.apply`), so the rate does not depend on x and a pulse adds
k (v/v_th - 1)^alpha dt to the distance u from the bound it leaves.

References
----------
S. Kvatinsky et al., "VTEAM: a general model for voltage-controlled
memristors", IEEE Trans. Circuits Syst. II 62(8), 2015.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_positive, check_range
from .base import DeviceArrays, DeviceModel, alias


def _step(u, rate, dt, v_ratio, alpha):
    """Increase of u over a pulse: linear in time, power law in the overdrive v/v_th - 1."""
    return rate * dt * (v_ratio - 1.0) ** alpha


def _drift(u, rate, v_ratio, alpha):
    """du/dt (1/s), independent of u (hard bounds, no window)."""
    return rate * (v_ratio - 1.0) ** alpha


class ThresholdArrays(DeviceArrays):
    """Per-device k_set and k_reset (1/s) of a :class:`ThresholdDevice`, shape = array shape."""

    __slots__ = ()
    k_set = alias("rate_p", "SET rate constant of each device (fraction of the range per s).")
    k_reset = alias("rate_d", "RESET rate constant of each device (fraction of the range per s).")


@dataclass(frozen=True, slots=True)
class ThresholdDevice(DeviceModel):
    """VTEAM-style device: power-law rate beyond the thresholds, none inside.

    k_set and k_reset are not given directly: one pulse of ``dt_max`` at the
    reference write voltage takes g_min to g_max (SET) or back (RESET).
    """

    alpha_set: float = 3.0
    """SET exponent of the overdrive (dimensionless, > 0); VTEAM fits use about 1 to 10."""
    alpha_reset: float = 3.0
    """RESET exponent of the overdrive (dimensionless, > 0)."""
    v_write_set: float = 1.2
    """Reference SET voltage (V, > v_set) at which one dt_max pulse is a full swing."""
    v_write_reset: float = -1.2
    """Reference RESET voltage (V, < v_reset) at which one dt_max pulse is a full swing."""

    _step = staticmethod(_step)
    _drift = staticmethod(_drift)
    arrays_type = ThresholdArrays

    def _check_model(self) -> None:
        check_positive("alpha_set", self.alpha_set)
        check_positive("alpha_reset", self.alpha_reset)
        check_range("v_write_set", self.v_write_set, self.v_set, low_open=True, unit="V")
        check_range("v_write_reset", self.v_write_reset, high=self.v_reset, high_open=True,
                    unit="V")

    def nominal_rates(self) -> tuple[float, float]:
        """(k_set, k_reset) of a nominal device (1/s)."""
        return (1.0 / (self.dt_max * (self.v_write_set / self.v_set - 1.0) ** self.alpha_set),
                1.0 / (self.dt_max * (self.v_write_reset / self.v_reset - 1.0) ** self.alpha_reset))

    def _shapes(self) -> tuple[float, float]:
        return self.alpha_set, self.alpha_reset
