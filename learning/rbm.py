"""Contrastive divergence on a chip: RBM, discriminative RBM (DRBM) and DBN layers.

The network is one bidirectional tile between two groups of stochastic binary
neurons (comparators with noise: Bernoulli(sigmoid) firing). Each group may
carry a bias line, so the tile's extra row holds the hidden biases and its extra
column the visible biases (both differential pairs, as every weight).

CD-k (Hinton 2002; thesis Part II, Eq. II-1.4): from a data vector v0 the chip
samples h0 (forward read), then k Gibbs steps v -> h (transposed and forward
reads), and the rule counts coincidences

    N+_ij = sum over the batch and chains of v0_i h0_j,    N-_ij = same for (v_k, h_k),

including the always-on bias lines. The statistic N+ - N- goes to an update
policy (:mod:`learning.updates`), which turns it into pulse widths for the
chip. Nothing here reads or writes a conductance.

DRBM (Larochelle & Bengio 2008, as used in the thesis): the visible group holds
the pixels and a one-hot label. Inference clamps the pixels, starts the label
units at 1/10 and runs ``chains`` parallel chains for ``steps`` Gibbs steps,
then takes the argmax of the label units averaged over chains (thesis: 40 × 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits import RowByRowWrite


@dataclass
class CDStats:
    """The CD statistic of one mini-batch and what the negative phase reconstructed."""

    statistic: np.ndarray
    """(rows, cols) N+ - N-, bias lines included."""
    reconstruction_error: float
    """Mean squared difference between v0 and v_k."""


class RBM:
    """A restricted Boltzmann machine living on a chip tile.

    Parameters
    ----------
    chip : circuits.Chip
    tile : str
        A bidirectional tile whose row group is the visible layer and column group
        the hidden layer; both groups stochastic.
    """

    def __init__(self, chip, tile: str):
        self.chip = chip
        self.tile_name = tile
        self.visible, self.hidden = chip.tile_groups(tile)
        self.n_visible = chip.groups[self.visible].size
        self.n_hidden = chip.groups[self.hidden].size
        rows, cols = chip.tile_shape(tile)
        self.v_bias = rows - self.n_visible     # 1 if the visible group drives a bias row
        self.h_bias = cols - self.n_hidden

    # ------------------------------------------------------------------ sampling on the chip
    def sample_hidden(self, v):
        return self.chip.propagate(self.tile_name, v, direction="forward")

    def sample_visible(self, h):
        return self.chip.propagate(self.tile_name, h, direction="backward")

    def _with_bias(self, v, h):
        vb = np.concatenate([v, np.ones((len(v), self.v_bias))], axis=1)
        hb = np.concatenate([h, np.ones((len(h), self.h_bias))], axis=1)
        return vb, hb

    def cd_statistic(self, v0, *, k: int = 1, chains: int = 1, clamp=None) -> CDStats:
        """N+ - N- for a mini-batch ``v0`` (B, n_visible), with ``chains`` parallel chains per sample.

        ``clamp``: a boolean mask (n_visible,) of visible units held at their data
        values during the negative phase (none by default).
        """
        v0 = np.repeat(np.asarray(v0, dtype=float), chains, axis=0)
        h0 = self.sample_hidden(v0)
        v, h = v0, h0
        for _ in range(k):
            v = self.sample_visible(h)
            if clamp is not None:
                v = np.where(clamp, v0, v)
            h = self.sample_hidden(v)
        vb0, hb0 = self._with_bias(v0, h0)
        vbk, hbk = self._with_bias(v, h)
        stat = vb0.T @ hb0 - vbk.T @ hbk
        return CDStats(statistic=stat, reconstruction_error=float(np.mean((v0 - v) ** 2)))

    def train_batch(self, v0, policy, *, k: int = 1, chains: int = 1):
        """One CD update: statistic, policy, pulses. Returns (CDStats, ProgramReport)."""
        stats = self.cd_statistic(v0, k=k, chains=chains)
        widths = policy.step(stats.statistic)
        report = self.chip.pulse(self.tile_name, RowByRowWrite(widths)) if np.any(widths) else None
        return stats, report


class DRBM(RBM):
    """A discriminative RBM: the visible group is pixels followed by ``n_labels`` label units."""

    def __init__(self, chip, tile: str, n_labels: int = 10):
        super().__init__(chip, tile)
        self.n_labels = n_labels
        self.n_pixels = self.n_visible - n_labels

    def visible_vector(self, pixels, labels):
        onehot = np.zeros((len(labels), self.n_labels))
        onehot[np.arange(len(labels)), labels] = 1.0
        return np.concatenate([pixels, onehot], axis=1)

    def predict(self, pixels, *, chains: int = 40, steps: int = 2, chunk: int = 50):
        """Labels by clamped Gibbs sampling: label units start at 1/n_labels (thesis: 40 chains x 2 steps)."""
        out = []
        for start in range(0, len(pixels), chunk):
            px = np.repeat(pixels[start:start + chunk], chains, axis=0)
            v = np.concatenate([px, np.full((len(px), self.n_labels), 1.0 / self.n_labels)], axis=1)
            for _ in range(steps):
                h = self.sample_hidden(v)
                v = np.concatenate([px, self.sample_visible(h)[:, self.n_pixels:]], axis=1)
            votes = v[:, self.n_pixels:].reshape(-1, chains, self.n_labels).mean(axis=1)
            out.append(np.argmax(votes, axis=1))
        return np.concatenate(out) if out else np.zeros(0, int)

    def error_rate(self, pixels, labels, **kw) -> float:
        return float(np.mean(self.predict(pixels, **kw) != labels))
