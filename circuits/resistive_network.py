"""A deep resistive network (DRN): memristive crossbars, diode clamps and bidirectional amplifiers.

The circuit (Kendall et al. 2020; Scellier 2024), layer by layer, with layer 0
the inputs and layer L the outputs:

- **Input nodes** ``x0_j`` are held by ideal voltage sources at the applied
  voltages (the caller duplicates and inverts the pixels, see
  :func:`learning.resistive_ep.duplicate_inverted`, because conductances are
  positive).
- **Crossbar k** (named ``W{k}``, k = 0..L-1) joins the *row lines* of layer
  k to every node of layer k+1 through one memristive device each (a single
  device per weight: ``pairs=False``). Its rows are the n_k amplifier outputs
  of layer k, then one extra row per entry of ``bias_voltages``, each held by
  an ideal source (the bias lines). The device conductances are the only
  trainable state, and they change only through programming pulses
  (:meth:`ResistiveNetwork.pulse`).
- **Bidirectional amplifier** between node ``x{k}_i`` and row line ``a{k}_i``,
  modelled as two ideal controlled sources with the same gain A_k:

  * forward, a VCVS: ``V(a{k}_i) = A_k V(x{k}_i)``, which drives the row line
    and draws no current from ``x{k}_i``;
  * backward, a CCCS: it draws ``A_k I`` out of ``x{k}_i`` (to ground), where I
    is the current the VCVS delivers into the crossbar row.

  Together they form an ideal transformer of ratio A_k: lossless and
  reciprocal, so the whole circuit still minimises one energy (below) and
  equilibrium propagation stays exact. A forward gain A > 1 compensates the
  attenuation of the resistive divider; the backward current gain carries the
  error currents back towards the inputs. Any other backward gain would
  break the symmetry (no energy function, EP biased). Not modelled: finite
  open-loop gain, bandwidth, offsets, rails. A_0 amplifies the input sources
  (Scellier's ``input_gain``); its CCCS loads an ideal source and does nothing.
- **Diode clamps** on every hidden node (and on output nodes if
  ``output_diodes``): a diode from the node to a source at +V_b (it conducts
  when the node rises above about +V_b) and one from a source at -V_b to the
  node (below -V_b); or, with ``DiodeClamp(sides="split")``, only the lower
  diode on the first half of a layer's nodes and only the upper one on the
  rest (Scellier's excitatory and inhibitory rectifying units). SPICE level-1
  DC law with SPICE's GMIN across each junction (:func:`circuits.mna.junction_current`, the same code our MNA
  solver uses against ngspice). The node voltage is therefore a soft-clipped
  weighted average of its neighbours (Millman's theorem plus the clamp).
- **Nudging** (the second phase of EP): a current ``beta (target - V_out)`` is
  injected into each output node, i.e. a conductance beta (S) to a source at
  the target voltage; a negative beta (the -beta phase of the centred
  estimator) is an active negative conductance.

Energy. With row voltages r_k = (A_k x_k, bias voltages), every node voltage
at the DC operating point is the stationary point (the minimum) of

    E(x) = sum_k 1/2 sum_ij G_k,ij (r_k,i - x_{k+1},j)^2
           + sum_(clamped nodes) [co-content of the two diodes]
           + beta/2 ||x_L - target||^2,

and dE/dx at a node is exactly the KCL residual there (the A_k factor of the
downstream term is the CCCS). E is strictly convex in x for beta >= 0 (and
for a negative beta small against the output nodes' conductances), so the
operating point is unique. dE/dG_ij = 1/2 (voltage across device ij)^2, which
is all EP needs.

Solver. Exact, not a fixed number of sweeps: Newton's method on the nodal
equations of all hidden and output nodes jointly, batched over the inputs
with numpy. Layers only couple to their neighbours and nodes within a layer
do not touch, so the Jacobian is block tridiagonal with *diagonal* diagonal
blocks; one Newton step is a block Thomas elimination from the first hidden
layer upwards (the first block is diagonal, so its cost is one small
triple product; later blocks are dense, of the size of their layer). Newton
converges quadratically, so the operating point is exact to rounding, which
Scellier's coordinate descent with 4 sweeps is not; the input crossbar (the
biggest one) enters only through the product ``r_0 G_0``, computed once per
settle and shared by the free and nudged phases. Diode junction steps are
limited as SPICE does (pnjlim), so the exponential never overshoots. An
iteration is accepted when no step was limited and the largest node update
is below ``vntol + reltol * max|V|``; otherwise, after ``max_iterations``,
:class:`crossbar.errors.ConvergenceError` is raised. A node with no device
conductance at all (only the near-zero leakage of reverse-biased diodes)
raises :class:`crossbar.errors.FloatingNodeError` naming it.

Reads do not disturb the devices in this model (quasi-static DC at read
voltages); every settle counts, in ``counters.read_over_threshold``, the
(sample, crossbar) pairs in which some device saw a voltage beyond its
programming thresholds, so a model whose voltages would disturb a real array
is visible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crossbar.checks import check_finite_array, check_range
from crossbar.errors import ConvergenceError, FloatingNodeError, ParameterError
from crossbar.program import program
from crossbar.terminals import INF, driver_conductance
from crossbar.tile import Tile

from .chip import ProgramSettings
from .mna import DEFAULT_GMIN, THERMAL_VOLTAGE, junction_current
from .spice import Deck

__all__ = ["DiodeClamp", "DRNSolver", "DRNOperatingPoint", "DRNCounters", "ResistiveNetwork"]


@dataclass(frozen=True)
class DiodeClamp:
    """The clamping diodes of a node and their bias sources (SPICE level-1, DC).

    ``sides = "both"``: every clamped node has both diodes, a soft clip to about
    [-V_b - 0.6, V_b + 0.6] V. ``sides = "split"``: the first half of each
    clamped layer's nodes has only the lower diode (from -V_b to the node:
    the node cannot go much below -V_b, an "excitatory" unit, a rectifier), the
    second half only the upper one (an "inhibitory" unit, clipped from above),
    as in Scellier 2024's DRN (ideal diodes to ground there)."""

    v_bias: float = 0.0
    """Bias source voltage V_b (V, >= 0): one diode's cathode sits at +V_b, the other's anode at -V_b."""
    sides: str = "both"
    """``"both"`` diodes on every clamped node, or ``"split"``: lower diode on the first half, upper on the rest."""
    i_sat: float = 1e-14
    """Saturation current IS of each diode (A, > 0)."""
    n: float = 1.0
    """Emission coefficient N (dimensionless, > 0)."""
    gmin: float = DEFAULT_GMIN
    """Conductance across each junction (S, >= 0): SPICE's GMIN, kept so that ngspice agrees."""

    def __post_init__(self):
        check_range("v_bias", self.v_bias, 0.0, 1e3, unit="V")
        check_range("i_sat", self.i_sat, 0.0, 1.0, low_open=True, unit="A")
        check_range("n", self.n, 0.0, 100.0, low_open=True)
        check_range("gmin", self.gmin, 0.0, 1.0, unit="S")
        if self.sides not in ("both", "split"):
            raise ParameterError(f"sides must be 'both' or 'split'; got {self.sides!r}")

    def masks(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(upper, lower)``: which of a layer's ``n`` nodes have the upper and the lower diode."""
        if self.sides == "both":
            return np.ones(n, bool), np.ones(n, bool)
        lower = np.arange(n) < n // 2
        return ~lower, lower

    @property
    def vte(self) -> float:
        """N times the thermal voltage at 27 C (V)."""
        return self.n * THERMAL_VOLTAGE

    @property
    def v_crit(self) -> float:
        """SPICE's critical junction voltage, above which Newton steps are limited (V)."""
        return self.vte * math.log(self.vte / (math.sqrt(2.0) * self.i_sat))

    def current(self, v):
        """Current out of nodes at ``v`` (..., n) into their diodes (A) and its derivative (S)."""
        upper, lower = self.masks(np.shape(v)[-1])
        i_up, g_up = junction_current(v - self.v_bias, self.i_sat, self.vte, self.gmin)
        i_dn, g_dn = junction_current(-self.v_bias - v, self.i_sat, self.vte, self.gmin)
        return upper * i_up - lower * i_dn, upper * g_up + lower * g_dn


@dataclass(frozen=True)
class DRNSolver:
    """Tolerances of the Newton solve of the operating point."""

    max_iterations: int = 200
    """Newton iterations before :class:`ConvergenceError`."""
    vntol: float = 1e-11
    """Absolute tolerance on the last node-voltage update (V)."""
    reltol: float = 1e-11
    """Tolerance on the last update relative to the largest node voltage."""

    def __post_init__(self):
        check_range("max_iterations", self.max_iterations, 1, 1e6)
        check_range("vntol", self.vntol, 0.0, 1.0, low_open=True, unit="V")
        check_range("reltol", self.reltol, 0.0, 1.0)


@dataclass
class DRNCounters:
    """What the network counted: nothing clamped or out of range goes unrecorded."""

    settles: int = 0
    """Operating points solved (one per sample and phase)."""
    newton_iterations: int = 0
    """Newton iterations summed over all settles (one batched iteration counts once)."""
    read_over_threshold: int = 0
    """(sample, crossbar) pairs where some device saw a voltage outside [v_reset, v_set] while settling."""
    pulse_events: int = 0
    device_clipped: int = 0


@dataclass
class DRNOperatingPoint:
    """Node voltages of one settle, everything an instrument probing the nodes would see.

    ``layers[l]`` is (B, n_l): layer 0 the applied input voltages, then the
    hidden layers, then the outputs. ``rows[k]`` is (B, M_k): the row-line
    voltages of crossbar k (amplifier outputs, then bias lines), so the voltage
    across device (i, j) of crossbar k is ``rows[k][:, i] - layers[k+1][:, j]``.
    """

    layers: list
    rows: list
    iterations: int
    kcl_residual: float
    """Largest |KCL residual| over the nodes and samples (A)."""
    kcl_scale: float
    """Largest sum of |branch currents| at a node (A): the scale of ``kcl_residual``."""

    @property
    def outputs(self) -> np.ndarray:
        return self.layers[-1]


class ResistiveNetwork:
    """A layered deep resistive network of memristive crossbars (see the module docstring).

    Parameters
    ----------
    layer_sizes : sequence of int
        (n_0 inputs, n_1, ..., n_L outputs), at least two layers.
    device : crossbar.devices.DeviceModel
        Model of every memristor (sampled once per crossbar, device-to-device).
    gains : float or sequence of float
        Amplifier gain A_k (> 0) of each crossbar's rows, one per crossbar or one for all.
    diode : DiodeClamp
    output_diodes : bool
        Clamp the output nodes too (default: linear outputs, as Scellier's DRN).
    bias_voltages : sequence of float
        Voltages (V) of the bias rows added to every crossbar; () for none.
    settings : circuits.ProgramSettings
        Programming drivers: scheme, v_write, pulse limits, v_read, read noise.
    solver : DRNSolver
    conductances : list of (M_k, n_{k+1}) arrays, optional
        Initial conductances (S); default ``device.initial_conductance``.
    rng : numpy.random.Generator
        Device sampling, initial conductances, programming noise, read noise.
    """

    def __init__(self, layer_sizes, device, *, gains=1.0, diode: DiodeClamp = DiodeClamp(),
                 output_diodes: bool = False, bias_voltages=(1.0, -1.0),
                 settings: ProgramSettings = ProgramSettings(), solver: DRNSolver = DRNSolver(),
                 conductances=None, rng: np.random.Generator | None = None, seed: int | None = None,
                 source: str = ""):
        sizes = tuple(int(n) for n in layer_sizes)
        if len(sizes) < 2 or any(n < 1 or n != s for n, s in zip(sizes, layer_sizes)):
            raise ParameterError(f"layer_sizes = {tuple(layer_sizes)!r}: need at least two layers of "
                                 f">= 1 node (allowed range of each: [1, inf))")
        self.layer_sizes = sizes
        n_cross = len(sizes) - 1
        g = np.broadcast_to(np.asarray(gains, dtype=float), (n_cross,)) if np.ndim(gains) == 0 \
            else np.asarray(gains, dtype=float)
        if g.shape != (n_cross,):
            raise ParameterError(f"gains must be one value or {n_cross} (one per crossbar); got {np.shape(gains)}")
        check_range("gains", g, 0.0, 1e6, low_open=True)
        self.gains = tuple(float(a) for a in g)
        self.bias_voltages = tuple(float(v) for v in check_finite_array("bias_voltages", bias_voltages).ravel())
        self.diode = diode
        self.output_diodes = bool(output_diodes)
        self.settings = settings
        self.solver = solver
        self.device = device
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.seed = seed
        self.source = source
        self.history = None
        self.counters = DRNCounters()
        self._tiles: dict[str, Tile] = {}
        self._arrays: dict = {}
        for k in range(n_cross):
            shape = (sizes[k] + len(self.bias_voltages), sizes[k + 1])
            name = f"W{k}"
            if conductances is None:
                g0 = device.initial_conductance(shape, self.rng)
            else:
                g0 = np.array(conductances[k], dtype=float)
                if g0.shape != shape:
                    raise ParameterError(f"conductances[{k}] has shape {g0.shape}; crossbar {name} is {shape}")
                check_range(f"conductances[{k}]", g0, device.g_min, device.g_max, unit="S")
            self._tiles[name] = Tile(g0)
            self._arrays[name] = device.sample(shape, self.rng)

    # ------------------------------------------------------------------ structure
    @property
    def crossbars(self) -> tuple[str, ...]:
        """Names of the crossbars, W0 (inputs to first hidden layer) to W{L-1} (to the outputs)."""
        return tuple(self._tiles)

    @property
    def tiles(self) -> tuple[str, ...]:
        """The crossbars' names (what a Chip calls its tiles)."""
        return self.crossbars

    def tile_shape(self, name: str) -> tuple[int, int]:
        """Shape of crossbar ``name`` (single devices: logical and physical shapes agree)."""
        return self.crossbar_shape(name)

    physical_shape = tile_shape

    def crossbar_shape(self, name: str) -> tuple[int, int]:
        """(row lines incl. bias rows, column nodes) of a crossbar."""
        return self.tile(name).shape

    def tile(self, name: str) -> Tile:
        """The crossbar's :class:`crossbar.tile.Tile` (hardware side; tests and benches only)."""
        try:
            return self._tiles[name]
        except KeyError:
            raise ParameterError(f"no crossbar named {name!r}; crossbars: {', '.join(self._tiles)}") from None

    @property
    def pulse_limits(self) -> tuple[float, float]:
        """Shortest and longest pulse width the drivers make, s."""
        return self.settings.dt_min, self.settings.dt_max

    def _clamped(self, layer: int) -> bool:
        L = len(self.layer_sizes) - 1
        return 1 <= layer < L or (layer == L and self.output_diodes)

    def _g(self, k: int) -> np.ndarray:
        return self._tiles[f"W{k}"].g

    # ------------------------------------------------------------------ operating point
    def operating_point(self, inputs, *, nudge=None, x0=None) -> DRNOperatingPoint:
        """DC operating point for input voltages ``inputs`` (B, n_0) or (n_0,), V.

        ``nudge = (target (B, n_L) V, beta S)`` injects ``beta (target - V_out)``
        into the output nodes. ``x0`` (a previous :class:`DRNOperatingPoint`)
        warm-starts Newton.
        """
        return self.operating_points(inputs, [nudge], x0=x0)[0]

    def operating_points(self, inputs, nudges, *, x0=None, warm_start: bool = True) -> list:
        """Several settles with the same inputs, e.g. ``[None, (y, beta), (y, -beta)]``.

        The input crossbar's drive is computed once for all of them; with
        ``warm_start`` each settle after the first starts from the first one's
        solution. Returns a list of :class:`DRNOperatingPoint`.
        """
        u = self._inputs(inputs)
        self._check_floating()
        r0 = self._rows(0, u)
        drive0 = r0 @ self._g(0)            # the (B, n_1) current drive of the biggest crossbar
        out = []
        start = x0
        for nudge in nudges:
            op = self._solve(u, r0, drive0, self._nudge(nudge, u.shape[0]), start)
            out.append(op)
            if warm_start and start is None:
                start = op
        return out

    def _inputs(self, inputs) -> np.ndarray:
        u = check_finite_array("inputs", inputs)
        u = u[None] if u.ndim == 1 else u
        if u.ndim != 2 or u.shape[1] != self.layer_sizes[0]:
            raise ParameterError(f"inputs must have shape (B, {self.layer_sizes[0]}) or "
                                 f"({self.layer_sizes[0]},); got {np.shape(inputs)}")
        return u

    def _nudge(self, nudge, B):
        if nudge is None:
            return None
        target, beta = nudge
        y = check_finite_array("target", target)
        y = y[None] if y.ndim == 1 else y
        n = self.layer_sizes[-1]
        if y.ndim != 2 or y.shape[1] != n or y.shape[0] not in (1, B):
            raise ParameterError(f"target must have shape ({B}, {n}) or ({n},); got {np.shape(target)}")
        y = np.broadcast_to(y, (B, n))
        check_range("beta", beta, -1e3, 1e3, unit="S")
        return y, float(beta)

    def _rows(self, k: int, x: np.ndarray) -> np.ndarray:
        """Row-line voltages of crossbar k: amplified layer-k nodes, then the bias lines."""
        r = self.gains[k] * x
        if self.bias_voltages:
            r = np.concatenate([r, np.broadcast_to(self.bias_voltages, (x.shape[0], len(self.bias_voltages)))],
                               axis=1)
        return r

    def _check_floating(self):
        L = len(self.layer_sizes) - 1
        for l in range(1, L + 1):
            total = self._g(l - 1).sum(axis=0).copy()
            if l < L:
                total += self.gains[l] ** 2 * self._g(l)[:self.layer_sizes[l]].sum(axis=1)
            bad = np.flatnonzero(~(total > 0))
            if bad.size:
                names = [f"x{l}_{j}" for j in bad]
                raise FloatingNodeError(f"node{'s' if bad.size > 1 else ''} {', '.join(names[:10])} of layer {l} "
                                        f"{'have' if bad.size > 1 else 'has'} no device conductance to any other "
                                        f"node (only diode leakage): no unique operating point", names)

    def _gradient(self, xs, r0, drive0, nudge):
        """KCL residual (current leaving each node, A) and the Hessian's diagonal, per layer."""
        L = len(self.layer_sizes) - 1
        grads, diags = [], []
        for l in range(1, L + 1):
            G_up = self._g(l - 1)
            x = xs[l]
            if l == 1:
                g = x * G_up.sum(axis=0) - drive0
            else:
                g = x * G_up.sum(axis=0) - self._rows(l - 1, xs[l - 1]) @ G_up
            d = np.broadcast_to(G_up.sum(axis=0), x.shape).copy()
            if l < L:
                A = self.gains[l]
                Gx = self._g(l)[:self.layer_sizes[l]]
                rs = Gx.sum(axis=1)
                g = g + A * (A * x * rs - xs[l + 1] @ Gx.T)
                d += A * A * rs
            if self._clamped(l):
                i_d, g_d = self.diode.current(x)
                g = g + i_d
                d += g_d
            if l == L and nudge is not None:
                y, beta = nudge
                g = g + beta * (x - y)
                d += beta
            grads.append(g)
            diags.append(d)
        return grads, diags

    def _newton_step(self, grads, diags):
        """Solve H dx = -g by block Thomas elimination over the layers (see the module docstring)."""
        L = len(grads)
        ys, Ps, Ss = [], [], []
        w = -grads[0]
        S = diags[0]                      # layer 1: diagonal
        for l in range(1, L + 1):
            if l > 1:
                C = -self.gains[l - 1] * self._g(l - 1)[:self.layer_sizes[l - 1]]   # coupling (n_{l-1}, n_l)
                P = Ps[-1]                                                          # S_{l-1}^-1 C, (B, n_{l-1}, n_l)
                S = np.einsum("ij,bik->bjk", C, P)
                S = -S
                S[:, np.arange(S.shape[1]), np.arange(S.shape[1])] += diags[l - 1]
                w = -grads[l - 1] - np.einsum("ij,bi->bj", C, ys[-1])
            Ss.append(S)
            if l == 1:
                ys.append(w / S)
            else:
                ys.append(np.linalg.solve(S, w[..., None])[..., 0])
            if l < L:
                C_next = -self.gains[l] * self._g(l)[:self.layer_sizes[l]]
                if l == 1:
                    Ps.append(C_next[None] / S[:, :, None])
                else:
                    Ps.append(np.linalg.solve(S, np.broadcast_to(C_next, (S.shape[0],) + C_next.shape)))
        dx = [None] * L
        dx[L - 1] = ys[L - 1]
        for l in range(L - 2, -1, -1):
            dx[l] = ys[l] - np.einsum("bij,bj->bi", Ps[l], dx[l + 1])
        return dx

    def _initial_guess(self, u, drive0):
        """A forward pass: each layer at the weighted average of the layer below, clipped near the clamp.

        Only a starting point (it ignores the downstream loads); from it Newton
        needs a few iterations instead of the ~10 that pnjlim's logarithmic ramp
        takes from 0 V when the diodes conduct.
        """
        L = len(self.layer_sizes) - 1
        xs = [u]
        clip = self.diode.v_bias + self.diode.v_crit
        for l in range(1, L + 1):
            G = self._g(l - 1)
            drive = drive0 if l == 1 else self._rows(l - 1, xs[-1]) @ G
            x = drive / G.sum(axis=0)
            if self._clamped(l):
                upper, lower = self.diode.masks(x.shape[-1])
                x = np.clip(x, np.where(lower, -clip, -np.inf), np.where(upper, clip, np.inf))
            xs.append(x)
        return xs

    def _limit(self, x_old, x_new):
        """SPICE pnjlim on both junctions of every clamped node; returns (x, any limited)."""
        dio = self.diode
        vte, vcrit = dio.vte, dio.v_crit
        limited = np.zeros(x_new.shape, bool)
        out = x_new.copy()
        for sign, present in zip((+1.0, -1.0), dio.masks(x_new.shape[-1])):
            # up diode: vd = x - Vb; down diode: vd = -Vb - x
            v_old = sign * x_old - dio.v_bias
            v_new = sign * out - dio.v_bias
            big = present & (v_new > vcrit) & (np.abs(v_new - v_old) > 2.0 * vte)
            if not big.any():
                continue
            lim = v_new.copy()
            fwd = big & (v_old > 0)
            arg = 1.0 + (v_new - v_old) / vte
            ok = fwd & (arg > 0)
            lim[ok] = v_old[ok] + vte * np.log(arg[ok])
            lim[fwd & ~(arg > 0)] = vcrit
            rev = big & ~(v_old > 0)
            lim[rev] = vte * np.log(v_new[rev] / vte)
            out = np.where(big, sign * (lim + dio.v_bias), out)
            limited |= big
        return out, bool(limited.any())

    def _solve(self, u, r0, drive0, nudge, start) -> DRNOperatingPoint:
        L = len(self.layer_sizes) - 1
        B = u.shape[0]
        if start is not None and start.layers[0].shape[0] == B:
            xs = [u] + [a.copy() for a in start.layers[1:]]
        else:
            xs = self._initial_guess(u, drive0)
        s = self.solver
        step = math.inf
        for it in range(1, s.max_iterations + 1):
            grads, diags = self._gradient(xs, r0, drive0, nudge)
            dx = self._newton_step(grads, diags)
            limited = False
            step = 0.0
            vmax = 0.0
            for l in range(1, L + 1):
                new = xs[l] + dx[l - 1]
                if self._clamped(l):
                    new, lim = self._limit(xs[l], new)
                    limited |= lim
                step = max(step, float(np.max(np.abs(new - xs[l]))))
                vmax = max(vmax, float(np.max(np.abs(new))))
                xs[l] = new
            if not np.isfinite(step):
                break
            if not limited and step <= s.vntol + s.reltol * vmax:
                return self._finish(xs, r0, drive0, nudge, it)
        grads, _ = self._gradient(xs, r0, drive0, nudge)
        res = float(max(np.max(np.abs(g)) for g in grads))
        raise ConvergenceError(f"DRN operating point: Newton did not converge in {s.max_iterations} iterations "
                               f"(last update {step:g} V, KCL residual {res:g} A)", residual=res,
                               iterations=s.max_iterations)

    def _finish(self, xs, r0, drive0, nudge, iterations) -> DRNOperatingPoint:
        grads, _ = self._gradient(xs, r0, drive0, nudge)
        res = float(max(np.max(np.abs(g)) for g in grads))
        rows = [r0] + [self._rows(k, xs[k]) for k in range(1, len(xs) - 1)]
        # the scale of the residual: the currents into the node through its most conductive device
        scale = max(float(np.max(self._g(k).sum(axis=0)) * np.max(np.abs(rows[k]))) for k in range(len(rows)))
        B = xs[0].shape[0]
        self.counters.settles += B
        self.counters.newton_iterations += iterations
        dev = self.device
        for k, r in enumerate(rows):        # the largest and smallest device voltage, from the extremes
            x = xs[k + 1]
            over = ((r.max(axis=1) - x.min(axis=1)) > dev.v_set) | ((r.min(axis=1) - x.max(axis=1)) < dev.v_reset)
            self.counters.read_over_threshold += int(np.count_nonzero(over))
        return DRNOperatingPoint(layers=[a.copy() for a in xs], rows=rows, iterations=iterations,
                                 kcl_residual=res, kcl_scale=scale)

    def kcl_residuals(self, op: DRNOperatingPoint, nudge=None) -> list:
        """Per-node KCL residuals (current leaving each node, A) of an operating point, per layer."""
        u = op.layers[0]
        r0 = self._rows(0, u)
        grads, _ = self._gradient(op.layers, r0, r0 @ self._g(0), self._nudge(nudge, u.shape[0]))
        return grads

    # ------------------------------------------------------------------ programming and measuring
    def pulse(self, name: str, schedule):
        """Send a programming schedule (e.g. ``RowByRowWrite(widths)``) to crossbar ``name``.

        During programming the amplifiers and diodes are disconnected (a chip
        would open pass switches), so the crossbar is written alone through
        its drivers with the V/2 or V/3 scheme of ``settings``. On these
        single-device crossbars a positive width potentiates (SET).
        Returns the :class:`crossbar.program.ProgramReport`.
        """
        t = self.tile(name)
        widths = getattr(schedule, "signed_widths", None)
        if widths is not None:
            w = np.abs(schedule.signed_widths())
            w = w[w > 0]
            lo, hi = self.pulse_limits
            if w.size and (w.min() < lo or w.max() > hi):
                bad = w.min() if w.min() < lo else w.max()
                raise ParameterError(f"pulse width {bad:g} s is outside the drivers' range [{lo:g}, {hi:g}] s")
        report = program(t, self.device, self._arrays[name], schedule, v_write=self.settings.v_write,
                         scheme=self.settings.scheme, rng=self.rng)
        self.counters.pulse_events += 1
        self.counters.device_clipped += report.n_clipped
        if self.history is not None:
            self.history.record(self.counters.pulse_events, name, t.g, pulses=report.pulses,
                                disturbed=report.disturbed, energy=report.energy, time=report.time)
        return report

    def attach(self, history):
        """Record every programming event to ``history`` (a circuits.history.HistoryWriter)."""
        self.history = history

    def record_to(self, path, *, record="all", stride: int = 1, mode: str = "w", rewind: bool = False,
                  **options):
        """Open an HDF5 history of the crossbars at ``path`` and attach it (as :meth:`Chip.record_to`)."""
        from .history import open_history
        writer = open_history(path, {name: t.g.shape for name, t in self._tiles.items()},
                              {name: (self.device.g_min, self.device.g_max) for name in self._tiles},
                              seed=self.seed, source=self.source, record=record, stride=stride, mode=mode,
                              rewind=rewind, **options)
        self.attach(writer)
        return writer

    def measure_conductance(self, name: str) -> np.ndarray:
        """Apparent conductances (M, N) of a crossbar, read row by row at ``settings.v_read``.

        Amplifiers and diodes are switched out; each row is driven alone with
        the columns at virtual ground, the column currents over v_read are what
        an instrument sees, with the relative read noise of ``settings``.
        """
        t = self.tile(name)
        M, N = t.g.shape
        v_read = self.settings.v_read
        # all M single-row reads as one batch of M drives
        sol = t.solve(driver_conductance(t.wires.r_row_driver, M), v_read * np.eye(M), np.full(N, INF),
                      np.zeros((M, N)))
        g = sol.i_col_end / v_read
        if self.settings.read_noise:
            g = g * (1 + self.rng.normal(0.0, self.settings.read_noise, g.shape))
        return g

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything needed to resume: device states, the random generator and the counters."""
        return {"arrays": {f"g/{n}": t.g.copy() for n, t in self._tiles.items()},
                "rng": self.rng.bit_generator.state, "counters": vars(self.counters).copy()}

    def load_state_dict(self, state: dict):
        for n, t in self._tiles.items():
            t.g[...] = state["arrays"][f"g/{n}"]
        self.rng.bit_generator.state = state["rng"]
        self.counters = DRNCounters(**state.get("counters", {}))

    # ------------------------------------------------------------------ SPICE
    def to_spice(self, inputs, *, nudge=None, title: str = "deep resistive network") -> "DRNDeck":
        """The circuit for the first input vector as a SPICE deck for ngspice.

        Everything is in it: input sources, amplifiers (E for the forward VCVS,
        a 0 V sense source and an F card for the backward CCCS), every device
        as a resistor, the bias lines, the diode clamps with their bias sources
        and, with ``nudge = (target, beta > 0)``, a 1/beta resistor from each
        output to a source at its target. Node ``x{l}_{j}`` is node j of layer l.
        F cards are not in :class:`circuits.spice.Deck`'s subset, so the deck is
        a :class:`DRNDeck` that adds them to the text (ngspice reads them); our
        own MNA solver cannot solve it.
        """
        u = self._inputs(inputs)[0]
        deck = DRNDeck(title)
        L = len(self.layer_sizes) - 1
        for j, v in enumerate(u):
            deck.add_vsource(f"Vin{j}", f"x0_{j}", "0", float(v))
        bias_nodes = []
        for m, v in enumerate(self.bias_voltages):
            deck.add_vsource(f"Vbl{m}", f"bl{m}", "0", v)
            bias_nodes.append(f"bl{m}")
        for k in range(L):
            A = self.gains[k]
            G = self._g(k)
            rows = []
            for i in range(self.layer_sizes[k]):
                deck.add_vcvs(f"Ea{k}_{i}", f"e{k}_{i}", "0", f"x{k}_{i}", "0", A)
                deck.add_vsource(f"Vs{k}_{i}", f"e{k}_{i}", f"a{k}_{i}", 0.0)   # ammeter of the row current
                deck.add_cccs(f"Fa{k}_{i}", f"x{k}_{i}", "0", f"Vs{k}_{i}", A)
                rows.append(f"a{k}_{i}")
            rows += bias_nodes
            for i, row in enumerate(rows):
                for j in range(self.layer_sizes[k + 1]):
                    deck.add_resistor(f"R{k}_{i}_{j}", row, f"x{k + 1}_{j}", 1.0 / G[i, j])
        if any(self._clamped(l) for l in range(1, L + 1)):
            d = self.diode
            deck.add_model("DCLAMP", IS=d.i_sat, N=d.n, RS=0.0)
            deck.add_vsource("Vdp", "vdp", "0", d.v_bias)
            deck.add_vsource("Vdn", "vdn", "0", -d.v_bias)
            deck.set_option("gmin", d.gmin)
            for l in range(1, L + 1):
                if self._clamped(l):
                    upper, lower = d.masks(self.layer_sizes[l])
                    for j in range(self.layer_sizes[l]):
                        if upper[j]:
                            deck.add_diode(f"Dp{l}_{j}", f"x{l}_{j}", "vdp", "DCLAMP")
                        if lower[j]:
                            deck.add_diode(f"Dn{l}_{j}", "vdn", f"x{l}_{j}", "DCLAMP")
        if nudge is not None:
            y, beta = self._nudge(nudge, 1)
            if not beta > 0:
                raise ParameterError(f"beta = {beta!r}: the SPICE deck models the nudge as a resistor 1/beta, "
                                     f"allowed range (0, 1e3] S")
            for j in range(self.layer_sizes[-1]):
                deck.add_vsource(f"Vt{j}", f"t{j}", "0", float(y[0, j]))
                deck.add_resistor(f"Rn{j}", f"x{L}_{j}", f"t{j}", 1.0 / beta)
        return deck


@dataclass(frozen=True)
class CCCS:
    """SPICE ``F`` card: ``gain * I(vcontrol)`` flows from ``npos`` through the source to ``nneg``."""

    name: str
    npos: str
    nneg: str
    vcontrol: str
    gain: float

    def card(self) -> str:
        return f"{self.name} {self.npos} {self.nneg} {self.vcontrol} {float(self.gain)!r}"


class DRNDeck(Deck):
    """A :class:`circuits.spice.Deck` plus current-controlled current sources (F cards).

    Only the written text carries the F cards (ngspice solves it); the deck's
    element list, reader and MNA solver do not know them.
    """

    def __init__(self, title: str = "memx deck", *, path: str = "<deck>"):
        super().__init__(title, path=path)
        self.cccs: list[CCCS] = []

    def add_cccs(self, name: str, npos: str, nneg: str, vcontrol: str, gain: float) -> CCCS:
        if not name[:1].upper() == "F":
            raise ParameterError(f"CCCS name must start with 'F', got {name!r}")
        self.element(vcontrol)        # the controlling source must exist (raises otherwise)
        check_range(f"{name} gain", gain)
        el = CCCS(name, npos, nneg, vcontrol, float(gain))
        self.cccs.append(el)
        return el

    def to_spice(self, *, options: dict | None = None) -> str:
        text = super().to_spice(options=options)
        cards = "".join(c.card() + "\n" for c in self.cccs)
        head, sep, tail = text.rpartition("\n.op\n")
        return head + "\n" + cards.rstrip("\n") + sep + tail if cards else text
