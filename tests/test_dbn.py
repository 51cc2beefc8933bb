"""RBM + softmax and the greedy DBN on the chip (learning/dbn.py), and their runs in scripts/train.py."""
import json
from pathlib import Path

import numpy as np
import pytest

import circuits
from circuits import build_chip, parse_netlist
from circuits.history import History
from learning.data import binarise, minibatches, thesis_split
from learning.dbn import DBN, GreedySchedule, RBMSoftmax, softmax
from learning.updates import Cst

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = ROOT / "netlists"

NEURON = "activation=stochastic noise={pi/sqrt(3)} bias=1 r_feedback=2 v_rail_pos=1k v_rail_neg=-1k"
TINY_SOFTMAX = f"""tiny RBM + softmax: 6 pixels -> 4 hidden -> 3 labels
.seed 3
.model dev exponential preset=thesis beta=3
Npix size=6 role=input {NEURON}
Nhid size=4 {NEURON}
Nlab size=3 role=output activation=linear r_feedback=2 v_rail_pos=1k v_rail_neg=-1k
Xw1 pix hid model=dev pairs=1 bidirectional=1 g_init=thesis
Xw2 hid lab model=dev pairs=1 g_init=thesis
.program scheme=v/2 v_write=1.6 v_read=0.5 dt_min=0 dt_max=10m
.end
"""
TINY_DBN = f"""tiny DBN: 6 pixels -> 5 -> 4, top DRBM (4 features + 3 labels) -> 8
.seed 4
.model dev exponential preset=thesis beta=0.005
Npix size=6 role=input {NEURON}
Nf1 size=5 {NEURON}
Nf2 size=4 {NEURON}
Ntopv size=7 role=input {NEURON}
Ntop size=8 {NEURON}
Xa pix f1 model=dev pairs=1 bidirectional=1 g_init=thesis
Xb f1 f2 model=dev pairs=1 bidirectional=1 g_init=thesis
Xc topv top model=dev pairs=1 bidirectional=1 g_init=thesis
.program scheme=v/2 v_write=1.6 v_read=0.5 dt_min=0 dt_max=10m
.end
"""


def tiny(text):
    return build_chip(parse_netlist(text))


@pytest.fixture(scope="module")
def mnist():
    split = thesis_split(n_train=1000)
    return (binarise(split.train_images), split.train_labels,
            binarise(split.test_images[:500]), split.test_labels[:500])


# --------------------------------------------------------------------------- (a) the softmax statistic
def test_softmax_statistic_is_the_exact_cross_entropy_gradient():
    chip = tiny(TINY_SOFTMAX)
    cls = RBMSoftmax(chip).classifier
    W = chip._tiles["w2"].tile.weights()          # the test, not the rule, looks at the devices: (5, 3)
    rng = np.random.default_rng(0)
    h = (rng.random((7, 4)) < 0.5).astype(float)
    labels = np.array([0, 2, 1, 1, 0, 2, 2])
    hb = np.c_[h, np.ones(len(h))]
    np.testing.assert_allclose(cls.scores(h), hb @ W, rtol=1e-9, atol=1e-12)   # scores are z = W^T [h, 1]

    def cross_entropy(w):
        return -np.sum(np.log(softmax(hb @ w)[np.arange(len(h)), labels]))

    eps, grad = 1e-6, np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        d = np.zeros_like(W)
        d[idx] = eps
        grad[idx] = (cross_entropy(W + d) - cross_entropy(W - d)) / (2 * eps)
    exact = cls.statistic(h, labels)                # rng=None: softmax probabilities
    np.testing.assert_allclose(exact.statistic, -grad, atol=1e-7)
    assert exact.loss == pytest.approx(cross_entropy(W) / len(h))

    # the thesis' sampled label: an unbiased estimate of the same gradient
    reps = 3000
    sampled = cls.statistic(np.repeat(h, reps, axis=0), np.repeat(labels, reps), np.random.default_rng(1))
    n = len(h) * reps
    assert np.all(np.abs(sampled.statistic / n - exact.statistic / len(h)) < 6 / np.sqrt(n))


def test_rbm_softmax_updates_both_tiles_every_batch():
    chip = tiny(TINY_SOFTMAX)
    model = RBMSoftmax(chip)
    assert model.tiles == ("w1", "w2")
    w0 = {t: chip._tiles[t].tile.weights().copy() for t in model.tiles}
    policies = {t: Cst(chip.pulse_limits[1], limits=chip.pulse_limits) for t in model.tiles}
    px = (np.random.default_rng(0).random((20, 6)) < 0.5).astype(float)
    res = model.train_batch(px, np.arange(20) % 3, policies, rng=np.random.default_rng(1))
    assert res.cd.statistic.shape == (7, 5) and res.softmax.statistic.shape == (5, 3)
    assert len(res.reports) == 2
    for t, stat in (("w1", res.cd.statistic), ("w2", res.softmax.statistic)):
        dw = chip._tiles[t].tile.weights() - w0[t]
        moved = stat != 0
        assert np.all(np.sign(dw[moved]) == np.sign(stat[moved])) and np.all(dw[~moved] == 0)


# --------------------------------------------------------------------------- (b) greedy stacking
class Spy:
    """Records the chip's forward/backward reads and pulses."""

    def __init__(self, chip, monkeypatch):
        self.calls = []
        propagate, pulse = chip.propagate, chip.pulse

        def spy_propagate(tile, x, *, direction="forward"):
            out = propagate(tile, x, direction=direction)
            self.calls.append(("propagate", tile, direction, np.array(x), out))
            return out

        def spy_pulse(tile, schedule):
            self.calls.append(("pulse", tile))
            return pulse(tile, schedule)

        monkeypatch.setattr(chip, "propagate", spy_propagate)
        monkeypatch.setattr(chip, "pulse", spy_pulse)


def test_greedy_stacking_feeds_each_layer_the_samples_of_the_one_below(monkeypatch):
    chip = tiny(TINY_DBN)
    dbn = DBN(chip, n_labels=3)
    assert dbn.tiles == ("a", "b", "c") and dbn.n_layers == 3
    spy = Spy(chip, monkeypatch)
    px = (np.random.default_rng(0).random((10, 6)) < 0.5).astype(float)
    labels = np.arange(10) % 3
    pol = Cst(chip.pulse_limits[1], limits=chip.pulse_limits)

    stats, _ = dbn.train_batch(1, px, labels, pol)      # layer 2 (tile b) on f1 spikes
    f1 = spy.calls[0]
    assert f1[:3] == ("propagate", "a", "forward") and np.array_equal(f1[3], px)
    assert f1[4].shape == (10, 5) and set(np.unique(f1[4])) <= {0.0, 1.0}
    cd = [c for c in spy.calls[1:] if c[0] == "propagate"]
    assert {c[1] for c in cd} == {"b"} and np.array_equal(cd[0][3], f1[4])     # CD on b starts from f1
    assert [c for c in spy.calls if c[0] == "pulse"] == [("pulse", "b")]      # only layer 2 is written
    assert stats.statistic.shape == (6, 5)

    spy.calls.clear()
    stats, _ = dbn.train_batch(2, px, labels, pol)      # the top DRBM on [f2 spikes, one-hot labels]
    up = [c for c in spy.calls if c[0] == "propagate"]
    assert [c[1] for c in up[:2]] == ["a", "b"] and np.array_equal(up[1][3], up[0][4])
    top_in = up[2][3]
    assert up[2][1:3] == ("c", "forward") and top_in.shape == (10, 7)
    np.testing.assert_array_equal(top_in[:, :4], up[1][4])
    np.testing.assert_array_equal(top_in[:, 4:], np.eye(3)[labels])
    assert [c for c in spy.calls if c[0] == "pulse"] == [("pulse", "c")]

    spy.calls.clear()
    pred = dbn.predict(px, chains=5, steps=2)
    assert pred.shape == (10,) and set(pred) <= {0, 1, 2}
    up = [c for c in spy.calls if c[0] == "propagate"]
    assert [c[1] for c in up[:2]] == ["a", "b"] and up[2][3].shape == (50, 7)   # 5 chains per image
    np.testing.assert_array_equal(up[2][3][:, 4:], 1 / 3)                     # labels start at 1/n


def test_greedy_schedule_maps_global_epochs_to_layers():
    s = GreedySchedule((2, 1))
    assert [s.locate(e) for e in range(6)] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    assert GreedySchedule((0, 0)).locate(0) == (2, 0)
    with pytest.raises(ValueError):
        GreedySchedule((-1, 2))


def test_model_detection_from_the_chip(train_script):
    mod = train_script
    for net, kind in (("drbm_small", "drbm"), ("dbn_small", "dbn"), ("ep_p1h_ideal", "ep")):
        assert mod.detect_model(circuits.load(NETLISTS / f"{net}.net")) == kind
    assert mod.detect_model(tiny(TINY_SOFTMAX)) == "rbm-softmax"
    assert mod.detect_model(tiny(TINY_DBN)) == "dbn"


def test_thesis_netlists_have_the_thesis_sizes_and_widths():
    sm = circuits.load(NETLISTS / "rbm_softmax_mnist.net")
    assert [sm.tile_shape(t) for t in sm.tiles] == [(785, 301), (301, 10)]
    assert sm.pulse_limits[1] == pytest.approx(1 / 1000)          # device dt_max = 1
    dbn = circuits.load(NETLISTS / "dbn_mnist.net")
    assert [dbn.tile_shape(t) for t in dbn.tiles] == [(785, 501), (501, 501), (511, 2001)]
    assert dbn.pulse_limits[1] == pytest.approx(1 / 150)
    assert DBN(dbn).top.n_pixels == 500


# --------------------------------------------------------------------------- (c) short training runs
def _train(step, n, epochs, batch, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for idx in minibatches(n, batch, rng):
            step(idx)


def test_small_rbm_softmax_learns(mnist):
    """The thesis netlist with 100 hidden units and 1/100 pulses, 3 epochs of 1000 images: well above chance."""
    x, y, xt, yt = mnist
    text = (NETLISTS / "rbm_softmax_mnist.net").read_text()
    chip = tiny(text.replace("Nhidden size=300", "Nhidden size=100").replace("dt_max=1m", "dt_max=10m"))
    model = RBMSoftmax(chip)
    policies = {t: Cst(chip.pulse_limits[1], limits=chip.pulse_limits) for t in model.tiles}
    rule_rng = np.random.default_rng(2)
    _train(lambda idx: model.train_batch(x[idx], y[idx], policies, rng=rule_rng), len(x), 3, 20)
    assert model.error_rate(xt, yt) < 0.5                 # chance: 0.9 (about 0.3 here; thesis 30 epochs: 0.083)


def test_small_dbn_learns(mnist):
    """netlists/dbn_small.net, greedy: 2 epochs per lower RBM, 4 for the top, on 1000 images."""
    x, y, xt, yt = mnist
    chip = circuits.load(NETLISTS / "dbn_small.net")
    dbn = DBN(chip)
    policies = {t: Cst(chip.pulse_limits[1], limits=chip.pulse_limits) for t in dbn.tiles}
    for layer, epochs in enumerate((2, 2, 4)):
        _train(lambda idx, layer=layer: dbn.train_batch(layer, x[idx], y[idx], policies[dbn.tiles[layer]]),
               len(x), epochs, 20,
               seed=layer)
    assert dbn.error_rate(xt, yt) < 0.5                   # chance: 0.9 (about 0.4 here; thesis: 0.066)


# --------------------------------------------------------------------------- (d) train.py resumes exactly
def test_dbn_run_resumes_exactly(train, tmp_path):
    """Stopped after layer 2's epoch, resumed into the top DRBM: same numbers, same devices."""
    net = str(NETLISTS / "dbn_small.net")
    args = ["--train", "200", "--test", "50", "--record", "50", "--batch", "50", "--layer-epochs", "1"]
    train([net, "--out", str(tmp_path / "a"), "--epochs", "4", *args])
    train([net, "--out", str(tmp_path / "b"), "--epochs", "2", *args])
    train([net, "--out", str(tmp_path / "b"), "--epochs", "4", "--resume", *args[:-2]])   # schedule from checkpoint
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["layer"] == [1, 2, 3, 3]
    assert np.isnan(a["test_error"][0]) and np.isfinite(a["test_error"][2])      # errors once the top trains
    for key in ("test_error", "train_error", "train_loss", "pulses", "layer"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with History(tmp_path / "a" / "run.h5") as ha, History(tmp_path / "b" / "run.h5") as hb:
        for tile in ("w1", "w2", "w3"):
            np.testing.assert_array_equal(ha.snapshot(tile), hb.snapshot(tile))
            np.testing.assert_array_equal(ha.pulse_map(tile), hb.pulse_map(tile))
        assert ha.n_events("w1") == ha.n_events("w2") == 4 and ha.n_events("w3") == 8


def test_rbm_softmax_run_resumes_exactly(train, tmp_path):
    """The sampled labels come from the rule's own generator, saved with the checkpoint."""
    net = tmp_path / "rbm_softmax_small.net"           # the thesis netlist with 50 hidden units
    net.write_text((NETLISTS / "rbm_softmax_mnist.net").read_text().replace("Nhidden size=300", "Nhidden size=50"))
    net = str(net)
    args = ["--train", "200", "--test", "50", "--record", "50", "--batch", "50"]
    train([net, "--out", str(tmp_path / "a"), "--epochs", "2", *args])
    train([net, "--out", str(tmp_path / "b"), "--epochs", "1", *args])
    train([net, "--out", str(tmp_path / "b"), "--epochs", "2", "--resume", *args])
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    for key in ("test_error", "train_error", "train_loss", "pulses", "classifier_loss", "classifier_train_error"):
        assert a[key] == b[key], key
    with History(tmp_path / "a" / "run.h5") as ha, History(tmp_path / "b" / "run.h5") as hb:
        for tile in ("w1", "w2"):
            np.testing.assert_array_equal(ha.snapshot(tile), hb.snapshot(tile))
