"""Floating-point reference of the layered networks the chip runs: dynamics, EP, BPTT.

This module knows nothing about hardware. It computes, in plain numpy, exactly
what :meth:`circuits.Chip.settle` computes on an ideal chip (ideal wires, ideal
op-amps, linear devices), so that

- the chip's EP can be checked against it (same activities, same statistic);
- EP can be checked against the gradient it estimates: back-propagation through
  time (BPTT) of the same dynamics, per time step (the GDU property, thesis
  Part IV), and finite differences of the loss at the fixed point;
- the chip's speed has a software baseline doing the same arithmetic.

The network (the chip's convention). Layers 0..L: layer 0 is clamped to the
input x, layers 1..L are free, layer L is the output. ``W[n]`` couples
layer n (rows) and layer n+1 (columns) and has shape
``(size_n + bias_n, size_{n+1} + bias_{n+1})``: a layer with a bias line adds
one always-on unit (activity 1) on its side. The pre-activation of layer n is

    u_n = A_{n-1} W_{n-1}[:, :size_n]  +  A_{n+1} W_n[:size_n, :]^T       (A: activities with bias)

(the forward read of the tile below and the transposed read of the tile above),
clipped at the neurons' rails. Phase 2 adds ``beta (y - a_L)`` to u_L: the
nudging current into the output integrators. Two settings:

- ``discrete`` (prototypical): s_{t+1} = u(a_t), a = act(s);
- ``euler`` (energy-based): s_{t+1} = s_t + eps (u(a_t) - s_t), eps = dt / tau.

Both have the same fixed points: the stationary points of the Hopfield energy
E(a) = sum_i int^{a_i} act^{-1} - sum_n A_n^T W_n A_{n+1} (plus, in phase 2,
beta * l(a_L) with l = ||a_L - y||^2 / 2), so the EP statistic

    Delta W_n = (1/beta) (A_n^beta (x) A_{n+1}^beta - A_n (x) A_{n+1})

tends to -dL*/dW_n as beta -> 0, L* = l(a_L*) at the free fixed point.
Differences from the thesis: the thesis' prototypical model adds the nudge
outside the activation (a_L <- act(u) + beta (y - a_L)) and its energy-based
model carries act'(s) factors; here the nudge is by default a current into the
neuron, as a circuit injects it, so it enters through the activation
(``nudge_at="current"``). ``nudge_at="activity"`` is the thesis' placement, for
comparing with its software results (the chip cannot do that one).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from circuits import NUDGE_PLACES   # the placements the chip's neuron circuits offer, by the same names


@dataclass(frozen=True)
class Activation:
    """A neuron's activation and rails (the chip's sigmoid / hardsigmoid / linear circuits)."""

    kind: str = "sigmoid"
    slope: float = 4.0
    """Sigmoid slope, 1/V."""
    v_mid: float = 0.5
    """Sigmoid centre, V."""
    v_rail_neg: float = -np.inf
    v_rail_pos: float = np.inf

    def __post_init__(self):
        if self.kind not in ("sigmoid", "hardsigmoid", "linear"):
            raise ValueError(f"kind = {self.kind!r}; allowed: 'sigmoid', 'hardsigmoid', 'linear'")

    def __call__(self, s):
        if self.kind == "sigmoid":
            return expit(self.slope * (s - self.v_mid))
        if self.kind == "hardsigmoid":
            return (np.clip(s, self.v_rail_neg, self.v_rail_pos) - self.v_rail_neg) / (self.v_rail_pos - self.v_rail_neg)
        s = np.asarray(s)
        return np.array(s, dtype=np.result_type(s, 1.0))     # float32 stays float32

    def derivative(self, s):
        if self.kind == "sigmoid":
            a = self(s)
            return self.slope * a * (1.0 - a)
        if self.kind == "hardsigmoid":
            inside = (s > self.v_rail_neg) & (s < self.v_rail_pos)
            return inside / (self.v_rail_pos - self.v_rail_neg)
        return np.ones_like(s)

    def rails(self, u):
        """(clipped u, mask of the unclipped entries)."""
        if np.isinf(self.v_rail_neg) and np.isinf(self.v_rail_pos):
            return u, np.ones(np.shape(u), dtype=bool)     # no rails: skip the copy
        c = np.clip(u, self.v_rail_neg, self.v_rail_pos)
        return c, c == u


@dataclass
class LayeredNet:
    """Weights, biases and activations of a layered network (see the module docstring)."""

    sizes: tuple
    bias: tuple
    W: list
    activations: list = field(default=None)
    """One :class:`Activation` per free layer (1..L)."""
    back: list | None = None
    """Vector-field EP's untied backward weights: ``back[n]`` (n >= 1, shaped as ``W[n]``)
    replaces ``W[n]`` in the transposed read that drives layer n from layer n+1
    (``back[0]`` is None: the clamped input is never driven). None: tied weights."""

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        self.bias = tuple(int(b) for b in self.bias)
        if len(self.bias) != len(self.sizes) or len(self.W) != len(self.sizes) - 1:
            raise ValueError("need one bias flag per layer and one weight matrix per pair of layers")
        for n, w in enumerate(self.W):
            want = (self.sizes[n] + self.bias[n], self.sizes[n + 1] + self.bias[n + 1])
            if w.shape != want:
                raise ValueError(f"W[{n}] has shape {w.shape}; expected {want}")
        if self.activations is None:
            self.activations = [Activation() for _ in self.sizes[1:]]
        if self.back is not None:
            if len(self.back) != len(self.W) or self.back[0] is not None:
                raise ValueError("back: one matrix per weight matrix, with back[0] = None")
            for n in range(1, len(self.W)):
                if self.back[n].shape != self.W[n].shape:
                    raise ValueError(f"back[{n}] has shape {self.back[n].shape}; expected {self.W[n].shape}")

    @classmethod
    def glorot(cls, sizes, bias, rng: np.random.Generator, activations=None, dtype=np.float64):
        """Glorot-uniform weights (biases included in the draw's rows/columns).

        The draw is in float64 whatever ``dtype``, so a float32 net starts from the
        float64 one's weights, rounded."""
        bounds = [np.sqrt(6.0 / (sizes[n] + sizes[n + 1])) for n in range(len(sizes) - 1)]
        return cls._uniform(sizes, bias, bounds, rng, activations, dtype)

    @classmethod
    def fan_in(cls, sizes, bias, rng: np.random.Generator, activations=None, dtype=np.float64):
        """Every entry of ``W[n]`` uniform in +-1/sqrt(size_n), bias rows included.

        The initialisation of the thesis' code (ernoult/continualEP: PyTorch's
        ``nn.Linear`` default, weights and biases alike); for the 784-512-10 net its
        weights are 0.52x (input side) and 0.41x (output side) Glorot's."""
        bounds = [1.0 / np.sqrt(sizes[n]) for n in range(len(sizes) - 1)]
        return cls._uniform(sizes, bias, bounds, rng, activations, dtype)

    @classmethod
    def _uniform(cls, sizes, bias, bounds, rng, activations, dtype):
        """``W[n]`` (bias row/column included) uniform in +-``bounds[n]``, drawn in layer order."""
        ws = [rng.uniform(-a, a, (sizes[n] + bias[n], sizes[n + 1] + bias[n + 1])).astype(dtype)
              for n, a in enumerate(bounds)]
        return cls(tuple(sizes), tuple(bias), ws, activations)

    @property
    def dtype(self):
        """The weights' precision (float64 by default; float32 as the thesis' GPU code ran)."""
        return self.W[0].dtype

    @property
    def depth(self) -> int:
        """Number of free layers L."""
        return len(self.sizes) - 1

    def with_bias(self, n: int, a):
        return np.concatenate([a, np.ones((len(a), 1), dtype=a.dtype)], axis=1) if self.bias[n] else a

    def backward(self, n: int):
        """The matrix whose transposed read drives layer n from layer n+1 (``W[n]`` when tied)."""
        return self.W[n] if self.back is None else self.back[n]

    def untie(self, angle_deg: float, rng: np.random.Generator):
        """Give the net backward weights at ``angle_deg`` from the forward ones (C-VF's initial angle).

        As the chip's :func:`learning.ep.align_backward` does (thesis Part V):
        back = M (.) W with a random +-1 mask, P(-1) = (1 - cos angle) / 2, so
        that E[cos angle(W, back)] = cos angle.
        """
        p = (1.0 - np.cos(np.radians(angle_deg))) / 2.0
        self.back = [None] + [np.where(rng.random(w.shape) < p, -w, w) for w in self.W[1:]]


@dataclass
class Settled:
    """States s and activities a of the free layers (index 0 holds the clamped input's activities)."""

    s: list
    a: list


def input_drive(net: LayeredNet, x):
    """The constant part of u_1: the clamped input's forward read."""
    return net.with_bias(0, x) @ net.W[0][:, :net.sizes[1]]


def preactivations(net: LayeredNet, a: list, drive0, nudge=None):
    """u_n for every free layer n = 1..L from activities ``a`` (a[0] = input); rails not applied."""
    L = net.depth
    u = [None] * (L + 1)
    for n in range(1, L + 1):
        un = drive0.copy() if n == 1 else net.with_bias(n - 1, a[n - 1]) @ net.W[n - 1][:, :net.sizes[n]]
        if n < L:
            un += net.with_bias(n + 1, a[n + 1]) @ net.backward(n)[:net.sizes[n], :].T
        u[n] = un
    if nudge is not None:
        y, beta = nudge
        u[L] = u[L] + beta * (y - a[L])
    return u


def step(net: LayeredNet, st: Settled, drive0, *, mode="discrete", eps=1.0, nudge=None,
         nudge_at="current") -> Settled:
    """One synchronous update of every free layer.

    ``nudge = (y, beta)`` enters as a current into the output neurons (``nudge_at="current"``, what
    a circuit does) or is added to their new activities (``"activity"``, the thesis' P setting).
    """
    into_u, onto_a = split_nudge(nudge, nudge_at)
    return advance(net, st, preactivations(net, st.a, drive0, into_u), mode=mode, eps=eps, nudge=onto_a)


def split_nudge(nudge, nudge_at: str):
    """``(for preactivations, for advance)``: the nudge goes to one of them, None to the other."""
    if nudge_at not in NUDGE_PLACES:
        raise ValueError(f"nudge_at = {nudge_at!r}; allowed: {', '.join(map(repr, NUDGE_PLACES))}")
    return (nudge, None) if nudge_at == "current" else (None, nudge)


def advance(net: LayeredNet, st: Settled, u: list, *, mode="discrete", eps=1.0, nudge=None) -> Settled:
    """The states and activities one step after ``st``, given the pre-activations ``u`` (rails applied here).

    ``nudge = (y, beta)``: add beta (y - a_L) to the output's new activities (the thesis' placement,
    outside the activation); a nudge through the pre-activations goes to :func:`preactivations`.
    """
    s, a = [st.s[0]], [st.a[0]]
    for n in range(1, net.depth + 1):
        act = net.activations[n - 1]
        un, _ = act.rails(u[n])
        sn = un if mode == "discrete" else st.s[n] + eps * (un - st.s[n])
        s.append(sn)
        a.append(act(sn))
    if nudge is not None:
        y, beta = nudge
        a[-1] = a[-1] + beta * (y - st.a[-1])
    return Settled(s, a)


def initial_state(net: LayeredNet, x) -> Settled:
    """All free states at 0 (the chip's default), activities act(0)."""
    s = [x] + [np.zeros((len(x), n), dtype=x.dtype) for n in net.sizes[1:]]
    a = [x] + [net.activations[n - 1](s[n]) for n in range(1, net.depth + 1)]
    return Settled(s, a)


def settle(net: LayeredNet, x, steps: int, *, mode="discrete", eps=1.0, nudge=None, nudge_at="current",
           start: Settled | None = None, trace=False):
    """Run ``steps`` updates from ``start`` (default: zero states); returns (Settled, trace list)."""
    x = np.atleast_2d(np.asarray(x, dtype=net.dtype))
    st = start if start is not None else initial_state(net, x)
    drive0 = input_drive(net, x)
    seq = [st] if trace else []
    for _ in range(steps):
        st = step(net, st, drive0, mode=mode, eps=eps, nudge=nudge, nudge_at=nudge_at)
        if trace:
            seq.append(st)
    return st, seq


def settle_gap(net: LayeredNet, x, steps: int, *, mode="discrete", eps=1.0):
    """``(Settled after steps, gap per sample)``: the largest change of any free activity at the last step.

    A settled sample has a gap near 0. In the discrete (synchronous) map, layer n
    at step t+1 depends on layers n +- 1 at step t only, so the odd and even
    half-steps run as two independent copies of the network; when they land in
    different fixed points the state alternates between them (a two-step cycle)
    and the gap is of order 1. Such samples are what C-VF turns into large weight
    changes (scripts/cycle_probe.py).
    """
    before, _ = settle(net, x, steps - 1, mode=mode, eps=eps)
    after, _ = settle(net, x, 1, mode=mode, eps=eps, start=before)
    return after, largest_change(before, after)


def largest_change(before: Settled, after: Settled):
    """Per sample, the largest change of any free activity from ``before`` to ``after``."""
    return np.max(np.abs(np.concatenate(after.a[1:], axis=1) - np.concatenate(before.a[1:], axis=1)), axis=1)


def products(net: LayeredNet, a: list) -> list:
    """dPhi/dW_n up to sign: A_n^T A_{n+1}, summed over the batch, one per weight matrix."""
    return [net.with_bias(n, a[n]).T @ net.with_bias(n + 1, a[n + 1]) for n in range(net.depth)]


def vf_increments(net: LayeredNet, before: list, after: list, rho_prime: bool = False):
    """Vector-field EP's 'pre x post change' for one step: ``(forward, backward)`` lists, batch-summed.

    ``forward[n] = A_n(t)^T (A_{n+1}(t+1) - A_{n+1}(t))`` (the change of the
    layer a tile drives, times the layer driving it), ``backward[n] =
    (A_n(t+1) - A_n(t))^T A_{n+1}(t)`` for the transposed read (None for n = 0).
    Tied weights receive the sum of both, as a bidirectional chip tile does.
    ``rho_prime``: each change is first multiplied by the activation's slope at the
    tile's own read at time t (:func:`tile_reads`), as in the code behind the thesis'
    C-VF results (see :class:`SoftwareEP`).
    """
    gate_f, gate_b = tile_reads(net, before) if rho_prime else (None, None)
    fwd, bwd = [], [None]
    for n in range(net.depth):
        pre, post0, post1 = (net.with_bias(n, before[n]), net.with_bias(n + 1, before[n + 1]),
                             net.with_bias(n + 1, after[n + 1]))
        fwd.append(pre.T @ gated(net, n + 1, post1 - post0, gate_f and gate_f[n]))
        if n > 0:
            bwd.append(gated(net, n, net.with_bias(n, after[n]) - pre, gate_b and gate_b[n]).T @ post0)
    if net.back is None:
        return [f + (b if b is not None else 0.0) for f, b in zip(fwd, bwd)], None
    return fwd, bwd


def tile_reads(net: LayeredNet, a: list, extra_f=None, extra_b=None, first=None):
    """``(forward, backward)``: per tile n, the activation slope of layer n+1 at the tile's forward read
    A_n W_n, and of layer n at its backward (transposed) read (None for n = 0).

    A read is the tile's own contribution to its layer's input (bias row included), not the layer's
    whole pre-activation. ``extra_f[n]`` / ``extra_b[n]``: a change of the read to add (the moved
    weights of :mod:`learning.ep_lowrank`). ``first``: the first tile's read when the caller
    has it (:func:`input_drive`: the clamped input's, the costliest to redo)."""
    fwd, bwd = [], [None]
    for n in range(net.depth):
        r = first if n == 0 and first is not None else net.with_bias(n, a[n]) @ net.W[n][:, :net.sizes[n + 1]]
        if extra_f is not None:
            r = r + extra_f[n]
        fwd.append(net.activations[n].derivative(r))
        if n > 0:
            r = net.with_bias(n + 1, a[n + 1]) @ net.backward(n)[:net.sizes[n], :].T
            if extra_b is not None:
                r = r + extra_b[n]
            bwd.append(net.activations[n - 1].derivative(r))
    return fwd, bwd


def gated(net: LayeredNet, layer: int, change, gate):
    """``change`` (a layer's activities' change, bias column included) times ``gate`` unit by unit."""
    if gate is None:
        return change
    change = change.copy()
    change[:, :net.sizes[layer]] *= gate
    return change


def ep_statistic(net: LayeredNet, a_plus: list, a_minus: list, beta_plus: float, beta_minus: float) -> list:
    """(P(a+) - P(a-)) / (beta+ - beta-) / batch: one-sided when beta- = 0, centred when beta- = -beta+."""
    B = len(a_plus[0])
    return [(p - m) / ((beta_plus - beta_minus) * B) for p, m in zip(products(net, a_plus), products(net, a_minus))]


def loss(net: LayeredNet, a_out, y) -> float:
    """l = ||a_L - y||^2 / 2, summed over outputs, averaged over the batch."""
    return float(0.5 * np.sum((a_out - y) ** 2) / len(y))


# ---------------------------------------------------------------------------------------------------- BPTT
def bptt_traces(net: LayeredNet, x, y, T: int, K: int, *, mode="discrete", eps=1.0):
    """Elementary BPTT gradients of L = l(a_L(T)) through the last K steps of a T-step free phase.

    Returns ``(grad_s, grad_w)``: ``grad_s[t][n]`` = dL/ds_n(T - t) for t = 0..K,
    ``grad_w[t][n]`` = the part of dL/dW_n contributed by step T - t (t = 1..K;
    ``grad_w[0]`` is zero), all averaged over the batch. EP's per-step
    increments should approach ``-grad_s`` and ``-grad_w`` (thesis Theorem 4).
    """
    if net.back is not None:
        raise ValueError("bptt_traces: the net has untied backward weights; BPTT here assumes tied ones")
    x = np.atleast_2d(np.asarray(x, dtype=float))
    _, seq = settle(net, x, T, mode=mode, eps=eps, trace=True)
    drive0 = input_drive(net, x)
    L, B = net.depth, len(x)
    sT = seq[T]
    act_L = net.activations[L - 1]
    gs = [np.zeros_like(sn) for sn in sT.s]
    gs[L] = (sT.a[L] - y) * act_L.derivative(sT.s[L]) / B
    grad_s = [[g.copy() for g in gs]]
    grad_w = [[np.zeros_like(w) for w in net.W]]
    for t in range(1, K + 1):
        prev = seq[T - t]                        # s(T - t): the step from it produced s(T - t + 1)
        u = preactivations(net, prev.a, drive0)
        ga = [np.zeros_like(an) for an in prev.a]
        gw = [np.zeros_like(w) for w in net.W]
        new_gs = [np.zeros_like(sn) for sn in prev.s]
        for n in range(1, L + 1):
            _, inside = net.activations[n - 1].rails(u[n])
            gu = gs[n] * inside * (1.0 if mode == "discrete" else eps)
            if mode == "euler":
                new_gs[n] += (1.0 - eps) * gs[n]
            Wdown = net.W[n - 1][:, :net.sizes[n]]
            Adown = net.with_bias(n - 1, prev.a[n - 1])
            gw[n - 1][:, :net.sizes[n]] += Adown.T @ gu
            ga[n - 1] += (gu @ Wdown.T)[:, :net.sizes[n - 1]]
            if n < L:
                Wup = net.W[n][:net.sizes[n], :]
                Aup = net.with_bias(n + 1, prev.a[n + 1])
                gw[n][:net.sizes[n], :] += gu.T @ Aup
                ga[n + 1] += (gu @ Wup)[:, :net.sizes[n + 1]]
        for n in range(1, L + 1):
            new_gs[n] += ga[n] * net.activations[n - 1].derivative(prev.s[n])
        gs = new_gs
        grad_s.append([g.copy() for g in gs])
        grad_w.append(gw)
    return grad_s, grad_w


def ep_traces(net: LayeredNet, x, y, T: int, K: int, beta: float, *, mode="discrete", eps=1.0):
    """EP's per-step increments in phase 2, normalised as BPTT's gradients (batch-averaged).

    ``delta_s[t][n] = (a_n^beta(t+1) - a_n^beta(t)) / (beta_eff batch)`` (t = 0..K-1), to
    compare with ``-grad_s[t][n]``, and ``delta_w[t][n] = (P_n(t) - P_n(t-1)) / (beta batch)``
    (t = 1..K), to compare with ``-grad_w[t][n]``. The neuron trace is the change of
    the *activities*: with the nudge entering as a current through the activation,
    a change of activity is what matches dL/ds (measured: RelMSE ~2e-3 on small
    nets). In the euler setting the nudge is integrated over a step eps, so the
    effective nudge is ``beta_eff = beta eps`` (as in the thesis' EB setting).
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    free, _ = settle(net, x, T, mode=mode, eps=eps)
    _, seq = settle(net, x, K, mode=mode, eps=eps, nudge=(y, beta), start=free, trace=True)
    B = len(x)
    beta_eff = beta * (eps if mode == "euler" else 1.0)
    delta_s = [[(seq[t + 1].a[n] - seq[t].a[n]) / (beta_eff * B) if n else None for n in range(net.depth + 1)]
               for t in range(K)]
    P = [products(net, st.a) for st in seq]
    delta_w = [[np.zeros_like(w) for w in net.W]] + \
              [[(P[t][n] - P[t - 1][n]) / (beta * B) for n in range(net.depth)] for t in range(1, K + 1)]
    return delta_s, delta_w


def rel_mse(f, g) -> float:
    """Thesis RelMSE of two traces (time first): mean over units of ||f-g||_K / max(||f||_K, ||g||_K)."""
    f, g = np.asarray(f), np.asarray(g)
    nf, ng = np.sqrt(np.mean(f ** 2, axis=0)), np.sqrt(np.mean(g ** 2, axis=0))
    d = np.sqrt(np.mean((f - g) ** 2, axis=0))
    den = np.maximum(nf, ng)
    ok = den > 0
    return float(np.mean(d[ok] / den[ok])) if ok.any() else 0.0


# ---------------------------------------------------------------------------------------------------- training
class SoftwareEP:
    """Plain-numpy EP training of a :class:`LayeredNet` (the baseline a chip is compared with).

    ``estimator``: ``one-sided`` (beta), ``centred`` (+beta and -beta) or
    ``random`` (the sign of beta drawn per mini-batch, thesis Part V).
    ``continual``: C-EP / C-VF (thesis Alg. 5): the weights move at every nudged
    step by ``lr`` times that step's increment over (beta batch), and the next
    step runs on the moved weights, as the chip's pulses at every step do.
    ``rule``: ``ep`` (product differences) or ``vf`` (:func:`vf_increments`;
    untied nets need it, since their forward and backward weights get
    different increments). ``lowrank``: run the continual phase with the moving
    weights as low-rank factors (:mod:`learning.ep_lowrank`, several times
    faster); False updates the matrices step by step (the reference).
    ``nudge_at``: ``current`` (into the output neurons, as on the chip) or
    ``activity`` (added after the activation, the thesis' prototypical setting).
    ``frozen_hidden_bias``: the hidden layers' biases are never updated (the
    output's are), as in the thesis' C-VF code.
    ``skip_unsettled``: a settle-gap threshold (:func:`settle_gap`); samples whose
    free phase ends further from a fixed point than this (in practice: caught in a
    two-step cycle) are left out of the nudged phase and the update, which then
    averages over the rest. None (the default, and the thesis) keeps every sample.
    Left-out samples are counted in ``self.skipped``. A chip can apply the same test:
    it compares its outputs at the last two free steps.
    ``vf_rho_prime``: C-VF's increments multiply each activity change by the
    activation's slope at the tile's own read (:func:`tile_reads`). The thesis'
    text drops that factor; the code its C-VF results most likely came from
    (ernoult/continualEP, branch ``cep``) keeps it. It damps the changes of
    saturated units, among them those of images caught in a two-step cycle.
    """

    def __init__(self, net: LayeredNet, *, T: int, K: int, beta: float, lrs, mode="discrete", eps=1.0,
                 estimator="one-sided", continual=False, rule="ep", lowrank=True, nudge_at="current",
                 frozen_hidden_bias=False, skip_unsettled: float | None = None, vf_rho_prime=False,
                 rng: np.random.Generator | None = None):
        if rule not in ("ep", "vf"):
            raise ValueError(f"rule = {rule!r}; allowed: 'ep', 'vf'")
        split_nudge(None, nudge_at)             # checks nudge_at now, not at the first nudged step
        if net.back is not None and not (rule == "vf" and continual):
            raise ValueError("untied backward weights are trained by continual vector-field EP only "
                             "(rule='vf', continual=True)")
        if continual and estimator == "centred":
            raise ValueError("estimator 'centred' needs two nudged phases from the same weights; "
                             "continual updates move them during the first (use 'random' or 'one-sided')")
        self.net, self.T, self.K, self.beta = net, T, K, beta
        self.lrs, self.mode, self.eps, self.estimator = list(lrs), mode, eps, estimator
        self.continual, self.rule, self.lowrank, self.nudge_at = continual, rule, lowrank, nudge_at
        # tile n's bias row (its lower layer's bias unit) drives layer n + 1: a hidden layer for n < L - 1
        self.frozen = tuple(n for n in range(net.depth - 1) if net.bias[n]) if frozen_hidden_bias else ()
        if skip_unsettled is not None and not skip_unsettled > 0:
            raise ValueError(f"skip_unsettled = {skip_unsettled!r} is outside the allowed range (0, inf)")
        self.skip_unsettled, self.skipped = skip_unsettled, 0
        if vf_rho_prime and not (rule == "vf" and continual):
            raise ValueError("vf_rho_prime applies to continual vector-field EP only (rule='vf', continual=True)")
        self.vf_rho_prime = vf_rho_prime
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def _draw_beta(self):
        if self.estimator == "random" and self.rng.random() < 0.5:
            return -self.beta
        return self.beta

    def _free_phase(self, x, y):
        """``(free, x, y, start)``: the free phase of the batch, and the samples the update uses with
        their free states (all of them unless ``skip_unsettled`` leaves some out)."""
        if self.skip_unsettled is None:
            free, _ = settle(self.net, x, self.T, mode=self.mode, eps=self.eps)
            return free, x, y, free
        # the same T steps as settle(), split to expose the last one's change
        free, gap = settle_gap(self.net, x, self.T, mode=self.mode, eps=self.eps)
        keep = gap <= self.skip_unsettled
        self.skipped += int(np.sum(~keep))
        if keep.all():
            return free, x, y, free
        return free, x[keep], y[keep], Settled([s[keep] for s in free.s], [a[keep] for a in free.a])

    def statistic(self, x, y):
        net = self.net
        free, x, y, start = self._free_phase(np.atleast_2d(np.asarray(x, dtype=net.dtype)), np.asarray(y))
        beta = self._draw_beta()
        if len(x) == 0:
            return [np.zeros_like(w) for w in net.W], free
        kw = dict(mode=self.mode, eps=self.eps, nudge_at=self.nudge_at, start=start)
        plus, _ = settle(net, x, self.K, nudge=(y, beta), **kw)
        if self.estimator == "centred":
            minus, _ = settle(net, x, self.K, nudge=(y, -beta), **kw)
            return ep_statistic(net, plus.a, minus.a, beta, -beta), free
        return ep_statistic(net, plus.a, start.a, beta, 0.0), free

    def train_batch(self, x, y):
        """One mini-batch; returns the free phase's Settled (its outputs are the predictions)."""
        if self.continual:
            dt = self.net.dtype
            return self._train_continual(np.atleast_2d(np.asarray(x, dtype=dt)), np.asarray(y, dtype=dt))
        stat, free = self.statistic(x, y)
        for n in self.frozen:
            stat[n][-1] = 0.0
        for w, d, lr in zip(self.net.W, stat, self.lrs):
            w += lr * d
        return free

    def _train_continual(self, x, y):
        net = self.net
        free, x, y, start = self._free_phase(x, y)
        beta = self._draw_beta()
        if len(x) == 0:
            return free
        if self.lowrank:
            from learning.ep_lowrank import continual_nudged_phase   # it builds on this module
            continual_nudged_phase(net, x, y, start, beta, self.K, self.lrs, rule=self.rule, mode=self.mode,
                                   eps=self.eps, nudge_at=self.nudge_at, frozen=self.frozen,
                                   rho_prime=self.vf_rho_prime)
            return free
        scale = 1.0 / (beta * len(x))
        prev = start
        for _ in range(self.K):
            # the input's forward read is redone every step: W[0] moved at the step before
            cur = step(net, prev, input_drive(net, x), mode=self.mode, eps=self.eps, nudge=(y, beta),
                       nudge_at=self.nudge_at)
            if self.rule == "vf":
                fwd, bwd = vf_increments(net, prev.a, cur.a, rho_prime=self.vf_rho_prime)
            else:
                fwd, bwd = [p1 - p0 for p1, p0 in zip(products(net, cur.a), products(net, prev.a))], None
            for n in self.frozen:
                fwd[n][-1] = 0.0
            for n, lr in enumerate(self.lrs):
                net.W[n] += lr * scale * fwd[n]
                if bwd is not None and bwd[n] is not None:
                    net.back[n] += lr * scale * bwd[n]
            prev = cur
        return free

    def predict(self, x):
        st, _ = settle(self.net, x, self.T, mode=self.mode, eps=self.eps)
        return np.argmax(st.a[-1], axis=1)
