"""Update policies: turn a learning rule's statistic into signed pulse widths.

A rule computes one statistic per weight, for example the CD statistic
``N+ - N-`` summed over the mini-batch and the chains, with shape ``(rows, cols)``:
the tile's logical shape, bias row and column included. A policy turns it into a
matrix of signed pulse widths in seconds. A positive width potentiates the weight
(G+ up, G- down on a differential pair), a negative one depresses it, and zero
sends no pulse. The rule then writes it::

    widths = policy.step(stat)
    if widths.any():
        chip.pulse(tile, RowByRowWrite(widths))      # from circuits import RowByRowWrite

Policies (thesis Part II §2, ``shared/reference/thesis-notes.md``):

- :class:`Cst` (Alg. 1, Manhattan rule): a fixed width, sign only. **A statistic
  of exactly zero sends no pulse.** The thesis code does this; the printed Alg. 1
  would depress on zero (its else-branch). Zero means N+ = N-: the rule has no
  evidence either way, so no pulse is sent.
- :class:`RProp` (Alg. 2, RProp with weight back-tracking, Table 2.2): one width
  per weight, which grows by ``eta_plus`` while the statistic keeps its sign
  (capped at ``width0``) and shrinks by ``eta_minus`` after a reversal. A reversal
  pulse undoes the previous step. It uses only the signs of the statistic, i.e.
  neuron-count comparisons (N+ > N-, <, =), and never reads a conductance.
- :class:`Proportional`: ``scale * stat``, a software-like learning rate for the
  floating-point baseline with an ideal device.

Driver limits. Every policy takes ``limits=(dt_min, dt_max)`` (e.g.
``chip.pulse_limits``) and ``quantum``, the drivers' time resolution in s. Widths
are rounded to the nearest multiple of ``quantum`` (halves round up). A nonzero
request that rounds to zero or falls below ``dt_min`` sends no pulse and is
counted in ``n_dropped``. A width above ``dt_max`` is an error for Cst and RProp:
their widths never exceed ``width``/``width0``, which is checked against
``dt_max`` at construction. For Proportional, such a width is capped to the
largest allowed width and counted in ``n_capped``. ``n_requested`` counts nonzero
requests. All counters are cumulative. Nothing else is changed. The only
adjustment is that a width within 1e-9 (relative) of a bound after rounding is
snapped onto the bound, so that floating-point fuzz in ``k * quantum`` never
turns a legal width into an illegal one.
"""
from __future__ import annotations

import math

import numpy as np

from .width_limits import FUZZ as _FUZZ, NOT_FINITE, OVER, limit_widths

_TINY = np.finfo(np.float64).tiny


class PolicyError(ValueError):
    """A policy parameter or input is invalid; the message names it and its allowed range."""


def _positive_finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PolicyError(f"{name} = {value!r} must be a number in the allowed range (0, inf)") from None
    if not (math.isfinite(v) and v > 0):
        raise PolicyError(f"{name} = {value!r} is outside the allowed range (0, inf)")
    return v


class UpdatePolicy:
    """Base class: driver limits (``limits``, ``quantum``) and the counters.

    Subclasses implement :meth:`step`. ``policy(stat)`` is the same as ``policy.step(stat)``.
    """

    kind = "UpdatePolicy"

    def __init__(self, *, limits=None, quantum=None):
        if limits is None:
            dt_min, dt_max = 0.0, math.inf
        else:
            try:
                dt_min, dt_max = (float(v) for v in limits)
            except (TypeError, ValueError):
                raise PolicyError(f"limits = {limits!r} must be a pair (dt_min, dt_max) of widths in s") from None
            if not (math.isfinite(dt_min) and 0 <= dt_min <= dt_max and dt_max > 0) or math.isnan(dt_max):
                raise PolicyError(f"limits = {limits!r}: need 0 <= dt_min <= dt_max, dt_max > 0, "
                                  f"dt_min finite (allowed range of each: [0, inf) s)")
        self.dt_min, self.dt_max = dt_min, dt_max
        self.quantum = None if quantum is None else _positive_finite("quantum", quantum)
        # the largest width the drivers can make: dt_max, or the largest multiple of quantum below it
        if self.quantum is None or not math.isfinite(dt_max):
            self.max_width = dt_max
        else:
            k = math.floor(dt_max / self.quantum * (1 + _FUZZ))
            self.max_width = min(k * self.quantum, dt_max)
        if self.max_width <= 0 or self.max_width < dt_min * (1 - _FUZZ):
            raise PolicyError(f"quantum = {quantum!r} s: no multiple of it lies within limits "
                              f"[{dt_min:g}, {dt_max:g}] s (allowed: quantum <= dt_max with a multiple >= dt_min)")
        self.n_requested = 0
        self.n_dropped = 0
        self.n_capped = 0

    # ---------------------------------------------------------------------------------- driver limits
    def quantise(self, magnitude):
        """Round nonnegative widths to the nearest multiple of ``quantum`` (unchanged without one)."""
        m = np.asarray(magnitude, dtype=np.float64)
        if self.quantum is None:
            return m.copy()
        return np.floor(m / self.quantum + 0.5) * self.quantum

    def _check_fixed_width(self, name: str, width: float) -> None:
        """A width that Cst/RProp will send must be a legal driver width."""
        w = float(self.quantise(width))
        if w > self.dt_max * (1 + _FUZZ):
            raise PolicyError(f"{name} = {width:g} s exceeds the drivers' dt_max (allowed range (0, {self.dt_max:g}] s)")
        if w <= 0 or w < self.dt_min * (1 - _FUZZ):
            raise PolicyError(f"{name} = {width:g} s rounds to {w:g} s, below the drivers' shortest pulse: "
                              f"every pulse would be dropped (allowed range [{self.dt_min:g}, {self.dt_max:g}] s"
                              + (f", quantum {self.quantum:g} s)" if self.quantum else ")"))

    def _apply_limits(self, requested, *, cap: bool) -> np.ndarray:
        """Quantise, then drop (count) widths below dt_min and cap (count) or reject those above dt_max."""
        return self._limited(requested, scale=1.0, sign_only=False, cap=cap)

    def _limited(self, values, *, scale: float, sign_only: bool, cap: bool, backend: str = "numba") -> np.ndarray:
        """``_apply_limits(scale * values)`` (or of ``scale * sign(values)``) in one pass.

        ``values`` must be finite (a statistic with NaN or inf is rejected here).
        """
        out, status, n_nonzero, n_dropped, n_over = limit_widths(
            values, scale=scale, sign_only=sign_only, quantum=self.quantum, max_width=self.max_width,
            dt_min=self.dt_min, cap=cap, backend=backend)
        if status == NOT_FINITE:
            raise PolicyError("statistic must be finite (allowed range (-inf, inf)); it holds NaN or inf")
        if status == OVER:
            v = np.asarray(values, dtype=np.float64)
            req = scale * np.sign(v) if sign_only else scale * v
            widest = float(np.max(self.quantise(np.abs(req))))
            raise PolicyError(f"{type(self).__name__}: width {widest:g} s exceeds the drivers' "
                              f"dt_max (allowed range (0, {self.dt_max:g}] s)")
        self.n_requested += n_nonzero
        self.n_dropped += n_dropped
        self.n_capped += n_over
        return out

    @staticmethod
    def _statistic(stat, shape=None) -> np.ndarray:
        s = np.asarray(stat, dtype=np.float64)
        if shape is not None and s.shape != tuple(shape):
            raise PolicyError(f"statistic has shape {s.shape}; expected {tuple(shape)}")
        if not np.all(np.isfinite(s)):
            raise PolicyError("statistic must be finite (allowed range (-inf, inf)); it holds NaN or inf")
        return s

    # ---------------------------------------------------------------------------------- interface
    def step(self, stat) -> np.ndarray:
        """Signed pulse widths (s) for one learning step, same shape as ``stat``."""
        raise NotImplementedError

    def __call__(self, stat) -> np.ndarray:
        return self.step(stat)

    def _params(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        """Everything needed to resume: numpy arrays for per-weight state, Python scalars otherwise."""
        return {"policy": self.kind, **self._params(), "n_requested": self.n_requested,
                "n_dropped": self.n_dropped, "n_capped": self.n_capped, **self._arrays()}

    def _arrays(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; it must come from the same kind of policy with the same parameters."""
        state = dict(state)
        if state.get("policy") != self.kind:
            raise PolicyError(f"state['policy'] = {state.get('policy')!r}; expected {self.kind!r}")
        for name, value in self._params().items():
            if name not in state:
                raise PolicyError(f"state is missing {name!r}")
            if not np.isclose(float(state[name]), value, rtol=1e-12, atol=0):
                raise PolicyError(f"state[{name!r}] = {state[name]!r} differs from this policy's {name} = {value!r}")
        counters = {}
        for name in ("n_requested", "n_dropped", "n_capped"):
            if name not in state:
                raise PolicyError(f"state is missing {name!r}")
            v = state[name]
            if not (float(v) == int(v) and int(v) >= 0):
                raise PolicyError(f"state[{name!r}] = {v!r} is outside the allowed range: integers >= 0")
            counters[name] = int(v)
        self._load_arrays(state)
        self.n_requested, self.n_dropped, self.n_capped = (counters[k] for k in ("n_requested", "n_dropped",
                                                                                  "n_capped"))

    def _load_arrays(self, state: dict) -> None:
        pass

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        lim = f", limits=({self.dt_min:g}, {self.dt_max:g})" if (self.dt_min or math.isfinite(self.dt_max)) else ""
        q = f", quantum={self.quantum:g}" if self.quantum else ""
        return f"{type(self).__name__}({params}{lim}{q})"


class Cst(UpdatePolicy):
    """Alg. 1: every weight with a nonzero statistic gets one pulse of ``width`` s along its sign.

    A statistic of exactly zero sends no pulse (see the module docstring).
    """

    kind = "Cst"

    def __init__(self, width: float, *, limits=None, quantum=None):
        super().__init__(limits=limits, quantum=quantum)
        self.width = _positive_finite("width", width)
        self._check_fixed_width("width", self.width)

    def step(self, stat) -> np.ndarray:
        return self._limited(stat, scale=self.width, sign_only=True, cap=False)

    def _params(self):
        return {"width": self.width}


class RProp(UpdatePolicy):
    """Alg. 2: RProp with weight back-tracking, one pulse width per weight.

    Parameters
    ----------
    shape : (rows, cols)
        The statistic's shape (the tile's logical shape).
    width0 : float
        Initial width of every weight, s; also the cap (no lower bound).
    eta_plus : float, >= 1
        Growth factor while the statistic keeps its sign (thesis: 1.01).
    eta_minus : float in (0, 1], default ``1 / eta_plus``
        Shrink factor after a reversal.

    At step n, with ``p = sign(stat_n) * stored_sign`` (``stored_sign`` is the sign of
    the previous statistic, or 0 just after a reversal), for each weight:

    - ``p > 0``: ``dt <- min(eta_plus * dt, width0)``; pulse ``sign(stat_n) * dt``.
    - ``p < 0``: back-track: pulse ``-stored_sign * dt`` with the current ``dt``. This
      is the reverse of the previous step's pulse, which used the same ``dt``, and it
      has the sign of ``stat_n``. Then ``dt <- eta_minus * dt`` (used next time), and
      0 is stored, so the next step takes the ``p = 0`` branch and the error is not
      corrected twice.
    - ``p = 0``: pulse ``sign(stat_n) * dt`` with ``dt`` unchanged; a zero statistic
      sends no pulse.

    Then ``stored_sign <- sign(stat_n)``, except after a reversal. The nine
    (previous, current) combinations of >, <, = are Table 2.2. The first step sees
    ``stored_sign = 0`` everywhere. Widths stay in (0, width0]: a width that would
    underflow to 0 after very many reversals is held at the smallest normal float
    (about 2e-308 s). Any width below the drivers' dt_min is dropped and counted
    anyway.
    """

    kind = "RProp"

    def __init__(self, shape, width0: float, eta_plus: float = 1.01, eta_minus: float | None = None, *,
                 limits=None, quantum=None):
        super().__init__(limits=limits, quantum=quantum)
        try:
            shape = tuple(int(n) for n in shape)
        except (TypeError, ValueError):
            raise PolicyError(f"shape = {shape!r} must be (rows, cols) with positive integers") from None
        if len(shape) != 2 or min(shape) < 1:
            raise PolicyError(f"shape = {shape!r} must be (rows, cols) with positive integers (allowed range >= 1)")
        self.shape = shape
        self.width0 = _positive_finite("width0", width0)
        self._check_fixed_width("width0", self.width0)
        self.eta_plus = float(eta_plus)
        if not (math.isfinite(self.eta_plus) and self.eta_plus >= 1):
            raise PolicyError(f"eta_plus = {eta_plus!r} is outside the allowed range [1, inf)")
        self.eta_minus = 1.0 / self.eta_plus if eta_minus is None else float(eta_minus)
        if not (0 < self.eta_minus <= 1):
            raise PolicyError(f"eta_minus = {eta_minus!r} is outside the allowed range (0, 1]")
        self._dt = np.full(shape, self.width0)
        self._sign = np.zeros(shape, dtype=np.int8)

    @property
    def widths(self) -> np.ndarray:
        """Current per-weight width Δt_ij, s (a read-only copy)."""
        w = self._dt.copy()
        w.flags.writeable = False
        return w

    @property
    def stored_sign(self) -> np.ndarray:
        """Sign of the previous statistic per weight (-1, 0, +1; 0 after a reversal), a read-only copy."""
        s = self._sign.copy()
        s.flags.writeable = False
        return s

    def step(self, stat) -> np.ndarray:
        s = np.sign(self._statistic(stat, self.shape)).astype(np.int8)
        p = s * self._sign
        grow, back = p > 0, p < 0
        dt = self._dt.copy()
        dt[grow] = np.minimum(dt[grow] * self.eta_plus, self.width0)
        requested = s * dt                               # p > 0 (grown dt) and p = 0 (unchanged dt)
        requested[back] = -self._sign[back] * dt[back]   # undo the previous pulse, same dt
        dt[back] = np.maximum(dt[back] * self.eta_minus, _TINY)
        new_sign = np.where(back, 0, s).astype(np.int8)
        out = self._apply_limits(requested, cap=False)
        self._dt, self._sign = dt, new_sign
        return out

    def _params(self):
        return {"width0": self.width0, "eta_plus": self.eta_plus, "eta_minus": self.eta_minus}

    def _arrays(self):
        return {"widths": self._dt.copy(), "stored_sign": self._sign.copy()}

    def _load_arrays(self, state):
        for name in ("widths", "stored_sign"):
            if name not in state:
                raise PolicyError(f"state is missing {name!r}")
        dt = np.array(state["widths"], dtype=np.float64)
        sg = np.asarray(state["stored_sign"])
        for name, a in (("widths", dt), ("stored_sign", sg)):
            if a.shape != self.shape:
                raise PolicyError(f"state[{name!r}] has shape {a.shape}; expected {self.shape}")
        if not (np.all(np.isfinite(dt)) and np.all(dt > 0) and np.all(dt <= self.width0)):
            raise PolicyError(f"state['widths'] must lie in the allowed range (0, width0 = {self.width0:g}] s")
        if not np.all(np.isin(sg, (-1, 0, 1))):
            raise PolicyError("state['stored_sign'] must hold only -1, 0, +1")
        self._dt, self._sign = dt, sg.astype(np.int8)


class Proportional(UpdatePolicy):
    """widths = ``scale * stat`` (s per unit of statistic): a software-like learning rate.

    Widths above the drivers' dt_max are capped and counted (``n_capped``).
    """

    kind = "Proportional"

    def __init__(self, scale: float, *, limits=None, quantum=None):
        super().__init__(limits=limits, quantum=quantum)
        self.scale = _positive_finite("scale", scale)

    def step(self, stat) -> np.ndarray:
        return self._limited(stat, scale=self.scale, sign_only=False, cap=True)

    def _params(self):
        return {"scale": self.scale}
