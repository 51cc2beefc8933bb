"""Stacked CD models on a chip: an RBM topped by a softmax classifier, and a greedy DBN.

Both reuse :class:`learning.rbm.RBM` and :class:`learning.rbm.DRBM` for every
contrastive-divergence step. This module only adds the classifier tile and
passes data from one tile to the next. As elsewhere in ``learning``, the rule
sees what the chip's neurons measure (spikes of stochastic groups, output
voltages of linear groups) and sends pulse schedules back. It never reads or
writes a conductance.

RBM + softmax (thesis Table 2.1, 785-301-10)
---------------------------------------------
An RBM tile, pixels(784)+bias -> hidden(300)+bias, trained by CD exactly as
:class:`RBM`, and a forward-only classifier tile, hidden(300)+bias -> labels(10).
The label group is a ``role=output`` group of *linear* neurons. With
``r_feedback = 1/v_read``, its output voltages are the label scores
``z = W2^T [h, 1]`` in weight units, and the readout takes their softmax.

The thesis only says that the two parts are "trained separately". The thesis
code (``gradient_RBM_soft.m`` in ernoult/mem-RBM) settles the rest:

- **Schedule.** Both tiles are updated at *every* mini-batch: one CD-1 update of
  the RBM and one update of the classifier. "Separately" means two objectives,
  no back-propagation from the softmax into the RBM. It does not mean two
  phases. This module does the same.
- **Classifier statistic.** The classifier's input is a binary hidden sample
  ``h``. The code draws one label ``l ~ softmax(z)`` per sample (its ``'bin'``
  mode, the one the memristor runs use) and takes ``sum_b [h_b, 1] (t_b - l_b)^T``,
  with ``t`` the one-hot target. Its expectation over ``l`` is
  ``sum_b [h_b, 1] (t_b - p_b)^T``, the negative gradient of the summed
  cross-entropy. The policy (Cst, RProp, ...) uses its sign, as for CD.
  ``sample_labels=False`` uses the expectation ``t - p`` itself (the code's
  ``'normal'`` mode).
- **What h is.** The thesis code feeds the classifier a sample of
  ``p(h | v_1)``, where ``v_1`` is the CD *reconstruction*. This looks like a
  reused variable rather than a choice, because at test time the classifier
  sees ``h ~ p(h | v_0)`` for the data ``v_0``. Here the classifier always gets
  ``h ~ p(h | data)``: the chip samples the hidden spikes once more from the
  data, with one extra forward read per mini-batch, as at test time.
- **Inference.** One hidden sample per image, then the argmax of the scores.
  This is the code's test-time inference.
- Left unsaid by the code as well: the softmax's temperature. Here it is 1 per
  volt of output (weights in normalised units). The rule draws its labels from
  its own random generator, not the chip's, so the draws can be saved with a
  checkpoint.

DBN (thesis Table 2.1, 785-501-511-2001, greedy, no fine-tuning)
----------------------------------------------------------------
A stack of RBM tiles, pixels -> f1 -> f2, and a DRBM tile on top whose visible
group holds f2's features and the 10 labels. A tile has a single row group, so
that visible group is a group of its own (510 units + bias), not f2. To train or
query the top, the rule reads f2's spikes off the chip and drives them, with the
one-hot label, into that group as data. A chip with a spike readout between
stages would do the same.

- **Greedy schedule** (``main_DBN.m``, ``simu_mem_DBN.m``): layer 1 trains for
  its epochs, then layer 2, then the top DRBM. Each layer trains by CD-1 on its
  input, and the layers below are left untouched. :class:`GreedySchedule` maps a
  global epoch counter to (layer, epoch within the layer), so a run can stop
  after any epoch and resume from a checkpoint.
- **Features.** The layer below hands on *binary samples*. Here they are drawn
  fresh for each mini-batch by forward reads of the trained tiles below (the
  chip's stochastic neurons fire). ``main_DBN.m`` stores probabilities and
  samples them again in every gradient call, which is the same distribution.
  ``simu_mem_DBN.m`` (the memristor study) samples the whole data set *once*
  after each layer and keeps that frozen sample. A chip without feature memory
  cannot do that, and fresh samples make a resumed run exactly reproducible
  without storing 40,000 x 500 features.
- **Inference** (``simu_mem_DBN.m``'s ``'sto'`` mode): one upward sample per
  image up to f2 (the thesis code also draws one), then
  :meth:`DRBM.predict`: the 40 chains of an image share that sample, labels
  start at 1/10, 2 Gibbs steps, and the prediction is the argmax of the
  chain-averaged labels. The code's DRBM samples its label as a softmax. Here,
  as in :class:`DRBM`, the labels are Bernoulli units of the visible group.
  The memristor study trains the top with one CD chain (``nb_CD = 1``; the
  software ``main_DBN.m`` uses 20 chains and free-energy inference instead).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from circuits import RowByRowWrite

from .data import one_hot
from .rbm import DRBM, RBM, CDStats


def softmax(scores) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    z = np.asarray(scores, dtype=float)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def is_cd_tile(chip, tile: str) -> bool:
    """A bidirectional tile between two stochastic groups: an RBM that can be trained by CD."""
    return chip.is_bidirectional(tile) and all(
        chip.groups[g].params.activation == "stochastic" for g in chip.tile_groups(tile))


def _send(chip, tile, widths):
    return chip.pulse(tile, RowByRowWrite(widths)) if np.any(widths) else None


# ---------------------------------------------------------------------------------------------- softmax
@dataclass
class SoftmaxStats:
    """The classifier statistic of one mini-batch."""

    statistic: np.ndarray
    """(rows, n_labels): sum over the batch of [h, 1] (t - l)^T; positive asks for potentiation."""
    loss: float
    """Mean cross-entropy of the measured scores against the targets (nats)."""
    errors: int
    """Samples of the batch whose largest score is not the target."""


class SoftmaxClassifier:
    """A forward-only tile read by a group of linear output neurons: label scores -> softmax.

    Parameters
    ----------
    chip : circuits.Chip
    tile : str
        Rows: the (binary) input group with its bias line. Columns: the label group.
    """

    def __init__(self, chip, tile: str):
        self.chip = chip
        self.tile_name = tile
        self.inputs, self.outputs = chip.tile_groups(tile)
        self.n_inputs = chip.groups[self.inputs].size
        self.n_labels = chip.groups[self.outputs].size
        self.in_bias = chip.tile_shape(tile)[0] - self.n_inputs

    def scores(self, h) -> np.ndarray:
        """The label group's output voltages for inputs ``h`` (B, n_inputs): z = W^T [h, 1]."""
        return self.chip.read(self.tile_name, h)

    def statistic(self, h, labels, rng: np.random.Generator | None = None) -> SoftmaxStats:
        """sum_b [h_b, 1] (t_b - y_b)^T, with y_b a label drawn from softmax(z_b) (``rng`` given)
        or the probabilities softmax(z_b) themselves (``rng=None``)."""
        h = np.asarray(h, dtype=float)
        z = self.scores(h)
        p = softmax(z)
        t = one_hot(labels, self.n_labels)
        if rng is None:
            y = p
        else:   # inverse-CDF draw of one label per sample
            u = rng.random((len(p), 1))
            idx = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), self.n_labels - 1)
            y = one_hot(idx, self.n_labels)
        hb = np.concatenate([h, np.ones((len(h), self.in_bias))], axis=1)
        logp = np.log(np.maximum(p[np.arange(len(p)), labels], np.finfo(float).tiny))
        return SoftmaxStats(statistic=hb.T @ (t - y), loss=float(-logp.mean()),
                            errors=int(np.count_nonzero(np.argmax(z, axis=1) != labels)))

    def predict(self, h) -> np.ndarray:
        return np.argmax(self.scores(h), axis=1)


@dataclass
class RBMSoftmaxStats:
    """What one mini-batch of RBM + softmax training measured and sent."""

    cd: CDStats
    softmax: SoftmaxStats
    reports: list = field(default_factory=list)
    """ProgramReports of the pulses sent (none for a tile whose widths were all zero)."""


class RBMSoftmax:
    """An RBM tile (pixels -> hidden, trained by CD) topped by a :class:`SoftmaxClassifier` tile.

    Parameters
    ----------
    chip : circuits.Chip
    rbm_tile, classifier_tile : str, optional
        By default the chip's only CD tile (see :func:`is_cd_tile`) and the tile
        from its hidden group to the ``role=output`` group.
    """

    def __init__(self, chip, rbm_tile: str | None = None, classifier_tile: str | None = None):
        if rbm_tile is None:
            cd = [t for t in chip.tiles if is_cd_tile(chip, t)]
            if len(cd) != 1:
                raise ValueError(f"RBM + softmax needs exactly one CD tile (bidirectional, stochastic groups); "
                                 f"found {cd}")
            rbm_tile = cd[0]
        self.rbm = RBM(chip, rbm_tile)
        if classifier_tile is None:
            cls = [t for t in chip.tiles if chip.tile_groups(t)[0] == self.rbm.hidden
                   and chip.groups[chip.tile_groups(t)[1]].params.role == "output"]
            if len(cls) != 1:
                raise ValueError(f"RBM + softmax needs one tile from group {self.rbm.hidden} to an output group; "
                                 f"found {cls}")
            classifier_tile = cls[0]
        self.classifier = SoftmaxClassifier(chip, classifier_tile)
        if self.classifier.inputs != self.rbm.hidden:
            raise ValueError(f"classifier tile {classifier_tile} is not driven by the RBM's hidden group "
                             f"{self.rbm.hidden}")
        self.chip = chip
        self.tiles = (rbm_tile, classifier_tile)

    def train_batch(self, pixels, labels, policies, *, rng: np.random.Generator | None = None, k: int = 1,
                    chains: int = 1) -> RBMSoftmaxStats:
        """One update of both tiles (thesis code: simultaneous, every mini-batch).

        ``policies``: {tile name: UpdatePolicy}. ``rng``: draws the classifier's
        sampled labels (thesis ``'bin'`` mode); ``None`` uses the softmax
        probabilities instead.
        """
        rbm_tile, cls_tile = self.tiles
        cd = self.rbm.cd_statistic(pixels, k=k, chains=chains)
        h = self.rbm.sample_hidden(pixels)          # the classifier's input: spikes for the data
        sm = self.classifier.statistic(h, labels, rng)
        reports = [_send(self.chip, rbm_tile, policies[rbm_tile].step(cd.statistic)),
                   _send(self.chip, cls_tile, policies[cls_tile].step(sm.statistic))]
        return RBMSoftmaxStats(cd=cd, softmax=sm, reports=[r for r in reports if r is not None])

    def predict(self, pixels) -> np.ndarray:
        """One hidden sample per image, then the largest label score (the thesis code's inference)."""
        return self.classifier.predict(self.rbm.sample_hidden(pixels))

    def error_rate(self, pixels, labels) -> float:
        return float(np.mean(self.predict(pixels) != labels))


# ---------------------------------------------------------------------------------------------- DBN
@dataclass(frozen=True)
class GreedySchedule:
    """Which layer a global epoch trains: the lower RBMs in turn, then the top DRBM.

    ``layer_epochs[i]`` epochs for lower RBM ``i``. The top trains every later
    epoch, so a run can always be extended. The thesis uses 30 epochs per layer.
    """

    layer_epochs: tuple[int, ...]

    def __post_init__(self):
        if any(int(e) != e or e < 0 for e in self.layer_epochs):
            raise ValueError(f"layer_epochs = {self.layer_epochs!r}: epochs must be integers >= 0")

    def locate(self, epoch: int) -> tuple[int, int]:
        """(layer index, epoch within that layer) of global epoch ``epoch`` (0-based); the top's
        index is ``len(layer_epochs)``."""
        for layer, n in enumerate(self.layer_epochs):
            if epoch < n:
                return layer, epoch
            epoch -= n
        return len(self.layer_epochs), epoch


class DBN:
    """Greedy deep belief net on a chip: RBM tiles stacked under a DRBM tile.

    Parameters
    ----------
    chip : circuits.Chip
    tiles : sequence of str, optional
        Bottom to top; the last one is the DRBM. Default: the chip's tiles in order.
    n_labels : int
        Label units at the end of the top tile's visible group.
    """

    def __init__(self, chip, tiles=None, n_labels: int = 10):
        tiles = tuple(chip.tiles if tiles is None else tiles)
        if len(tiles) < 2:
            raise ValueError(f"a DBN needs at least two tiles; got {tiles}")
        for t in tiles:
            if not is_cd_tile(chip, t):
                raise ValueError(f"tile {t} is not a CD tile (bidirectional, stochastic groups on both sides)")
        self.chip = chip
        self.tiles = tiles
        self.layers = [RBM(chip, t) for t in tiles[:-1]]
        self.top = DRBM(chip, tiles[-1], n_labels)
        for below, above in zip(self.layers, self.layers[1:]):
            if below.hidden != above.visible:
                raise ValueError(f"tile {above.tile_name} is not driven by {below.tile_name}'s hidden group "
                                 f"{below.hidden}")
        if self.top.n_pixels != self.layers[-1].n_hidden:
            raise ValueError(f"top tile {self.top.tile_name}: {self.top.n_pixels} feature units + {n_labels} "
                             f"labels, but the layer below has {self.layers[-1].n_hidden} hidden units")

    @property
    def n_layers(self) -> int:
        """Trained layers, the top included."""
        return len(self.tiles)

    def features(self, pixels, depth: int | None = None) -> np.ndarray:
        """Binary spikes after ``depth`` lower layers (all by default), one forward read each."""
        x = np.asarray(pixels, dtype=float)
        for rbm in self.layers[:len(self.layers) if depth is None else depth]:
            x = rbm.sample_hidden(x)
        return x

    def train_batch(self, layer: int, pixels, labels, policy, *, k: int = 1, chains: int = 1):
        """One CD update of ``layer`` (0-based; ``n_layers - 1`` is the top) on fresh features.

        Returns (CDStats, ProgramReport or None), as :meth:`RBM.train_batch`.
        """
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer = {layer} is outside the allowed range 0..{self.n_layers - 1}")
        if layer < len(self.layers):
            return self.layers[layer].train_batch(self.features(pixels, layer), policy, k=k, chains=chains)
        v0 = self.top.visible_vector(self.features(pixels), labels)
        return self.top.train_batch(v0, policy, k=k, chains=chains)

    def predict(self, pixels, *, chains: int = 40, steps: int = 2, chunk: int = 50) -> np.ndarray:
        """One upward sample per image, then :meth:`DRBM.predict` on the features (thesis: 40 x 2)."""
        return self.top.predict(self.features(pixels), chains=chains, steps=steps, chunk=chunk)

    def error_rate(self, pixels, labels, **kw) -> float:
        return float(np.mean(self.predict(pixels, **kw) != labels))
