"""Equilibrium propagation on a chip: EP, centred and random-sign nudging, C-EP, VF and C-VF.

The network is a chip's neuron groups: one ``input`` group clamped to the data,
free ``hidden`` groups and one ``output`` group, coupled by tiles of
differential pairs. A group integrates the currents of every tile it senses
(forward reads of the tiles whose columns it owns, transposed reads of the
bidirectional tiles whose rows it owns), so bidirectional tiles give the
symmetric weights of an energy-based network and separate forward and
backward tiles give the untied weights of vector-field EP.

Phases (thesis Parts III-V; ``shared/reference/thesis-notes.md`` §4-6), all
through :meth:`circuits.Chip.settle`:

1. free phase: T steps with the inputs clamped, from zero states;
2. nudged phase: K steps from the free state, with a current
   ``beta (y - a_out)`` injected into the output integrators, or (``nudge_at``
   ``activity``, the thesis' prototypical placement) ``beta (y - a_out)`` added
   to the outputs' activities by a summing stage after the activation.
   With ``skip_unsettled`` (not in the thesis), samples whose free phase ends
   still moving (a two-step cycle) are left out of phase 2 and the update.

The settings: ``discrete`` (prototypical: every group jumps to its activation
of the current pre-activation) and ``euler`` (energy-based: leaky integrators
stepped by dt). The statistic a rule hands to the update policies is, per tile
with row group r and column group c (bias lines included as units of
activity 1), averaged over the mini-batch:

- EP: ``(A_r^b (x) A_c^b - A_r^0 (x) A_c^0) / (b - 0)`` with one-sided b = beta,
  ``(A^+ (x) A^+ - A^- (x) A^-) / (2 beta)`` for centred nudging (+beta and
  -beta from the same free state; the one-sided estimate's O(beta) bias
  cancels), and a random sign of beta per mini-batch (thesis Part V);
- VF (untied weights): ``sum_t A_r(t) (x) (A_c(t+1) - A_c(t)) / beta``: the
  post-synaptic change times the pre-synaptic activity; a bidirectional tile
  also gets the transposed term;
- C-EP / C-VF: the same per-step increments, sent as pulses at every step of
  the nudged phase instead of summed (nothing is stored between steps).

A positive statistic asks for potentiation (gradient descent on the loss
||a_out - y||^2 / 2). Policies (:mod:`learning.updates`) turn it into pulses:
``Cst`` (sign), ``Proportional`` with a ``quantum`` (widths proportional to the
statistic, quantised to the drivers' resolution), ``RProp``. Nothing here reads
or writes a conductance; :func:`align_backward` sets the initial angle of C-VF's
backward tiles by write-verify pulses from measured conductances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from circuits import NUDGE_PLACES, RowByRowWrite, WriteVerify

ESTIMATORS = ("one-sided", "centred", "random")
RULES = ("ep", "vf")


@dataclass(frozen=True)
class EPConfig:
    """Hyper-parameters of the two phases."""

    T: int = 30
    """Free-phase steps."""
    K: int = 10
    """Nudged-phase steps."""
    beta: float = 0.1
    """Nudging strength (V per unit of output error)."""
    estimator: str = "one-sided"
    """one-sided, centred (+beta and -beta) or random (sign of beta drawn per mini-batch)."""
    mode: str = "discrete"
    """discrete (prototypical) or euler (energy-based)."""
    dt: float | None = None
    """Euler step, s (default: the chip's, tau / 10)."""
    rule: str = "ep"
    """ep (product difference, tied weights) or vf (post change x pre, untied weights)."""
    continual: bool = False
    """Send pulses at every nudged step (C-EP, C-VF) instead of once after the phase."""
    nudge_at: str = "current"
    """Where the output nudge enters the neuron circuit: ``current`` (into the op-amp, before the
    activation) or ``activity`` (a summing stage after it: the thesis' prototypical nudge)."""
    skip_unsettled: float | None = None
    """Leave out of the nudged phase and the update the samples whose free phase has not settled:
    those whose largest change of any observed activity at the last free step exceeds this (in
    practice, images caught in a two-step cycle, the C-VF runaway's source; RESULTS.md). None (the
    default, and the thesis) keeps every sample. Not in the thesis: a remedy."""

    def __post_init__(self):
        for name in ("T", "K"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} = {v!r} is outside the allowed range [1, inf)")
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta = {self.beta!r} is outside the allowed range (0, inf) V")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator = {self.estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        if self.mode not in ("discrete", "euler"):
            raise ValueError(f"mode = {self.mode!r}; allowed: 'discrete', 'euler'")
        if self.rule not in RULES:
            raise ValueError(f"rule = {self.rule!r}; allowed: {', '.join(RULES)}")
        if self.nudge_at not in NUDGE_PLACES:
            raise ValueError(f"nudge_at = {self.nudge_at!r}; allowed: {', '.join(map(repr, NUDGE_PLACES))}")
        if self.skip_unsettled is not None:
            if not (math.isfinite(self.skip_unsettled) and self.skip_unsettled > 0):
                raise ValueError(f"skip_unsettled = {self.skip_unsettled!r} is outside the allowed range (0, inf)")
            if self.T < 2:
                raise ValueError(f"T = {self.T!r} is outside the allowed range [2, inf) with skip_unsettled "
                                 "(the test compares the last two free steps)")
        if self.rule == "vf" and self.estimator == "centred":
            raise ValueError("estimator = 'centred' is implemented for rule = 'ep' only "
                             "(use 'one-sided' or 'random' with the vector-field rule)")
        if self.continual and self.estimator == "centred":
            raise ValueError("estimator = 'centred' needs two nudged phases from one free state; "
                             "continual updates change the weights during the first (use 'random')")


@dataclass
class PhaseResult:
    """What one mini-batch produced: the free-phase outputs and the statistics sent."""

    free_outputs: np.ndarray
    statistic: dict
    beta: float
    reports: list
    skipped: int = 0
    """Samples left out by ``EPConfig.skip_unsettled``."""


class EquilibriumNetwork:
    """A layered network of neuron groups and tiles on a chip, trained by EP.

    Parameters
    ----------
    chip : circuits.Chip
    inputs, outputs : str, optional
        The clamped group and the nudged group (default: the groups whose role is
        ``input`` and ``output``; there must be exactly one of each).
    """

    def __init__(self, chip, *, inputs: str | None = None, outputs: str | None = None):
        self.chip = chip
        self.inputs = inputs or self._only_group("input")
        self.outputs = outputs or self._only_group("output")
        self.tile_names = tuple(chip.tiles)
        self._bias = {}
        for t in self.tile_names:
            r, c = chip.tile_groups(t)
            rows, cols = chip.tile_shape(t)
            self._bias[t] = (rows - chip.groups[r].size, cols - chip.groups[c].size)
        self.n_outputs = chip.groups[self.outputs].size

    def _only_group(self, role):
        names = [g for g, grp in self.chip.groups.items() if grp.params.role == role]
        if len(names) != 1:
            raise ValueError(f"the chip has {len(names)} groups with role {role!r}; name the one to use")
        return names[0]

    # ------------------------------------------------------------------ phases
    def _settle(self, x, cfg: EPConfig, steps, *, nudge=None, init=None, hold=None):
        return self.chip.settle({self.inputs: x}, steps=steps, mode=cfg.mode, dt=cfg.dt, nudge=nudge,
                                nudge_at=cfg.nudge_at, init=init, hold=hold)

    def free_phase(self, x, cfg: EPConfig):
        """Settle T steps with the inputs clamped; returns the chip's SettleResult."""
        return self._settle(x, cfg, cfg.T)

    def kept_free_phase(self, x, y, cfg: EPConfig):
        """``(free, x, y, start)``: the free phase of the whole batch, and the samples the update uses
        with their free states (all of them unless ``cfg.skip_unsettled`` leaves some out).

        The unsettled test uses what the chip exposes: the settle is split before its last step
        (the same T steps: the second part continues from the held states) and each sample's
        largest change of any free group's activity, read through the ADCs, is compared with
        the threshold.
        """
        if cfg.skip_unsettled is None:
            free = self.free_phase(x, cfg)
            return free, x, y, free
        before = self._settle(x, cfg, cfg.T - 1)
        free = self._settle(x, cfg, 1, init=before.states, hold=before.held)
        gap = np.max(np.concatenate([np.abs(free.activities[g] - before.activities[g]) for g in free.activities],
                                    axis=1), axis=1)
        keep = gap <= cfg.skip_unsettled
        if keep.all():
            return free, x, y, free
        start = replace(free, activities={g: a[keep] for g, a in free.activities.items()},
                        states={g: s[keep] for g, s in free.states.items()},
                        held={g: h[keep] for g, h in free.held.items()})
        return free, x[keep], y[keep], start

    def nudged_phase(self, x, y, beta, cfg: EPConfig, free):
        """Settle K steps from the free state with the outputs nudged towards ``y`` at ``beta``."""
        return self._settle(x, cfg, cfg.K, nudge={self.outputs: (y, beta)}, init=free.states)

    def _activities(self, x, res):
        return {self.inputs: np.atleast_2d(np.asarray(x, dtype=float)), **res.activities}

    def _with_bias(self, a, flag):
        return np.concatenate([a, np.ones((len(a), 1))], axis=1) if flag else a

    def product_difference(self, high: dict, low: dict, scale: float) -> dict:
        """Per tile, ``scale * (A_r^T A_c |high - A_r^T A_c |low)`` as one product.

        Stacking the two batches, [A_r(high); A_r(low)]^T [A_c(high); -A_c(low)] is the
        difference, so the (rows, cols) result is formed once rather than twice and
        then subtracted: on the 785 x 513 input tile that was a sixth of an EP step.
        """
        out = {}
        for t in self.tile_names:
            r, c = self.chip.tile_groups(t)
            br, bc = self._bias[t]
            rows = np.concatenate([self._with_bias(high[r], br), self._with_bias(low[r], br)])
            cols = np.concatenate([self._with_bias(high[c], bc), -self._with_bias(low[c], bc)]) * scale
            out[t] = rows.T @ cols
        return out

    def vf_increment(self, before: dict, after: dict) -> dict:
        """Per tile, A_r(t) (x) (A_c(t+1) - A_c(t)) (+ the transposed term for bidirectional tiles)."""
        out = {}
        for t in self.tile_names:
            r, c = self.chip.tile_groups(t)
            br, bc = self._bias[t]
            pre, post0, post1 = (self._with_bias(before[r], br), self._with_bias(before[c], bc),
                                 self._with_bias(after[c], bc))
            d = pre.T @ (post1 - post0)
            if self.chip.is_bidirectional(t):
                d = d + (self._with_bias(after[r], br) - pre).T @ post0
            out[t] = d
        return out

    # ------------------------------------------------------------------ statistic
    def _beta(self, cfg: EPConfig, rng):
        if cfg.estimator == "random":
            return cfg.beta if rng.random() < 0.5 else -cfg.beta
        return cfg.beta

    def statistic(self, x, y, cfg: EPConfig, rng: np.random.Generator | None = None):
        """The EP (or VF) statistic of one mini-batch, per tile, batch-averaged: (statistic, free, beta).

        With ``cfg.skip_unsettled`` the average runs over the kept samples; when none is kept
        the statistic is zero (beta is drawn all the same, so the draws stay in step)."""
        stat, free, beta, _ = self._statistic(x, y, cfg, rng)
        return stat, free, beta

    def _statistic(self, x, y, cfg, rng):
        """:meth:`statistic`, and how many samples it used."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        free, x, y, start = self.kept_free_phase(x, self.targets(y), cfg)
        B = len(x)
        beta = self._beta(cfg, rng)
        if B == 0:
            return self._zero_statistic(), free, beta, 0
        a0 = self._activities(x, start)
        if cfg.rule == "vf":
            return self._stepwise(x, y, beta, cfg, start), free, beta, B
        plus = self._activities(x, self.nudged_phase(x, y, beta, cfg, start))
        if cfg.estimator == "centred":
            minus = self._activities(x, self.nudged_phase(x, y, -beta, cfg, start))
            low, b_low = minus, -beta
        else:
            low, b_low = a0, 0.0
        return self.product_difference(plus, low, 1.0 / ((beta - b_low) * B)), free, beta, B

    def _zero_statistic(self):
        """What a batch whose every sample was left out asks for: nothing, per tile."""
        out = {}
        for t in self.tile_names:
            r, c = self.chip.tile_groups(t)
            br, bc = self._bias[t]
            out[t] = np.zeros((self.chip.groups[r].size + br, self.chip.groups[c].size + bc))
        return out

    # ------------------------------------------------------------------ training
    def _send(self, stat: dict, policies: dict, reports: list):
        for t, s in stat.items():
            if t not in policies:
                continue
            widths = policies[t].step(s)
            if np.any(widths):
                reports.append(self.chip.pulse(t, RowByRowWrite(widths)))

    def train_batch(self, x, y, cfg: EPConfig, policies: dict, rng: np.random.Generator | None = None) -> PhaseResult:
        """One mini-batch: phases, statistic, pulses (per tile, by ``policies[tile]``; tiles absent are frozen).

        ``y``: one-hot targets (B, n_outputs), or integer labels.
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        y = self.targets(y)
        reports = []
        if not cfg.continual:
            stat, free, beta, kept = self._statistic(x, y, cfg, rng)
            if kept:
                self._send(stat, policies, reports)
            return PhaseResult(free.activities[self.outputs], stat, beta, reports, len(x) - kept)
        return self._train_continual(x, y, cfg, policies, rng, reports)

    def _train_continual(self, x, y, cfg, policies, rng, reports):
        """C-EP / C-VF: pulses at every nudged step, from that step's increment only."""
        free, xk, yk, start = self.kept_free_phase(x, y, cfg)
        beta = self._beta(cfg, rng)
        if len(xk) == 0:
            total = self._zero_statistic()
        else:
            total = self._stepwise(xk, yk, beta, cfg, start, send=lambda step: self._send(step, policies, reports))
        return PhaseResult(free.activities[self.outputs], total, beta, reports, len(x) - len(xk))

    def _stepwise(self, x, y, beta, cfg, free, send=None):
        """Run the nudged phase one step at a time; sum (and ``send``, if given) each step's increment.

        The increment is the product difference (EP) or the post change x pre (VF)
        between consecutive steps, divided by beta and the batch size.
        """
        B = len(x)
        prev, res = self._activities(x, free), free
        total = {t: 0.0 for t in self.tile_names}
        for _ in range(cfg.K):
            # continue from the held outputs: an activity nudge lives only there
            res = self._settle(x, cfg, 1, nudge={self.outputs: (y, beta)}, init=res.states, hold=res.held)
            cur = self._activities(x, res)
            if cfg.rule == "vf":
                step = {t: d / (beta * B) for t, d in self.vf_increment(prev, cur).items()}
            else:
                step = self.product_difference(cur, prev, 1.0 / (beta * B))
            if send is not None:
                send(step)
            for t in total:
                total[t] = total[t] + step[t]
            prev = cur
        return total

    # ------------------------------------------------------------------ inference
    def targets(self, y):
        y = np.asarray(y)
        if y.ndim == 1:
            onehot = np.zeros((len(y), self.n_outputs))
            onehot[np.arange(len(y)), y.astype(int)] = 1.0
            return onehot
        return y.astype(float)

    def free_outputs(self, x, cfg: EPConfig, *, chunk: int = 1000):
        """The output activities after the free phase (N, n_outputs), ``chunk`` images at a time
        (fewer when the chip's wired reads need it: :meth:`circuits.Chip.batch_limit`)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        chunk = self.chip.images_per_batch(chunk)
        out = [self.free_phase(x[i:i + chunk], cfg).activities[self.outputs] for i in range(0, len(x), chunk)]
        return np.concatenate(out) if out else np.zeros((0, self.n_outputs))

    def predict(self, x, cfg: EPConfig, *, chunk: int = 1000):
        """Labels: argmax of :meth:`free_outputs`."""
        return np.argmax(self.free_outputs(x, cfg, chunk=chunk), axis=1)

    def error_rate(self, x, labels, cfg: EPConfig, **kw) -> float:
        return float(np.mean(self.predict(x, cfg, **kw) != np.asarray(labels)))


# ---------------------------------------------------------------------------------------------------- C-VF
def align_backward(chip, forward: str, backward: str, angle_deg: float, rng: np.random.Generator, *,
                   width: float, tol: float = 0.02, max_pulses: int = 200):
    """Program tile ``backward`` to the transpose of ``forward`` with a random sign mask (C-VF's initial angle).

    Thesis Part V: theta_b = M (.) theta_f with M a random +-1 mask, P(-1) = p =
    (1 - cos angle) / 2, so that E[cos angle(theta_f, theta_b)] = cos angle. A
    weight's sign flips by swapping its pair's two conductances. Both tiles are
    only *measured* (row reads at v_read); the backward tile is then
    write-verified towards the targets with pulses of ``width``. Returns the
    chip's ProgramReport. Pairs are interleaved: G+ in even physical columns.
    """
    g_f = chip.measure_conductance(forward)               # (rows_f, 2 cols_f)
    rows_b, cols_b = chip.tile_shape(backward)
    rows_f, cols_f = chip.tile_shape(forward)
    r_f, c_f = chip.tile_groups(forward)
    r_b, c_b = chip.tile_groups(backward)
    if (r_f, c_f) != (c_b, r_b):
        raise ValueError(f"tile {backward} ({r_b} -> {c_b}) does not run opposite to {forward} ({r_f} -> {c_f})")
    n_r, n_c = chip.groups[r_b].size, chip.groups[c_b].size     # the neurons each side (bias lines excluded)
    p = (1.0 - math.cos(math.radians(angle_deg))) / 2.0
    flip = rng.random((n_r, n_c)) < p
    gp, gm = g_f[:n_c, 0:2 * n_r:2].T, g_f[:n_c, 1:2 * n_r:2].T   # forward pairs, transposed to (n_r, n_c)
    targets = np.full((rows_b, 2 * cols_b), np.nan)
    targets[:n_r, 0:2 * n_c:2] = np.where(flip, gm, gp)
    targets[:n_r, 1:2 * n_c:2] = np.where(flip, gp, gm)
    return chip.pulse(backward, WriteVerify(targets, width, tol=tol, max_pulses=max_pulses))


def weight_angle(a, b) -> float:
    """Angle in degrees between two weight matrices (trace inner product)."""
    a, b = np.ravel(a), np.ravel(b)
    c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))
