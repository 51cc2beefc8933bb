"""Equilibrium propagation on a deep resistive network, through node voltages and pulses only.

The hardware is :class:`circuits.ResistiveNetwork` (Kendall et al. 2020;
Scellier 2024). Its DC operating point minimises the energy
E = sum 1/2 G_ij dV_ij^2 (+ diode co-contents), where dV_ij is the voltage
across device ij; the nudged phase adds beta L with L = 1/2 ||V_out - y||^2,
by injecting the current beta (y - V_out) into each output node. The EP
theorem (Scellier & Bengio 2017) gives, for every device,

    dL/dG_ij = d/dbeta [dE/dG_ij](s_beta) at beta = 0,   dE/dG_ij = 1/2 dV_ij^2,

estimated here with the centred difference of two nudged phases (Laborieux et
al. 2021; the DRN choice of Scellier 2024):

    dL/dG_ij ~ [dV_ij(+beta)^2 - dV_ij(-beta)^2] / (4 beta),

averaged over the mini-batch. Gradient descent wants dG = -eta dL/dG, so the
statistic handed to the pulse policy is ``-dL/dG`` (V^2/S): a device whose
squared voltage grows when the output is pulled towards the target must be
depressed. (The factor 1/2 of dE/dG makes it 1/(4 beta), not 1/(2 beta).)

What the rule observes: the voltages of the network's nodes and row lines
(``DRNOperatingPoint.layers`` and ``.rows``), as probes on a chip would, and
it knows the topology (every row line of crossbar k to every node of layer
k+1), so dV_ij = rows_i - nodes_j. What it does: signed pulse widths from an
update policy (:mod:`learning.updates`: Proportional, Cst, RProp), sent as
``RowByRowWrite`` schedules through ``network.pulse``. It never reads or sets
a conductance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import circuits

from .updates import UpdatePolicy


def duplicate_inverted(images, v_in: float) -> np.ndarray:
    """Input voltages (B, 2 n): each pixel at ``+v_in x`` and its inverted copy at ``-v_in x``.

    Conductances are positive, so a signed effective weight from pixel i to
    node j is the difference of the two devices it sees (Kendall 2020's 1568
    inputs; Scellier 2024's ``input_gain`` is the amplifier gain A_0 on top).
    """
    x = np.asarray(images, dtype=float)
    x = x[None] if x.ndim == 1 else x
    return v_in * np.concatenate([x, -x], axis=1)


def squared_voltage_sums(op) -> list:
    """sum over the batch of dV_ij^2 for every device, per crossbar: a list of (M_k, N_k) arrays.

    Computed as sum r_i^2 - 2 r.x + sum x_j^2, so the (B, M, N) device voltages
    are never formed.
    """
    return [squared_drop_sums(r, op.layers[k + 1]) for k, r in enumerate(op.rows)]


def squared_drop_sums(a, c) -> np.ndarray:
    """sum over the batch of (a_i - c_j)^2 for every pair (i, j) of nodes: (B, M), (B, N) -> (M, N)."""
    return (a * a).sum(axis=0)[:, None] + (c * c).sum(axis=0)[None, :] - 2.0 * (a.T @ c)


@dataclass
class StepStats:
    """What one EP step measured (free-phase loss and errors are of the batch before the update)."""

    loss: float
    """Mean over the batch of 1/2 ||V_out - y||^2 at the free operating point (V^2)."""
    errors: int
    """Samples whose most positive output is not the target's."""
    n_pulsed: int
    """Devices that received a pulse."""
    reports: list = field(default_factory=list)
    """The network's report of each crossbar's write (time, energy, pulses)."""


class ResistiveEP:
    """Centred EP on a :class:`circuits.ResistiveNetwork`, updates as pulses.

    Parameters
    ----------
    network : circuits.ResistiveNetwork
    policies : UpdatePolicy or {crossbar name: UpdatePolicy}
        Turn the statistic ``-dL/dG`` (V^2/S, batch mean) into signed pulse
        widths; one policy for all crossbars (stateless ones, e.g.
        Proportional) or one per crossbar (RProp keeps per-device state).
    beta : float
        Nudging conductance (S, > 0); the two nudged phases use +beta and -beta.
    """

    def __init__(self, network, policies, *, beta: float):
        # duck-typed: any instrument that settles (free and nudged) and takes pulse schedules
        for method in ("operating_points", "operating_point", "pulse"):
            if not callable(getattr(network, method, None)):
                raise TypeError(f"network must be a circuits.ResistiveNetwork (it has no {method}()); "
                                f"got {type(network).__name__}")
        if not (np.isfinite(beta) and beta > 0):
            raise ValueError(f"beta = {beta!r} S is outside the allowed range (0, inf) S")
        self.network = network
        self.beta = float(beta)
        names = network.crossbars
        if isinstance(policies, UpdatePolicy):
            policies = {n: policies for n in names}
        missing = [n for n in names if n not in policies]
        if missing:
            raise ValueError(f"no update policy for crossbar(s) {', '.join(missing)}")
        self.policies = dict(policies)

    # ------------------------------------------------------------------ phases
    def phases(self, inputs, target):
        """Free, +beta and -beta operating points for one mini-batch."""
        y = np.asarray(target, dtype=float)
        return self.network.operating_points(inputs, [None, (y, self.beta), (y, -self.beta)])

    def gradients(self, inputs, target):
        """EP estimate of dL/dG (V^2/S) for every device, batch mean; and the free operating point.

        Returns ``({crossbar name: (M, N) array}, free operating point)``.
        """
        free, plus, minus = self.phases(inputs, target)
        B = free.layers[0].shape[0]
        sp, sm = squared_voltage_sums(plus), squared_voltage_sums(minus)
        grads = {name: (a - b) / (4.0 * self.beta * B) for name, a, b in zip(self.network.crossbars, sp, sm)}
        return grads, free

    # ------------------------------------------------------------------ learning
    def step(self, inputs, target, labels=None) -> StepStats:
        """One mini-batch: three settles, then one row-by-row pulse schedule per crossbar."""
        grads, free = self.gradients(inputs, target)
        y = np.broadcast_to(np.asarray(target, dtype=float), free.outputs.shape)
        loss = float(np.mean(0.5 * np.sum((free.outputs - y) ** 2, axis=1)))
        labels = np.argmax(y, axis=1) if labels is None else np.asarray(labels)
        errors = int(np.count_nonzero(np.argmax(free.outputs, axis=1) != labels))
        n_pulsed = 0
        reports = []
        for name, g in grads.items():
            widths = self.policies[name].step(-g)
            if widths.any():
                reports.append(self.network.pulse(name, circuits.RowByRowWrite(widths)))
                n_pulsed += int(np.count_nonzero(widths))
        return StepStats(loss=loss, errors=errors, n_pulsed=n_pulsed, reports=reports)

    def predict(self, inputs, batch_size: int = 1000) -> np.ndarray:
        """Free-phase output voltages (B, n_out), settled in chunks of ``batch_size``."""
        u = np.asarray(inputs, dtype=float)
        return np.concatenate([self.network.operating_point(u[s:s + batch_size]).outputs
                               for s in range(0, len(u), batch_size)])

    def error_rate(self, inputs, labels, batch_size: int = 1000) -> float:
        """Fraction of samples whose most positive output is not the label."""
        out = self.predict(inputs, batch_size)
        return float(np.mean(np.argmax(out, axis=1) != np.asarray(labels)))
