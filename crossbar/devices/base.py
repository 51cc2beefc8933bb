"""What every pulse-programmed device model shares.

A model describes one memristor by its conductance G in [g_min, g_max]. For a
pulse it works with a normalised distance u in [0, 1] from the bound the pulse
moves away from:

* potentiation (SET, v > v_set):    u = (G - g_min) / dG_r,  G = g_min + u dG_r
* depression (RESET, v < v_reset):  u = (g_max - G) / dG_r,  G = g_max - u dG_r

with dG_r = g_max - g_min. In u, both directions obey an ODE of the same form,
du/dt = drift(u, ...) > 0, so a model supplies only the drift and the exact
increase of u over a pulse (``step``), once, for one direction. This module
does the rest, identically for every model: threshold gating, device-to-device
sampling, cycle-to-cycle noise, counted clamping and the choice of backend.

Sign convention: v is the voltage across the device, top (row) electrode minus
bottom (column) electrode. v > v_set raises G, v < v_reset lowers it, and any
v_reset <= v <= v_set (or a pulse of zero width) leaves G exactly unchanged,
without noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ..checks import check_positive, check_range
from ..errors import ParameterError
from . import kernels, reference

BACKENDS = {"numba": kernels, "numpy": reference}
"""Backend name -> module providing ``count_switched`` and ``update_kernel``."""

_NO_NOISE = np.empty(0)


@dataclass(slots=True)
class UpdateStats:
    """Counters filled in by :meth:`DeviceModel.apply` and
    :meth:`DeviceModel.initial_conductance`; they accumulate over calls.

    Pass one wherever clamping may happen: it is the only record of it."""

    n_switched: int = 0
    """Device updates by a supra-threshold pulse of non-zero width (only these get noise)."""
    n_clipped: int = 0
    """Conductances clamped into [g_min, g_max] after noise (a clamp is counted, never silent)."""


@dataclass(frozen=True, slots=True)
class DeviceArrays:
    """Per-device rate constants, sampled once by :meth:`DeviceModel.sample`.

    The unit of the rates depends on the model (see its ``<Model>Arrays``).
    """

    rate_p: np.ndarray
    """Potentiation (SET) rate constant of each device; shape = the device array's shape."""
    rate_d: np.ndarray
    """Depression (RESET) rate constant of each device; same shape as ``rate_p``."""

    def __post_init__(self):
        if np.shape(self.rate_p) != np.shape(self.rate_d):
            raise ParameterError(f"rate_p {np.shape(self.rate_p)} and rate_d "
                                 f"{np.shape(self.rate_d)} must have the same shape")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the device array these parameters belong to."""
        return np.shape(self.rate_p)


def alias(field: str, doc: str) -> property:
    """A read-only model-specific name for a :class:`DeviceArrays` field."""
    return property(lambda self: getattr(self, field), doc=doc)


def lognormal(mean: float, rel_std: float, shape, rng: np.random.Generator) -> np.ndarray:
    """Draw positive values with the given mean and standard deviation ``rel_std * mean``.

    mu = ln(mean / sqrt(1 + rel_std**2)), sigma = sqrt(ln(1 + rel_std**2)). A zero
    spread returns ``mean`` everywhere and draws nothing from ``rng``.
    """
    if rel_std == 0:
        return np.full(shape, float(mean))
    var_log = math.log1p(rel_std ** 2)
    return rng.lognormal(math.log(mean) - 0.5 * var_log, math.sqrt(var_log), shape)


def _clamp(g: np.ndarray, g_min: float, g_max: float, stats: UpdateStats | None) -> np.ndarray:
    """Clip ``g`` in place into [g_min, g_max], adding the count to ``stats``."""
    if stats is not None:
        stats.n_clipped += int(np.count_nonzero((g < g_min) | (g > g_max)))
    return np.clip(g, g_min, g_max, out=g)


def _per_device(name: str, value, shape: tuple[int, ...], low: float) -> np.ndarray:
    """Flatten a scalar or an array broadcastable to ``shape`` for the kernels.

    A single value stays a length-1 array: the kernels read it with stride 0,
    so a scalar voltage or duration costs no full-size copy.
    """
    arr = np.asarray(value, dtype=float)
    if arr.size != 1:
        try:
            arr = np.broadcast_to(arr, shape)
        except ValueError:
            raise ParameterError(f"{name} has shape {arr.shape}, which does not broadcast "
                                 f"to the conductance shape {shape}") from None
    flat = np.ascontiguousarray(arr).reshape(-1)
    # Fast path: two reductions; only a failure pays for check_range's message.
    if flat.size:
        lo, hi = flat.min(), flat.max()
        if not (lo >= low and math.isfinite(lo) and math.isfinite(hi)):
            check_range(name, arr, low)
    return flat


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """Base of the device models: common parameters and the update machinery.

    A subclass adds its own parameters and supplies ``_step``, ``_drift``,
    ``arrays_type``, :meth:`nominal_rates`, ``_shapes`` and, if its rates are
    not already in fraction-of-range per second, ``_rate_scale``. All
    quantities are SI.
    """

    g_min: float = 100e-6 / 13
    """Lowest conductance (S), the fully RESET state (on/off ratio 13, as in the thesis)."""
    g_max: float = 100e-6
    """Highest conductance (S), the fully SET state."""
    v_set: float = 1.0
    """SET threshold (V, > 0): only v > v_set potentiates.

    1 V keeps the V/2 = 0.6 V half-select of a 1.2 V write inert."""
    v_reset: float = -1.0
    """RESET threshold (V, < 0): only v < v_reset depresses."""
    dt_max: float = 1e-6
    """Pulse width (s) that takes a nominal device from g_min to g_max (the model's time scale)."""
    eps_intra: float = 0.0
    """Cycle-to-cycle noise: std of the Gaussian added to a switched device (fraction of dG_r)."""
    eps_inter: float = 0.0
    """Device-to-device spread: std/mean of the log-normal per-device rate constants."""
    eps_inter_pairs: str = "independent"
    """How the spread is drawn for the two devices of a differential pair.

    ``"independent"``: every device draws its own rates (what separate devices
    do). ``"shared"``: both devices of a pair get the pair's potentiation and
    depression rates, as the thesis' code draws them. The weight G+ - G- then
    moves up and down by the same amount (in the linear limit), whereas
    independent draws also make each pair's weight drift one way."""
    init_std: float = 0.1
    """Std of the initial conductances as a fraction of the midpoint (g_min + g_max)/2."""
    init_mean: float | None = None
    """Mean of the initial conductances (S), within [g_min, g_max]; None: the midpoint.

    ``init_mean = g_min`` leaves half the devices at g_min and spreads the rest
    upwards (a half-normal of std init_std x midpoint): mostly RESET devices, as
    after a forming RESET, and the shape of Scellier 2024's initialisation
    (uniform draws clamped at 0 S) that deep resistive networks train well from."""

    _step: ClassVar[Callable]
    """Exact increase of u over a pulse: step(u, rate, dt, v_ratio, shape) -> du >= 0.

    Adding the increase to G (rather than mapping u back to G) keeps a tiny
    step from moving G by a rounding error the wrong way. Written with numpy
    functions so that it runs both on arrays (twin) and in numba (kernel)."""
    _drift: ClassVar[Callable]
    """ODE right-hand side: drift(u, rate, v_ratio, shape) -> du/dt (1/s)."""
    arrays_type: ClassVar[type] = DeviceArrays
    """The :class:`DeviceArrays` subclass that :meth:`sample` returns."""

    def __post_init__(self):
        check_range("g_min", self.g_min, 0.0, unit="S")
        check_range("g_max", self.g_max, self.g_min, low_open=True, unit="S")
        check_positive("v_set", self.v_set, unit="V")
        check_range("v_reset", self.v_reset, high=0.0, high_open=True, unit="V")
        check_positive("dt_max", self.dt_max, unit="s")
        check_range("eps_intra", self.eps_intra, 0.0, 1.0)
        check_range("eps_inter", self.eps_inter, 0.0, 10.0)
        if self.eps_inter_pairs not in ("independent", "shared"):
            raise ParameterError(f"eps_inter_pairs must be 'independent' or 'shared'; "
                                 f"got {self.eps_inter_pairs!r}")
        check_range("init_std", self.init_std, 0.0, 1.0)
        if self.init_mean is not None:
            check_range("init_mean", self.init_mean, self.g_min, self.g_max, unit="S")
        self._check_model()

    # ---- hooks for the subclasses ----------------------------------------
    def _check_model(self) -> None:
        """Validate the model's own parameters (raise ParameterError)."""

    def nominal_rates(self) -> tuple[float, float]:
        """Rate constants (potentiation, depression) of a nominal device."""
        raise NotImplementedError

    def _shapes(self) -> tuple[float, float]:
        """The non-linearity parameter passed to ``_step`` for (SET, RESET)."""
        raise NotImplementedError

    def _rate_scale(self) -> float:
        """Factor turning a rate constant into du/dt units (fraction of dG_r per second)."""
        return 1.0

    def update_kernel(self, engine=kernels):
        """The update function of ``engine`` (:mod:`.kernels` or :mod:`.reference`) for
        this model: by default the fused kernel compiled around :meth:`_step`."""
        return engine.update_kernel(type(self)._step)

    # ---- derived quantities ----------------------------------------------
    @property
    def dg_r(self) -> float:
        """Conductance range g_max - g_min (S)."""
        return self.g_max - self.g_min

    def kernel_constants(self) -> tuple[float, ...]:
        """The trailing scalar arguments of the update kernels, in order:
        (g_min, g_max, v_set, v_reset, shape_p, shape_d, rate_scale)."""
        # float() so that an int parameter does not trigger a second compilation.
        return tuple(float(c) for c in (self.g_min, self.g_max, self.v_set, self.v_reset,
                                        *self._shapes(), self._rate_scale()))

    # ---- sampling ---------------------------------------------------------
    def sample(self, shape, rng: np.random.Generator, *, pairs: bool = False) -> DeviceArrays:
        """Draw the device-to-device parameters of an array of devices, once.

        Parameters
        ----------
        shape : tuple of int
            Shape of the device array, e.g. ``(n_rows, n_cols)``.
        rng : numpy.random.Generator
            Source of randomness; potentiation rates are drawn first, then
            depression rates, independently. Nothing is drawn if ``eps_inter == 0``.
        pairs : bool
            The last axis holds differential pairs (G+, G-) side by side. With
            ``eps_inter_pairs == "shared"`` one draw per pair serves both devices.

        Returns
        -------
        DeviceArrays
            ``arrays_type`` instance whose two arrays have shape ``shape`` and
            log-normal entries of mean = the nominal rate and std = eps_inter * mean.
        """
        rate_p, rate_d = self.nominal_rates()
        if not (pairs and self.eps_inter_pairs == "shared"):
            return self.arrays_type(lognormal(rate_p, self.eps_inter, shape, rng),
                                    lognormal(rate_d, self.eps_inter, shape, rng))
        shape = tuple(shape)
        if shape[-1] % 2:
            raise ParameterError(f"pairs=True needs an even last axis; got shape {shape}")
        per_pair = (*shape[:-1], shape[-1] // 2)
        return self.arrays_type(np.repeat(lognormal(rate_p, self.eps_inter, per_pair, rng), 2, axis=-1),
                                np.repeat(lognormal(rate_d, self.eps_inter, per_pair, rng), 2, axis=-1))

    def initial_conductance(self, shape, rng: np.random.Generator,
                            stats: UpdateStats | None = None) -> np.ndarray:
        """Initial conductances (S), shape ``shape``.

        Drawn from N(g_mid, (init_std * g_mid)^2) with the midpoint
        g_mid = (g_min + g_max)/2, as the thesis' code does (or centred on
        ``init_mean`` with the same std, when it is set), then clipped into
        range (counted in ``stats.n_clipped``). The thesis text prints the mean
        as (g_max - g_min)/2 instead. For its on/off ratio of 13 that value is
        not near g_min (it sits at u = 0.42 of the range, and it would fall
        below g_min only for on/off < 3); it reads as the midpoint written in
        range-relative units, dropping the g_min offset. The midpoint puts a
        device equally far from both bounds for any on/off ratio, so SET and
        RESET start symmetric and a differential pair starts at w = 0 on average.
        ``init_std == 0`` gives the mean (midpoint or ``init_mean``) exactly and draws nothing.
        """
        mid = 0.5 * (self.g_min + self.g_max)
        mean = mid if self.init_mean is None else float(self.init_mean)
        if self.init_std == 0:
            return np.full(shape, mean)
        g = mean + self.init_std * mid * rng.standard_normal(shape)
        return _clamp(g, self.g_min, self.g_max, stats)

    # ---- noise-free physics (for tests and plots) -------------------------
    def closed_form(self, g, v, duration):
        """Exact noise-free conductance after one pulse, for a nominal device.

        Parameters
        ----------
        g, v, duration : float or array_like
            Conductance before the pulse (S), voltage across the device (V) and
            pulse width (s); broadcast together.

        Returns
        -------
        ndarray
            G after the pulse (S), broadcast shape. It is the exact solution of
            the model ODE and is *not* clamped: :meth:`apply` clamps (and counts).
        """
        g, v, dt = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (g, v, duration)))
        rate_p, rate_d = self.nominal_rates()
        new, _ = reference.pulse(self._step, g.ravel(), v.ravel(), dt.ravel(), rate_p, rate_d,
                                 *self.kernel_constants())
        return new.reshape(g.shape)

    def dgdt(self, g, v):
        """Right-hand side dG/dt (S/s) of the model ODE for a nominal device.

        ``g`` (S) and ``v`` (V) broadcast together; zero inside the thresholds.
        Written as ``f(g, v)`` so that ``solve_ivp(lambda t, y: m.dgdt(y, v), ...)``
        can check :meth:`closed_form`.
        """
        g, v = np.broadcast_arrays(np.asarray(g, dtype=float), np.asarray(v, dtype=float))
        up, down = reference.directions(v, 1.0, self.v_set, self.v_reset)
        rate_p, rate_d = (r * self._rate_scale() for r in self.nominal_rates())
        shape_p, shape_d = self._shapes()
        dg = self.dg_r
        out = np.zeros(g.shape)
        out[up] = dg * self._drift((g[up] - self.g_min) / dg, rate_p, v[up] / self.v_set, shape_p)
        out[down] = -dg * self._drift((self.g_max - g[down]) / dg, rate_d,
                                      v[down] / self.v_reset, shape_d)
        return out

    # ---- the pulse update -------------------------------------------------
    def apply(self, g, v, duration, arrays: DeviceArrays | None = None,
              rng: np.random.Generator | None = None, *, backend: str = "numba",
              out: np.ndarray | None = None, stats: UpdateStats | None = None) -> np.ndarray:
        """Apply one programming pulse to every device of an array.

        Parameters
        ----------
        g : array_like
            Conductances before the pulse (S), any shape; expected in
            [g_min, g_max]. Not modified unless passed as ``out`` too.
        v : float or array_like
            Voltage across each device (V), scalar or broadcastable to ``g``.
        duration : float or array_like
            Pulse width (s, >= 0), scalar or broadcastable to ``g``.
        arrays : DeviceArrays, optional
            Per-device rates from :meth:`sample` (shape of ``g``); None uses
            the nominal rates for every device.
        rng : numpy.random.Generator, optional
            Source of the cycle-to-cycle noise: one float64 standard normal per
            switched device, in C order. None (or ``eps_intra == 0``) adds no
            noise and draws nothing.
        backend : {"numba", "numpy"}
            The parallel numba kernel or its plain-numpy twin; they agree to
            rounding on the same inputs and noise.
        out : ndarray, optional
            C-contiguous float64 array of ``g``'s shape to write into (may be ``g``).
        stats : UpdateStats, optional
            Incremented by the number of switched and of clamped devices.

        Returns
        -------
        ndarray
            Conductances after the pulse (S), shape of ``g``, within [g_min, g_max].

        Raises
        ------
        ParameterError
            Unknown backend, shapes that do not match, a negative or
            non-finite duration, a non-finite voltage.
        """
        if backend not in BACKENDS:
            raise ParameterError(f"backend = {backend!r} is not one of {sorted(BACKENDS)}")
        engine = BACKENDS[backend]
        g = np.ascontiguousarray(g, dtype=float)
        out = self._output(out, g)
        if g.size == 0:
            return out
        v_flat = _per_device("v", v, g.shape, -math.inf)
        dt_flat = _per_device("duration", duration, g.shape, 0.0)
        rate_p, rate_d = self._rates(arrays, g.shape)

        constants = self.kernel_constants()
        z = _NO_NOISE
        if rng is not None and self.eps_intra > 0:
            # Draw in NumPy (numba's RNG is a separate stream), and only for the
            # devices that switch, so both backends consume the same numbers.
            v_set, v_reset = constants[2:4]
            z = rng.standard_normal(engine.count_switched(g.size, v_flat, dt_flat, v_set, v_reset))
        update = self.update_kernel(engine)
        n_switched, n_clipped = update(g.reshape(-1), v_flat, dt_flat, rate_p, rate_d, z,
                                       self.eps_intra * self.dg_r, out.reshape(-1), *constants)
        if stats is not None:
            stats.n_switched += int(n_switched)
            stats.n_clipped += int(n_clipped)
        return out

    def _output(self, out, g: np.ndarray) -> np.ndarray:
        if out is None:
            return np.empty_like(g)
        if (not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != g.shape
                or not out.flags.c_contiguous or not out.flags.writeable):
            raise ParameterError(f"out must be a writeable C-contiguous float64 array of shape "
                                 f"{g.shape}")
        return out

    def _rates(self, arrays: DeviceArrays | None, shape) -> tuple[np.ndarray, np.ndarray]:
        """Flat per-device rates, or length-1 nominal ones (read with stride 0)."""
        if arrays is None:
            return tuple(np.array([r]) for r in self.nominal_rates())
        if not isinstance(arrays, self.arrays_type):
            raise ParameterError(f"arrays must be a {self.arrays_type.__name__} from "
                                 f"{type(self).__name__}.sample(); got {type(arrays).__name__}")
        if arrays.shape != shape:
            raise ParameterError(f"arrays have shape {arrays.shape}, conductances {shape}")
        return tuple(np.ascontiguousarray(a, dtype=float).reshape(-1)
                     for a in (arrays.rate_p, arrays.rate_d))
