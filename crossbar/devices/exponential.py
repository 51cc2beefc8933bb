"""The thesis' exponential device (Querlioz et al. 2011; Ernoult 2020, Part II §1.2).

    potentiation:  dG/dt = +C_p exp(-beta_p (G - g_min) / dG_r)
    depression:    dG/dt = -C_d exp(-beta_d (g_max - G) / dG_r)

In the distance u from the bound a pulse leaves (see :mod:`crossbar.devices.base`)
both read du/dt = c exp(-beta u) with c = C / dG_r, whose exact solution over a
pulse of width dt is the thesis' Appendix Eq. 1.1,

    u(dt) = u + ln[1 + beta c dt exp(-beta u)] / beta,

i.e. G += f_p for SET and G -= f_d for RESET, with f = dG_r (u(dt) - u).
Only the pulse width matters (n pulses of dt/n equal one of dt); beyond threshold the amplitude does not.

References
----------
D. Querlioz et al., "Simulation of a memristor-based spiking neural network
immune to device variations", IJCNN 2011.
M. Ernoult, "Rethinking biologically inspired learning algorithms towards
better credit assignment for on-chip learning", PhD thesis, 2020.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import check_range
from . import kernels
from .base import DeviceArrays, DeviceModel, alias


def _step(u, rate, dt, v_ratio, beta):
    """Increase of u over a pulse (f / dG_r); log1p keeps it exact as beta -> 0 (rate dt)."""
    if beta == 0.0:
        return rate * dt
    return np.log1p(beta * rate * dt * np.exp(-beta * u)) / beta


def _drift(u, rate, v_ratio, beta):
    """du/dt (1/s)."""
    return rate * np.exp(-beta * u)


def rate_constant(dg_r: float, dt_max: float, beta: float) -> float:
    """C (S/s) such that one pulse of dt_max takes g_min exactly to g_max.

    C = (dG_r / dt_max) (e^beta - 1) / beta, with expm1 so that beta -> 0 tends
    to the linear rate dG_r / dt_max without cancellation (and beta = 0 is it).
    """
    return dg_r / dt_max * (math.expm1(beta) / beta if beta else 1.0)


class ExponentialArrays(DeviceArrays):
    """Per-device C_p and C_d (S/s) of an :class:`ExponentialDevice`, shape = array shape."""

    __slots__ = ()
    c_p = alias("rate_p", "Potentiation rate constant C_p of each device (S/s).")
    c_d = alias("rate_d", "Depression rate constant C_d of each device (S/s).")


@dataclass(frozen=True, slots=True)
class ExponentialDevice(DeviceModel):
    """The thesis' exponential memristor model, in closed form per pulse.

    C_p and C_d follow from ``dt_max`` and the betas (:func:`rate_constant`).
    The defaults are SI-scaled thesis values: g_max = 100 uS, on/off 13,
    dt_max = 1 us and the "non-linear" beta = 3 (the thesis' "near-linear"
    case is beta = 0.005). :meth:`thesis` gives the normalised setting.
    """

    beta_p: float = 3.0
    """Potentiation non-linearity (dimensionless, >= 0); 0 is a linear device."""
    beta_d: float = 3.0
    """Depression non-linearity (dimensionless, >= 0)."""

    _step = staticmethod(_step)
    _drift = staticmethod(_drift)
    arrays_type = ExponentialArrays

    @classmethod
    def thesis(cls, beta: float = 0.005, **overrides) -> "ExponentialDevice":
        """The thesis' normalised setting: g_max = 1, g_min = 1/13, dt_max = 1.

        Conductances are then in units of g_max and pulse widths in units of
        dt_max, as the thesis quotes them (dt/dt_max). ``beta`` sets both
        beta_p and beta_d; ``overrides`` replace any other field.
        """
        params = dict(g_min=1 / 13, g_max=1.0, dt_max=1.0, beta_p=beta, beta_d=beta)
        return cls(**{**params, **overrides})

    def _check_model(self) -> None:
        # Above ~700, e^beta overflows; fitted devices stay far below 100.
        check_range("beta_p", self.beta_p, 0.0, 100.0)
        check_range("beta_d", self.beta_d, 0.0, 100.0)

    def update_kernel(self, engine=kernels):
        """numba: the kernel split around numpy's SIMD exp and log1p (about twice as fast
        as the fused one), unless a beta is 0 (then the step has no exp to speed up)."""
        if engine is kernels and self.beta_p > 0 and self.beta_d > 0:
            return kernels.exponential_update
        return engine.update_kernel(type(self)._step)

    def nominal_rates(self) -> tuple[float, float]:
        """(C_p, C_d) of a nominal device (S/s)."""
        return (rate_constant(self.dg_r, self.dt_max, self.beta_p),
                rate_constant(self.dg_r, self.dt_max, self.beta_d))

    def _shapes(self) -> tuple[float, float]:
        return self.beta_p, self.beta_d

    def _rate_scale(self) -> float:
        return 1.0 / self.dg_r     # C is in S/s, the step wants fraction of dG_r per s
