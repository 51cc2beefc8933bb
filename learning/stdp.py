"""STDP through device physics: pre and post spike waveforms whose overlap crosses the thresholds.

The thesis' link between EP and STDP (Part III, "Link to STDP"; Part VI,
mEqProp) is Delta w_ij ~ rho(s_j) ds_i/dt: the pre-synaptic rate times the
rate of change of the post-synaptic activity. Here nothing computes that
product. Neurons emit voltage spikes, pre spikes on the tile's rows and post
spikes on its columns, and a device changes only where the two overlap
beyond its threshold (:mod:`crossbar.waveforms`).

Spike shape (:class:`SpikeShape`): a peak of ``peak`` volts for
``peak_width``, then a tail of ``tail`` volts for ``tail_width``. The
defaults are a -0.65 V peak and a +0.65 V tail, used for both pre and post
spikes. The device sees row minus column, pre(t) - post(t), so:

- a spike alone stays below threshold: |0.65| < 1 V;
- coincident parts cancel: peak - peak = tail - tail = 0;
- a post peak over the pre tail (pre before post) gives 0.65 + 0.65 = 1.3 V > v_set,
  which potentiates;
- a pre peak over the post tail (pre after post) gives -1.3 V < v_reset,
  which depresses.

For a post spike d seconds after the pre spike, with 0 < d <= peak_width
<= tail_width, the supra-threshold overlap lasts exactly d, and it lasts
|d| at -1.3 V for d < 0. So the window is antisymmetric, and linear in d
for |d| <= peak_width. :class:`StdpParams` checks all of this against the
design thresholds ``v_set``/``v_reset``, which are the devices' datasheet
values (the rule never reads a device).

Coding (:func:`spike_waveforms`). Time runs in cycles, each long enough that
the spikes of one cycle never overlap those of the next. In every cycle:

- pre neuron j fires at the cycle's reference time with probability rho_j
  (its activity in [0, 1]): rate coding;
- post neuron i fires at the reference time plus a delay kappa * Delta s_i,
  where Delta s_i is the change of its activity during that cycle: its
  timing follows ds_i/dt (after Delta s > 0, a post spike comes after the
  pre spike). Delays are rounded stochastically to the sample period (the
  rounding is unbiased) and capped at ``max_delay`` (caps are counted).
  A zero delay sends no spike.

So a device's expected change per cycle is rho_j * f(kappa Delta s_i), with
f the device's change over a pulse of that length: proportional to
rho_j * ds_i/dt for near-linear devices and small changes. Summed over the
nudged phase of EP, that is rho_j (s_i^beta - s_i^*), the thesis' vector-field
EP update (tests/test_stdp.py measures the proportionality).

Differential pairs are written in two phases so that G- mirrors G+ (see
:mod:`crossbar.waveforms`). An always-on bias row fires in every cycle, and a
bias column stays at 0 V.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from circuits import WaveformWrite

_EPS = 1e-9


class StdpError(ValueError):
    """A waveform or coding parameter is invalid; the message names it and the allowed range."""


def _check(name, value, low=-math.inf, high=math.inf, *, low_open=False, high_open=False, unit=""):
    v = float(value)
    bad = (not math.isfinite(v) or (v <= low if low_open else v < low)
           or (v >= high if high_open else v > high))
    if bad:
        lb, hb = "(" if low_open else "[", ")" if high_open else "]"
        raise StdpError(f"{name} = {value!r} is outside the allowed range {lb}{low:g}, {high:g}{hb}"
                        f"{' ' + unit if unit else ''}")
    return v


def _samples(name, width, dt):
    """Number of samples of a width that must be a whole number of sample periods."""
    n = width / dt
    if abs(n - round(n)) > 1e-6 * max(1.0, n):
        raise StdpError(f"{name} = {width:g} s must be a multiple of dt = {dt:g} s")
    return int(round(n))


@dataclass(frozen=True)
class SpikeShape:
    """A two-part spike: ``peak`` volts for ``peak_width`` s, then ``tail`` volts for ``tail_width`` s."""

    peak: float = -0.65
    """Peak voltage, V."""
    peak_width: float = 4e-9
    """Peak duration, s (> 0)."""
    tail: float = 0.65
    """Tail voltage, V (usually of the opposite sign)."""
    tail_width: float = 8e-9
    """Tail duration, s (> 0)."""

    def __post_init__(self):
        _check("peak", self.peak, unit="V")
        _check("tail", self.tail, unit="V")
        _check("peak_width", self.peak_width, 0.0, low_open=True, unit="s")
        _check("tail_width", self.tail_width, 0.0, low_open=True, unit="s")

    @property
    def duration(self) -> float:
        return self.peak_width + self.tail_width

    def samples(self, dt: float) -> np.ndarray:
        """The spike sampled every ``dt`` seconds, V."""
        n_peak = _samples("peak_width", self.peak_width, dt)
        n_tail = _samples("tail_width", self.tail_width, dt)
        return np.r_[np.full(n_peak, float(self.peak)), np.full(n_tail, float(self.tail))]


@dataclass(frozen=True)
class StdpParams:
    """Spike shapes, sampling and coding of the STDP rule (SI units)."""

    pre: SpikeShape = field(default_factory=SpikeShape)
    """Pre-synaptic spike, sent on the tile's rows."""
    post: SpikeShape = field(default_factory=SpikeShape)
    """Post-synaptic spike, sent on the tile's columns."""
    dt: float = 0.5e-9
    """Sample period of the line drivers, s."""
    v_set: float = 1.0
    """Design SET threshold of the devices (datasheet value), V (> 0)."""
    v_reset: float = -1.0
    """Design RESET threshold, V (< 0)."""
    kappa: float = 20e-9
    """Post-spike delay per unit change of post activity, s: the learning rate of the rule."""
    max_delay: float = 4e-9
    """Largest post-spike delay, s; at most the peak width, so the window stays linear."""
    cycles_per_step: int = 1
    """Cycles per activity step; a step's change is spread evenly over its cycles."""

    def __post_init__(self):
        _check("v_set", self.v_set, 0.0, low_open=True, unit="V")
        _check("v_reset", self.v_reset, high=0.0, high_open=True, unit="V")
        _check("dt", self.dt, 0.0, low_open=True, unit="s")
        _check("kappa", self.kappa, 0.0, unit="s")
        if int(self.cycles_per_step) != self.cycles_per_step or self.cycles_per_step < 1:
            raise StdpError(f"cycles_per_step = {self.cycles_per_step!r} is outside the allowed range [1, inf)")
        self.pre.samples(self.dt)      # widths must be whole samples
        self.post.samples(self.dt)
        if abs(self.pre.peak_width - self.post.peak_width) > _EPS * self.pre.peak_width:
            raise StdpError(f"post.peak_width = {self.post.peak_width:g} s must equal pre.peak_width = "
                            f"{self.pre.peak_width:g} s, so that coincident peaks cancel and the "
                            f"window starts at zero delay")
        limit = min(self.pre.peak_width, self.pre.tail_width, self.post.tail_width)
        _check("max_delay", self.max_delay, 0.0, limit * (1 + _EPS), low_open=True, unit="s")
        inside = dict(low=self.v_reset, high=self.v_set, low_open=True, high_open=True, unit="V")
        # each spike alone, and coincident parts, must not write
        _check("pre.peak", self.pre.peak, **inside)
        _check("pre.tail", self.pre.tail, **inside)
        _check("-post.peak (a post peak alone, seen by the device)", -self.post.peak, **inside)
        _check("-post.tail (a post tail alone, seen by the device)", -self.post.tail, **inside)
        _check("pre.peak - post.peak (coincident peaks)", self.pre.peak - self.post.peak, **inside)
        _check("pre.tail - post.tail (coincident tails)", self.pre.tail - self.post.tail, **inside)
        # overlaps must
        _check("pre.tail - post.peak (pre before post)", self.pre.tail - self.post.peak, self.v_set,
               low_open=True, unit="V")
        _check("pre.peak - post.tail (pre after post)", self.pre.peak - self.post.tail,
               high=self.v_reset, high_open=True, unit="V")

    # ---- cycle layout, in samples
    @property
    def n_delay(self) -> int:
        """Largest delay in samples."""
        return int(math.floor(self.max_delay / self.dt + 1e-9))

    @property
    def cycle_samples(self) -> int:
        """Samples per cycle: the pre spike sits at ``n_delay``, a post spike within +-n_delay of it."""
        return self.n_delay + max(self.pre.samples(self.dt).size, self.n_delay + self.post.samples(self.dt).size)

    @property
    def cycle(self) -> float:
        """Cycle length, s."""
        return self.cycle_samples * self.dt


@dataclass
class CodingStats:
    """What the coding did; nothing is clipped silently."""

    cycles: int = 0
    pre_spikes: int = 0
    post_spikes: int = 0
    delays_capped: int = 0
    """Post delays that hit max_delay (the change was larger than max_delay / kappa)."""
    rates_clipped: int = 0
    """Pre activities outside [0, 1], clipped into it to give a firing probability."""

    def add(self, other: "CodingStats"):
        for k, v in vars(other).items():
            setattr(self, k, getattr(self, k) + v)


def _lines(trace, name):
    a = np.asarray(trace, dtype=float)
    if a.ndim == 2:
        a = a[:, None, :]
    if a.ndim != 3 or a.shape[0] < 2:
        raise StdpError(f"{name} must have shape (steps + 1, batch, neurons) with at least 2 time points; "
                        f"got {np.shape(trace)}")
    return a


def spike_waveforms(pre_trace, post_trace, params: StdpParams, rng: np.random.Generator, *,
                    rows: int | None = None, cols: int | None = None):
    """Row and column waveforms coding activity traces as spikes.

    Parameters
    ----------
    pre_trace : (T + 1, K, n_pre) or (T + 1, n_pre)
        Activities of the row (pre-synaptic) neurons at the start and after
        each of T steps, for K examples. Step t's cycles use the activity at
        its start, ``pre_trace[t - 1]``.
    post_trace : (T + 1, K, n_post) or (T + 1, n_post)
        Activities of the column (post-synaptic) neurons. Step t's change is
        ``post_trace[t] - post_trace[t - 1]``.
    params : StdpParams
    rng : numpy.random.Generator
        Draws the pre spikes, then the rounding of the post delays.
    rows, cols : int, optional
        Lines of the tile: ``n_pre + 1`` adds an always-firing bias row,
        ``n_post + 1`` a silent bias column. Default: no bias line.

    Returns
    -------
    (row_waveforms (rows, S), col_waveforms (cols, S), CodingStats), V.
    Examples follow one another in time: K * T * cycles_per_step cycles.
    """
    pre = _lines(pre_trace, "pre_trace")
    post = _lines(post_trace, "post_trace")
    if pre.shape[:2] != post.shape[:2]:
        raise StdpError(f"pre_trace {pre.shape} and post_trace {post.shape} must share (steps + 1, batch)")
    T1, K, n_pre = pre.shape
    n_post = post.shape[2]
    rows = n_pre if rows is None else rows
    cols = n_post if cols is None else cols
    if rows not in (n_pre, n_pre + 1) or cols not in (n_post, n_post + 1):
        raise StdpError(f"a tile of {rows} x {cols} lines does not fit {n_pre} pre and {n_post} post neurons "
                        f"(each side may add one bias line)")
    p = params
    R = p.cycles_per_step
    stats = CodingStats()
    # per cycle, in the order (example, step, repeat)
    rho = np.repeat(np.transpose(pre[:-1], (1, 0, 2)), R, axis=1).reshape(-1, n_pre)
    change = np.repeat(np.transpose(np.diff(post, axis=0), (1, 0, 2)) / R, R, axis=1).reshape(-1, n_post)
    n_cyc = rho.shape[0]
    stats.cycles = n_cyc
    stats.rates_clipped = int(np.count_nonzero((rho < 0) | (rho > 1)))
    rho = np.clip(rho, 0.0, 1.0)
    if rows == n_pre + 1:
        rho = np.c_[rho, np.ones(n_cyc)]           # the bias line is always on
    fire = rng.random(rho.shape) < rho
    # post delays in samples: unbiased stochastic rounding, then the cap
    exact = p.kappa * change / p.dt
    delay = np.floor(exact)
    delay += rng.random(exact.shape) < (exact - delay)
    stats.delays_capped = int(np.count_nonzero(np.abs(delay) > p.n_delay))
    delay = np.clip(delay, -p.n_delay, p.n_delay).astype(np.int64)
    if cols == n_post + 1:
        delay = np.c_[delay, np.zeros(n_cyc, np.int64)]   # no spike on the bias column
    spike = delay != 0
    stats.pre_spikes = int(fire.sum())
    stats.post_spikes = int(spike.sum())

    L = p.cycle_samples
    a = p.n_delay
    pre_s, post_s = p.pre.samples(p.dt), p.post.samples(p.dt)
    row_w = np.zeros((rows, n_cyc, L))
    row_w[:, :, a:a + pre_s.size] = fire.T[:, :, None] * pre_s
    col_w = np.zeros((cols, n_cyc, L))
    c_idx, n_idx = np.nonzero(spike)
    t_idx = a + delay[c_idx, n_idx][:, None] + np.arange(post_s.size)
    col_w[n_idx[:, None], c_idx[:, None], t_idx] = post_s
    return row_w.reshape(rows, -1), col_w.reshape(cols, -1), stats


class StdpRule:
    """Writes a tile from activity traces, through spike waveforms only.

    ``rule.update(tile, pre_trace, post_trace)`` codes the traces of the
    tile's row group (pre) and column group (post) as spikes
    (:func:`spike_waveforms`) and sends them with ``chip.pulse``. Nothing else
    touches the hardware.
    """

    def __init__(self, chip, params: StdpParams = StdpParams(), rng: np.random.Generator | None = None):
        self.chip = chip
        self.params = params
        self.rng = rng if rng is not None else chip.rng
        self.stats = CodingStats()
        self.reports = []

    def schedule(self, tile: str, pre_trace, post_trace) -> WaveformWrite:
        M, N = self.chip.tile_shape(tile)
        rows, cols, stats = spike_waveforms(pre_trace, post_trace, self.params, self.rng, rows=M, cols=N)
        self.stats.add(stats)
        return WaveformWrite(rows, cols, self.params.dt)

    def update(self, tile: str, pre_trace, post_trace):
        """Send the spikes of these traces to ``tile``; returns the chip's report."""
        report = self.chip.pulse(tile, self.schedule(tile, pre_trace, post_trace))
        self.reports.append(report)
        return report


@dataclass
class StdpStep:
    """What one :meth:`StdpEP.train_batch` did and measured."""

    reports: dict
    """The chip's report of each tile's waveform write."""
    free_outputs: np.ndarray
    """(B, n_out) output activities at the end of the free phase (before the update)."""


class StdpEP:
    """Equilibrium propagation whose weight updates are STDP events of the nudged phase.

    Free phase: ``chip.settle`` with the input clamped. Nudged phase: from the
    free state, the output group nudged towards the target, recording every
    step. Each tile is then written by :class:`StdpRule` from the traces of its
    row group (pre) and column group (post). The expected change is the
    thesis' vector-field EP update, rho(s_pre) (s_post^beta - s_post^*) per
    cycle of the trace, with kappa as the learning rate.
    """

    def __init__(self, chip, rule: StdpRule, *, inputs: str, outputs: str, beta: float = 0.5,
                 free_steps: int = 20, nudge_steps: int = 6, tiles=None, mode: str = "discrete"):
        _check("beta", beta, 0.0, low_open=True)
        self.chip, self.rule = chip, rule
        self.inputs, self.outputs = inputs, outputs
        self.beta = float(beta)
        self.free_steps, self.nudge_steps = int(free_steps), int(nudge_steps)
        self.tiles = tuple(tiles) if tiles is not None else chip.tiles
        self.mode = mode

    def free(self, x):
        return self.chip.settle({self.inputs: x}, steps=self.free_steps, mode=self.mode)

    def predict(self, x) -> np.ndarray:
        """Class = the most active output neuron after the free phase."""
        return np.argmax(self.free(x).activities[self.outputs], axis=1)

    def train_batch(self, x, target):
        """One free and one nudged phase for a batch, then one waveform write per tile (returns a StdpStep)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        free = self.free(x)
        nudged = self.chip.settle({self.inputs: x}, steps=self.nudge_steps, mode=self.mode,
                                  nudge={self.outputs: (np.asarray(target, dtype=float), self.beta)},
                                  init=free.states, trace=True)
        traces = {g: np.stack([free.activities[g]] + [step[g] for step in nudged.trace])
                  for g in free.activities}
        traces[self.inputs] = np.repeat(x[None], self.nudge_steps + 1, axis=0)
        reports = {}
        for tile in self.tiles:
            pre, post = self.chip.tile_groups(tile)
            reports[tile] = self.rule.update(tile, traces[pre], traces[post])
        return StdpStep(reports=reports, free_outputs=free.activities[self.outputs])

    def fit(self, x, labels, n_classes: int, *, epochs: int, batch: int, rng: np.random.Generator):
        """Train on one-hot targets; returns the training accuracy after each epoch."""
        x = np.asarray(x, dtype=float)
        labels = np.asarray(labels)
        onehot = np.eye(n_classes)[labels]
        history = []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for i in range(0, len(x), batch):
                idx = order[i:i + batch]
                self.train_batch(x[idx], onehot[idx])
            history.append(float(np.mean(self.predict(x) == labels)))
        return history
