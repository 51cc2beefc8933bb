"""A single-layer perceptron trained in situ with the Manhattan (sign) rule.

After Prezioso et al. (Nature 521, 61, 2015): for each training pattern the
chip's outputs are read, and every weight moves by one fixed pulse in the
direction ``sign(x_i) sign(t_j - y_j)``. The update is a parallel outer-product
write: the rows of active inputs and the columns of wrong outputs are pulsed
together, so only devices where both coincide see the full write voltage.

The rule uses only the chip's interface: ``read`` and ``pulse``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits import OuterProductWrite


@dataclass
class EpochStats:
    epoch: int
    errors: int
    energy: float
    programming_time: float
    disturbed: int


class ManhattanPerceptron:
    """Train tile ``tile`` of ``chip`` (inputs on its rows, one output per logical column).

    Parameters
    ----------
    chip : circuits.Chip
    tile : str
    width : float
        Pulse width of every update, s.
    margin : float
        Outputs are trained towards ``+margin`` for the right class and
        ``-margin`` for the others (V at the pre-activation); an output already
        beyond its target sends no pulse.
    """

    def __init__(self, chip, tile: str, width: float, margin: float = 0.05):
        self.chip, self.tile_name, self.width, self.margin = chip, tile, width, margin

    def predict(self, x):
        return np.argmax(self.chip.read(self.tile_name, x), axis=1)

    def step(self, x, label):
        """One pattern: read, then one parallel sign update. Returns the program report or None."""
        u = self.chip.read(self.tile_name, x[None])[0]
        target = np.where(np.arange(u.size) == label, self.margin, -self.margin)
        # push each output towards its target, only while it is on the wrong side of it
        is_label = np.arange(u.size) == label
        delta = np.where(is_label, (u < target).astype(int), -(u > target).astype(int))
        # the tile's extra rows (a bias line) are always driven, so they learn like inputs at 1
        n_rows = self.chip.tile_shape(self.tile_name)[0]
        rows = np.r_[(np.asarray(x) > 0).astype(int), np.ones(n_rows - len(x), int)]
        if not delta.any() or not rows.any():
            return None
        return self.chip.pulse(self.tile_name, OuterProductWrite(rows=rows, cols=delta, width=self.width))

    def fit(self, X, labels, epochs: int, rng: np.random.Generator):
        """Stochastic Manhattan training; returns per-epoch statistics."""
        stats = []
        for epoch in range(epochs):
            energy = time = 0.0
            disturbed = 0
            for n in rng.permutation(len(X)):
                rep = self.step(X[n], labels[n])
                if rep is not None:
                    energy += rep.energy
                    time += rep.time
                    disturbed += int(rep.disturbed.sum())
            errors = int(np.count_nonzero(self.predict(X) != labels))
            stats.append(EpochStats(epoch, errors, energy, time, disturbed))
            if errors == 0:
                break
        return stats
