"""Contrastive divergence on the chip against exact quantities of a tiny, enumerable RBM."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from circuits import Chip, NeuronGroup, NeuronParams, ProgramSettings
from circuits.chip import ChipTile
from crossbar.devices import ExponentialDevice
from crossbar.tile import Tile
from learning.rbm import RBM

NV, NH = 4, 3


def tiny_rbm(seed=0):
    """4 visible + bias, 3 hidden + bias, stochastic neurons with u = sum x w (logistic scale 1 V)."""
    rng = np.random.default_rng(seed)
    p = dict(activation="stochastic", noise=math.pi / math.sqrt(3), bias=True, r_feedback=1.0,
             v_rail_pos=1e3, v_rail_neg=-1e3)
    groups = {"v": NeuronGroup("v", NV, NeuronParams(role="input", **p), rng),
              "h": NeuronGroup("h", NH, NeuronParams(**p), rng)}
    dev = ExponentialDevice.thesis(beta=3.0)
    gp, gm = rng.uniform(dev.g_min, dev.g_max, (2, NV + 1, NH + 1))
    tile = ChipTile("w", Tile.from_pairs(gp, gm), dev, None, "v", "h", bidirectional=True)
    chip = Chip(groups, {"w": tile}, settings=ProgramSettings(v_read=1.0), rng=rng)
    w = gp - gm
    return chip, w[:NV, :NH], w[:NV, NH], w[NV, :NH]   # weights, visible biases, hidden biases


def exact(W, b, c):
    """p(v) over all 2^NV visible states, and the model expectation E[v_i h_j] (with bias lines)."""
    states = np.array(list(itertools.product([0, 1], repeat=NV)), float)
    # free energy with the hidden units summed out
    logp = states @ b + np.sum(np.logaddexp(0, states @ W + c), axis=1)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    ph = 1 / (1 + np.exp(-(states @ W + c)))
    vb = np.c_[states, np.ones(len(states))]
    hb = np.c_[ph, np.ones(len(states))]
    return states, p, (vb * p[:, None]).T @ hb


def test_stochastic_neurons_fire_with_sigmoid_probability():
    chip, W, b, c = tiny_rbm()
    v = np.array([[1, 0, 1, 1]], float)
    h = RBM(chip, "w").sample_hidden(np.repeat(v, 40000, axis=0))
    p = 1 / (1 + np.exp(-(v @ W + c)))
    se = np.sqrt(p * (1 - p) / 40000)
    assert np.all(np.abs(h.mean(axis=0) - p) < 5 * se)


def test_chip_gibbs_chain_samples_the_exact_rbm_distribution():
    chip, W, b, c = tiny_rbm(1)
    rbm = RBM(chip, "w")
    n = 20000
    v = (chip.rng.random((n, NV)) < 0.5).astype(float)
    for _ in range(25):
        v = rbm.sample_visible(rbm.sample_hidden(v))
    states, p, _ = exact(W, b, c)
    idx = (v @ (2 ** np.arange(NV)[::-1])).astype(int)
    counts = np.bincount(idx, minlength=2 ** NV)
    chi2 = sps.chisquare(counts, n * p)
    assert chi2.pvalue > 1e-4, (counts, n * p)


def test_cd_statistic_converges_to_the_exact_gradient():
    """With long chains, E[N+ - N-]/n is the exact log-likelihood gradient (data term - model term)."""
    chip, W, b, c = tiny_rbm(2)
    rbm = RBM(chip, "w")
    data = np.array([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]], float)
    reps = 4000
    cd = rbm.cd_statistic(np.repeat(data, reps, axis=0), k=30)
    n = len(data) * reps
    _, _, model = exact(W, b, c)
    ph = 1 / (1 + np.exp(-(data @ W + c)))
    data_term = np.c_[data, np.ones(len(data))].T @ np.c_[ph, np.ones(len(data))] / len(data)
    grad = data_term - model
    est = cd.statistic / n
    # every entry is a mean of n bounded terms in [-1, 1]: 6 standard errors of that
    assert np.all(np.abs(est - grad) < 6 / np.sqrt(n)), np.abs(est - grad).max()
    assert est[NV, NH] == 0.0          # bias x bias never changes


@pytest.mark.parametrize("chains", [1, 20])
def test_parallel_chains_scale_the_statistic(chains):
    chip, *_ = tiny_rbm(3)
    cd = RBM(chip, "w").cd_statistic(np.ones((5, NV)), chains=chains)
    assert cd.statistic.shape == (NV + 1, NH + 1)
    assert np.abs(cd.statistic).max() <= 5 * chains


def test_ideal_device_baseline_is_plain_cd_with_a_learning_rate():
    """netlists/drbm_software.net + proportional widths: the chip update is 0.01 (N+ - N-) / 100."""
    from pathlib import Path

    import circuits
    from learning.rbm import DRBM
    from learning.updates import Proportional
    chip = circuits.load(Path(__file__).resolve().parents[1] / "netlists" / "drbm_software.net")
    model = DRBM(chip, "w")
    rng = np.random.default_rng(0)
    v = (rng.random((100, 794)) < 0.2).astype(float)
    tile = chip._tiles["w"].tile          # the test, not the rule, looks at the devices
    w0 = tile.weights()
    stats, report = model.train_batch(v, Proportional(2.5e-5, limits=chip.pulse_limits))
    np.testing.assert_allclose(tile.weights() - w0, 0.01 * stats.statistic / 100, atol=1e-8)


def test_drbm_free_energy_from_reads_equals_the_exact_one():
    """Free-energy scoring from chip reads equals -b_y - sum softplus(x W + W_y + c) from the weights."""
    from learning.rbm import DRBM
    chip, W, b, c = tiny_rbm(3)
    model = DRBM(chip, "w", n_labels=2)               # visible units: 2 pixels, then 2 labels
    pixels = np.array(list(itertools.product([0, 1], repeat=2)), float)
    got = model.free_energies(pixels)
    want = np.stack([-b[2 + y] - np.logaddexp(0, pixels @ W[:2] + W[2 + y] + c).sum(axis=1) for y in (0, 1)],
                    axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.array_equal(model.predict_free_energy(pixels), np.argmin(want, axis=1))
    assert model.error_rate(pixels, np.argmin(want, axis=1), method="free-energy") == 0.0
    with pytest.raises(ValueError, match="method"):
        model.error_rate(pixels, np.zeros(4, int), method="vote")


def test_drbm_inference_reads_follow_the_chips_batch_limit(monkeypatch):
    """A wired chip's batch limit caps the rows of one inference read (images x chains, images x labels)."""
    from learning.rbm import DRBM
    chip, *_ = tiny_rbm(3)
    model = DRBM(chip, "w", n_labels=2)
    pixels = np.array(list(itertools.product([0, 1], repeat=2)) * 3, float)      # 12 images
    whole = model.free_energies(pixels)
    rows = []
    read = chip.read
    monkeypatch.setattr(chip, "read", lambda t, x, **kw: rows.append(len(x)) or read(t, x, **kw))
    monkeypatch.setattr(chip, "batch_limit", lambda: 5)
    np.testing.assert_array_equal(model.free_energies(pixels), whole)    # deterministic: chunking changes nothing
    assert max(rows) <= 5 and sum(rows[1:]) == 12 * 2                   # rows[0]: the label-bias read
    rows.clear()
    propagate = chip.propagate
    monkeypatch.setattr(chip, "propagate", lambda t, x, **kw: rows.append(len(x)) or propagate(t, x, **kw))
    assert model.predict(pixels, chains=2, steps=1).shape == (12,)
    assert rows == [4, 4] * 6                                            # 2 images x 2 chains per read
    monkeypatch.setattr(chip, "batch_limit", lambda: 1)                  # fewer rows than chains: one image
    rows.clear()
    model.predict(pixels[:2], chains=2, steps=1)
    assert rows == [2, 2, 2, 2]


def test_drbm_softmax_labels_are_one_hot_samples_of_the_exact_softmax():
    """labels='softmax': one label per reconstruction, drawn with probability softmax(h W_y + b_y)."""
    from learning.rbm import DRBM
    chip, W, b, c = tiny_rbm(4)
    model = DRBM(chip, "w", n_labels=2, labels="softmax", rng=np.random.default_rng(5))
    h = np.array([[1.0, 0.0, 1.0]])
    n = 20000
    v = model.sample_visible(np.repeat(h, n, axis=0))
    assert np.all(v[:, 2:].sum(axis=1) == 1)
    logits = (h @ W.T + b)[0, 2:]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    counts = v[:, 2:].sum(axis=0)
    assert sps.chisquare(counts, n * p).pvalue > 1e-4, (counts, n * p)
    # the pixels still fire by the chip's comparators: Bernoulli(sigmoid(h W_i + b_i))
    pp = 1 / (1 + np.exp(-(h @ W.T + b)[0, :2]))
    assert np.all(np.abs(v[:, :2].mean(axis=0) - pp) < 5 * np.sqrt(pp * (1 - pp) / n))
    with pytest.raises(ValueError, match="rng"):
        DRBM(chip, "w", n_labels=2, labels="softmax")
