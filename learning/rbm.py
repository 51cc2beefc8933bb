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
the pixels and a one-hot label. Two ways to classify:

- ``predict`` (the thesis' text): clamp the pixels, start the label units at 1/10,
  run ``chains`` parallel chains for ``steps`` Gibbs steps, and take the argmax of
  the label units averaged over chains (thesis: 40 × 2).
- ``predict_free_energy`` (what the thesis' code scores its tables with, the
  ``'det'`` branch of ``gradient_DRBM2.m`` in ernoult/mem-RBM): the label of lowest
  free energy F(x, y) = -b_y - sum_j softplus(x_j(x, y)), from reads only (the
  hidden units' inputs for each candidate label, and the label units' own biases).
  It is deterministic, and cheaper: one forward read per label.
"""
from __future__ import annotations

import math
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
        # N+ - N- as one product of the stacked phases: no second (rows, cols) matrix to subtract
        stat = np.concatenate([vb0, vbk]).T @ np.concatenate([hb0, -hbk])
        return CDStats(statistic=stat, reconstruction_error=float(np.mean((v0 - v) ** 2)))

    def train_batch(self, v0, policy, *, k: int = 1, chains: int = 1):
        """One CD update: statistic, policy, pulses. Returns (CDStats, ProgramReport)."""
        stats = self.cd_statistic(v0, k=k, chains=chains)
        widths = policy.step(stats.statistic)
        report = self.chip.pulse(self.tile_name, RowByRowWrite(widths)) if np.any(widths) else None
        return stats, report


class DRBM(RBM):
    """A discriminative RBM: the visible group is pixels followed by ``n_labels`` label units.

    ``labels``: how the label units are sampled when the visible layer is
    reconstructed (negative phase and Gibbs inference):

    - "bernoulli": by the chip's comparators, each on its own like the pixels (so a
      reconstruction may hold no label or several);
    - "softmax": one label, drawn from the softmax of the label units' inputs (their
      pre-activations, read in the same transposed read that fires the pixels), as
      the thesis' code samples it (``gradient_DRBM2.m``) and as a winner-take-all
      circuit with Gumbel-distributed noise would. Drawn from ``rng``, the rule's own
      generator.
    """

    def __init__(self, chip, tile: str, n_labels: int = 10, *, labels: str = "bernoulli",
                 rng: np.random.Generator | None = None):
        super().__init__(chip, tile)
        self.n_labels = n_labels
        self.n_pixels = self.n_visible - n_labels
        if labels not in ("bernoulli", "softmax"):
            raise ValueError(f"labels = {labels!r}: use 'bernoulli' or 'softmax'")
        if labels == "softmax" and not isinstance(rng, np.random.Generator):
            raise ValueError("labels = 'softmax' needs rng, a numpy.random.Generator")
        self.labels = labels
        self.rng = rng

    def sample_visible(self, h):
        if self.labels == "bernoulli":
            return super().sample_visible(h)
        v, u = self.chip.propagate(self.tile_name, h, direction="backward", with_preactivation=True)
        logits = _logit(self.chip.groups[self.visible])(u[:, self.n_pixels:])
        # Gumbel-max: the argmax of logits plus Gumbel noise is a softmax sample
        pick = np.argmax(logits + self.rng.gumbel(size=logits.shape), axis=1)
        v[:, self.n_pixels:] = 0.0                 # propagate's activities are a fresh array
        v[np.arange(len(v)), self.n_pixels + pick] = 1.0
        return v

    def visible_vector(self, pixels, labels):
        onehot = np.zeros((len(labels), self.n_labels))
        onehot[np.arange(len(labels)), labels] = 1.0
        return np.concatenate([pixels, onehot], axis=1)

    def predict(self, pixels, *, chains: int = 40, steps: int = 2, chunk: int = 50):
        """Labels by clamped Gibbs sampling: label units start at 1/n_labels (thesis: 40 chains x 2 steps)."""
        out = []
        chunk = self.chip.images_per_batch(chunk, chains)
        for start in range(0, len(pixels), chunk):
            px = np.repeat(pixels[start:start + chunk], chains, axis=0)
            v = np.concatenate([px, np.full((len(px), self.n_labels), 1.0 / self.n_labels)], axis=1)
            for _ in range(steps):
                h = self.sample_hidden(v)
                v = np.concatenate([px, self.sample_visible(h)[:, self.n_pixels:]], axis=1)
            votes = v[:, self.n_pixels:].reshape(-1, chains, self.n_labels).mean(axis=1)
            out.append(np.argmax(votes, axis=1))
        return np.concatenate(out) if out else np.zeros(0, int)

    def free_energies(self, pixels, *, chunk: int = 100):
        """F(pixels, y) for every label y, up to a constant per image: (B, n_labels).

        F = -b_y - sum_j softplus(x_j), where x_j is hidden unit j's input with the
        label y on (a forward read of [pixels, e_y], the hidden bias line included)
        and b_y the label unit's bias (a transposed read with every hidden unit off,
        so only the hidden group's bias line drives). Inputs are the logits of the
        firing probability, (u - v_mid) / s for comparators with logistic noise of
        scale s. The pixels' own bias term is the same for every label and is left out.
        """
        to_logit_h = _logit(self.chip.groups[self.hidden])
        to_logit_v = _logit(self.chip.groups[self.visible])
        off = np.zeros((1, self.n_hidden))
        label_bias = to_logit_v(self.chip.read(self.tile_name, off, direction="backward"))[0, self.n_pixels:]
        eye = np.eye(self.n_labels)
        out = []
        chunk = self.chip.images_per_batch(chunk, self.n_labels)
        for start in range(0, len(pixels), chunk):
            px = np.asarray(pixels[start:start + chunk], dtype=float)
            labels = np.resize(eye, (len(px) * self.n_labels, self.n_labels))   # e_0 .. e_9 for every image
            v = np.concatenate([np.repeat(px, self.n_labels, axis=0), labels], axis=1)
            x = to_logit_h(self.chip.read(self.tile_name, v, direction="forward"))
            out.append(-np.logaddexp(0.0, x).sum(axis=1).reshape(len(px), self.n_labels) - label_bias)
        return np.concatenate(out) if out else np.zeros((0, self.n_labels))

    def predict_free_energy(self, pixels, **kw):
        """Labels of lowest free energy (the thesis code's deterministic scoring)."""
        return np.argmin(self.free_energies(pixels, **kw), axis=1)

    def error_rate(self, pixels, labels, *, method: str = "gibbs", **kw) -> float:
        """Test error by ``method``: "gibbs" (:meth:`predict`) or "free-energy" (:meth:`predict_free_energy`)."""
        if method == "gibbs":
            pred = self.predict(pixels, **kw)
        elif method == "free-energy":
            pred = self.predict_free_energy(pixels, **kw)
        else:
            raise ValueError(f"method = {method!r}: use 'gibbs' or 'free-energy'")
        return float(np.mean(pred != labels))


def _logit(group):
    """u -> the logit of the group's firing probability, for stochastic comparator neurons.

    A comparator with logistic noise of rms ``noise`` fires when u + noise > v_mid,
    with probability sigmoid((u - v_mid) / s), s = noise * sqrt(3) / pi.
    """
    p = group.params
    if p.activation != "stochastic" or not p.noise > 0:
        raise ValueError(f"group {group.name}: free-energy scoring needs stochastic neurons with noise > 0 "
                         f"(activation = {p.activation!r}, noise = {p.noise!r})")
    s = p.noise * math.sqrt(3.0) / math.pi
    return lambda u: (np.asarray(u, dtype=float) - p.v_mid) / s
