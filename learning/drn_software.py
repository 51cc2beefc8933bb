"""Floating-point reference of a deep resistive network in Scellier 2024's idealisation.

This module knows nothing about hardware. It is the baseline that tells how far
the circuit DRN (:class:`circuits.ResistiveNetwork`, trained through pulses by
:mod:`learning.resistive_ep`) is from the algorithm it physically implements
when every element is ideal, as in Scellier's fast DRN simulator:

- conductances are unbounded above and clamped at >= 0 (no device floor, no
  ceiling, no pulse quantum);
- the hidden nonlinearities are *ideal* diodes to 0 V: the first half of each
  hidden layer is clamped to V >= 0, the second half to V <= 0;
- biases are ideal current sources into the hidden and output nodes;
- the inputs are voltage sources ``gain * [x, -x]`` (pixels and inverted copies);
- the output nodes are linear; the nudge adds beta/2 ||V_out - y||^2 to the
  power, i.e. a current beta (y - V_out) into each output node.

The operating point minimises the power E = sum 1/2 G_ij (V_i - V_j)^2 - b.V
(+ the nudge) under the diode constraints. With the other layers fixed, E is a
quadratic in one layer, so its exact minimum is Millman's theorem
V_j = (sum_i G_ij V_i + b_j) / sum_i G_ij, clipped to the diode's half-line.
The layers of a layered network are alternately independent, so updating the
odd layers together and then the even ones is an exact block coordinate
descent (Scellier 2024). ``sweeps`` sweeps of it, starting from 0 V, as in his
code (4 for the 1568-100-10 network); ``sweeps=None`` iterates to convergence.

The centred EP estimate of dL/dG_ij is
[1/2 dV_ij(+beta)^2 - 1/2 dV_ij(-beta)^2] / (2 beta), and of dL/db_j it is
-[V_j(+beta) - V_j(-beta)] / (2 beta); both phases start from the free
operating point.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .resistive_ep import duplicate_inverted, squared_drop_sums


def _fan_in(sizes) -> list:
    """Nodes feeding each crossbar: the input sources (pixels and inverted copies), then each hidden layer."""
    return [2 * int(sizes[0])] + [int(n) for n in sizes[1:-1]]


@dataclass
class SoftwareDRN:
    """A layered DRN with ideal elements, trained by centred EP and plain SGD.

    ``sizes`` are the node counts, input side first, the inputs counted once
    (784 for MNIST: the 1568 input sources are the pixels and their inverted
    copies). ``G[k]`` (shape ``(2 sizes[0], sizes[1])`` for k = 0, else
    ``(sizes[k], sizes[k+1])``) holds the conductances between layer k and
    layer k+1; ``b[k]`` the bias currents into layer k+1.
    """

    sizes: tuple
    gain: float = 100.0
    """Input amplifier gain: a white pixel drives its row at +gain V, its copy at -gain V."""
    beta: float = 1.0
    """Nudging conductance (the unit of the conductances)."""
    lrs: tuple = (0.006, 0.006)
    """SGD learning rate per crossbar (input side first); the biases use the same rate."""
    sweeps: int | None = 4
    """Block coordinate descent sweeps per phase; None: until nothing moves by more than 1e-12 V."""
    G: list = field(default_factory=list)
    b: list = field(default_factory=list)
    learn_biases: bool = True
    """False: the bias currents stay at 0 (a chip with bias rows instead of current sources)."""
    g_bounds: list | None = None
    """Optional (g_min, g_max) per crossbar that SGD clips to, to mimic bounded devices; None: [0, inf)."""

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 3 or any(s < 1 for s in self.sizes):
            raise ValueError(f"sizes = {self.sizes!r}: need at least input, one hidden and output layer, all >= 1")
        if not all(s % 2 == 0 for s in self.sizes[1:-1]):
            raise ValueError(f"hidden sizes {self.sizes[1:-1]!r} must be even (half rectify from below, half above)")
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta = {self.beta!r} is outside the allowed range (0, inf)")
        if self.sweeps is not None and self.sweeps < 1:
            raise ValueError(f"sweeps = {self.sweeps!r} is outside the allowed range sweeps >= 1 (or None)")
        self.lrs = tuple(float(v) for v in np.broadcast_to(np.asarray(self.lrs, dtype=float), (len(self.sizes) - 1,)))
        if not self.b:
            self.b = [np.zeros(n) for n in self.sizes[1:]]

    @classmethod
    def clamped_uniform(cls, sizes, rng: np.random.Generator, scales, *, g_bounds=None, normal: bool = False,
                        **kw) -> "SoftwareDRN":
        """G_k ~ U(-scales[k], scales[k]) clamped at 0 (half are 0), b = 0.

        ``normal``: G_k ~ N(0, scales[k]^2) clamped at 0 instead (what a device
        model drawing N(g_min, sigma^2) clipped at g_min gives).
        With ``g_bounds`` ((g_min, g_max), or one pair per crossbar) the devices are
        bounded and the initial draw is clipped into that range: the devices start
        at g_min where Scellier's start at 0.
        """
        net = cls(sizes, **kw)
        fan_in = _fan_in(net.sizes)
        scales = np.broadcast_to(np.asarray(scales, dtype=float), (len(fan_in),))
        draw = rng.standard_normal if normal else (lambda shape: rng.uniform(-1, 1, shape))
        net.G = [np.maximum(draw((m, n)) * s, 0.0) for m, n, s in zip(fan_in, net.sizes[1:], scales)]
        if g_bounds is not None:
            b = np.asarray(g_bounds, dtype=float)
            net.g_bounds = [tuple(map(float, b))] * len(fan_in) if b.ndim == 1 else [tuple(map(float, r)) for r in b]
            net.G = [np.clip(g, lo, hi) for g, (lo, hi) in zip(net.G, net.g_bounds)]
        return net

    @classmethod
    def kaiming_clamped(cls, sizes, rng: np.random.Generator, **kw) -> "SoftwareDRN":
        """Scellier's initialisation: G ~ U(-1/sqrt(n_in), 1/sqrt(n_in)) clamped at 0 (half are 0); b = 0."""
        return cls.clamped_uniform(sizes, rng, [1 / np.sqrt(m) for m in _fan_in(sizes)], **kw)

    @classmethod
    def bounded_midpoint(cls, sizes, rng: np.random.Generator, *, on_off: float = 100.0, init_std: float = 0.4,
                         **kw) -> "SoftwareDRN":
        """Our chips' initialisation mapped onto Scellier's scale: bounded devices drawn around their midpoint.

        Crossbar k's devices span [g_max / on_off, g_max] with a midpoint equal to the mean of Scellier's
        clamped initialisation (1 / (4 sqrt(n_in))), so that beta and the biases weigh the same; they start
        at N(mid, (init_std mid)^2) clipped to the range, as ``crossbar.devices`` draws them.
        """
        net = cls(sizes, **kw)
        net.G, net.g_bounds = [], []
        for m, n in zip(_fan_in(net.sizes), net.sizes[1:]):
            mid = 0.25 / np.sqrt(m)
            g_max = 2 * mid / (1 + 1 / on_off)
            lo, hi = g_max / on_off, g_max
            net.G.append(np.clip(mid + init_std * mid * rng.standard_normal((m, n)), lo, hi))
            net.g_bounds.append((lo, hi))
        return net

    # ------------------------------------------------------------------ physics
    def inputs(self, images) -> np.ndarray:
        return duplicate_inverted(np.asarray(images, dtype=float).reshape(len(images), -1), self.gain)

    def _layer_solve(self, k: int, V: list, nudge) -> np.ndarray:
        """Millman's theorem for layer k+1 (the others fixed), then its diodes."""
        num = V[k] @ self.G[k] + self.b[k]
        den = self.G[k].sum(axis=0)
        last = k + 1 == len(self.G)
        if not last:
            num = num + V[k + 2] @ self.G[k + 1].T
            den = den + self.G[k + 1].sum(axis=1)
        elif nudge is not None:
            beta, y = nudge
            num = num + beta * y
            den = den + beta
        if np.any(den <= 0):
            j = int(np.flatnonzero(den <= 0)[0])
            if last and nudge is not None and nudge[0] < 0:
                raise FloatingPointError(f"the nudge {nudge[0]:g} outweighs the conductance {den[j] - nudge[0]:g} of "
                                         f"output node {j}: the negative phase has no minimum; lower beta")
            raise FloatingPointError(f"node {j} of layer {k + 1} has no conductance to anything: "
                                     "its voltage is undefined")
        v = num / den
        if not last:
            h = v.shape[1] // 2
            v[:, :h] = np.maximum(v[:, :h], 0.0)
            v[:, h:] = np.minimum(v[:, h:], 0.0)
        return v

    def settle(self, u, *, nudge=None, start: list | None = None) -> list:
        """Node voltages of every layer, [u, V_1, ..., V_out], by block coordinate descent."""
        B = len(u)
        V = [u] + ([np.zeros((B, n)) for n in self.sizes[1:]] if start is None else [s.copy() for s in start[1:]])
        odd = range(0, len(self.G), 2)   # layers 1, 3, ...: solved together, then the even ones
        even = range(1, len(self.G), 2)
        limit = self.sweeps if self.sweeps is not None else 100_000
        for _ in range(limit):
            old = [v.copy() for v in V[1:]] if self.sweeps is None else None
            for group in (odd, even):
                for k in group:
                    V[k + 1] = self._layer_solve(k, V, nudge)
            if old is not None and max(float(np.max(np.abs(a - b))) for a, b in zip(V[1:], old)) < 1e-12:
                break
        return V

    def power(self, V, nudge=None) -> np.ndarray:
        """Per-sample E = sum 1/2 G dV^2 - b.V (+ beta/2 ||V_out - y||^2): what settle minimises."""
        e = np.zeros(len(V[0]))
        for k, G in enumerate(self.G):
            d2 = ((V[k] ** 2) @ G.sum(axis=1) + (V[k + 1] ** 2) @ G.sum(axis=0)
                  - 2 * np.einsum("bi,ij,bj->b", V[k], G, V[k + 1]))
            e += 0.5 * d2 - V[k + 1] @ self.b[k]
        if nudge is not None:
            beta, y = nudge
            e += 0.5 * beta * np.sum((V[-1] - y) ** 2, axis=1)
        return e

    # ------------------------------------------------------------------ learning
    def gradients(self, images, y) -> tuple[list, list, list]:
        """Centred EP estimates of dL/dG and dL/db (batch means), and the free operating point."""
        u = self.inputs(images)
        free = self.settle(u)
        plus = self.settle(u, nudge=(self.beta, y), start=free)
        minus = self.settle(u, nudge=(-self.beta, y), start=free)
        s = 1.0 / (2.0 * self.beta * len(u))
        gG = [0.5 * s * (squared_drop_sums(plus[k], plus[k + 1]) - squared_drop_sums(minus[k], minus[k + 1]))
              for k in range(len(self.G))]
        gb = [-s * (plus[k + 1] - minus[k + 1]).sum(0) for k in range(len(self.G))]
        return gG, gb, free

    def train_batch(self, images, y) -> list:
        """One SGD step on a mini-batch; returns the free operating point (before the step)."""
        gG, gb, free = self.gradients(images, y)
        for k, lr in enumerate(self.lrs):
            lo, hi = (0.0, np.inf) if self.g_bounds is None else self.g_bounds[k]
            self.G[k] = np.clip(self.G[k] - lr * gG[k], lo, hi)
            if self.learn_biases:
                self.b[k] = self.b[k] - lr * gb[k]
        return free

    def predict(self, images) -> np.ndarray:
        """Index of the most positive output node of each sample's free operating point."""
        return np.argmax(self.settle(self.inputs(images))[-1], axis=1)

    def loss(self, images, y) -> float:
        """Mean over the batch of 1/2 ||V_out - y||^2 at the free operating point."""
        return float(np.mean(0.5 * np.sum((self.settle(self.inputs(images))[-1] - y) ** 2, axis=1)))
