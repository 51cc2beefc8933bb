"""Continual EP and vector-field EP in floating point (learning.ep_software), against the chip and EP."""
import functools

import numpy as np
import pytest

from crossbar.errors import ParameterError
from ep_chips import R_F, V_READ, ep_chip, software_twin
from learning import ep_lowrank, ep_software as sw
from learning.ep import EPConfig, EquilibriumNetwork, weight_angle
from learning.updates import Proportional

SIZES, BIAS = (6, 5, 3), (1, 1, 0)
LR = 0.3          # large enough that the weights move visibly during the K nudged steps


def batch(seed=1, n=4):
    rng = np.random.default_rng(seed)
    return rng.random((n, SIZES[0])), np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)]


# The ideal chip applies lr x statistic to ~1e-8 of the step (tests/test_ep.py); over K coupled steps
# that grows to ~5e-7 here, while a wrong increment or step order is off by ~1e-2.
ATOL = 1e-5


def chip_weights(chip, name):
    return R_F * V_READ * chip._tiles[name].tile.weights()       # the test may look inside


def run_chip(chip, rule, nudge_at="current", lr=LR):
    """One continual mini-batch on an ideal chip: a pulse of t seconds moves a weight by 4 t."""
    cfg = EPConfig(T=40, K=10, beta=0.2, rule=rule, continual=True, nudge_at=nudge_at)
    EquilibriumNetwork(chip).train_batch(*batch(), cfg, {t: Proportional(lr / 4.0) for t in chip.tiles})


def run_software(net, rule, nudge_at="current", lr=LR):
    model = sw.SoftwareEP(net, T=40, K=10, beta=0.2, lrs=[lr, lr], continual=True, rule=rule, nudge_at=nudge_at)
    model.train_batch(*batch())


@pytest.mark.parametrize("nudge_at", ["current", "activity"])
@pytest.mark.parametrize("rule", ["ep", "vf"])
def test_continual_training_equals_the_chips_on_tied_weights(rule, nudge_at):
    """The chip's current nudge (into the output op-amps) and its summing-stage nudge (after the
    activation) against the software placements of the same name."""
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    net = software_twin(chip, SIZES, BIAS)
    before = [w.copy() for w in net.W]
    run_chip(chip, rule, nudge_at)
    run_software(net, rule, nudge_at)
    for n in range(2):
        moved = net.W[n] - before[n]
        assert np.abs(moved).max() > 1e-2
        np.testing.assert_allclose(chip_weights(chip, f"W{n}"), net.W[n], atol=ATOL)


@pytest.mark.parametrize("nudge_at", ["current", "activity"])
def test_continual_vector_field_equals_the_chips_on_untied_weights(nudge_at):
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3, untied=True)
    net = software_twin(chip, SIZES, BIAS)
    net.back = [None, chip_weights(chip, "B1").T.copy()]          # B1 reads y -> h1: W1's orientation transposed
    b_before = net.back[1].copy()
    # At LR 0.3 the untied trajectory with the activity nudge is sensitive enough to carry the chip's
    # ~1e-8 per-step pulse error to 2e-5 (1e-6 at 0.1, 7e-7 at 0.03); a wrong increment is off by ~1e-2.
    lr = LR if nudge_at == "current" else 0.1
    run_chip(chip, "vf", nudge_at, lr)
    run_software(net, "vf", nudge_at, lr)
    assert np.abs(net.back[1] - b_before).max() > 5e-3          # 500 x ATOL
    for n in range(2):
        np.testing.assert_allclose(chip_weights(chip, f"W{n}"), net.W[n], atol=ATOL)
    np.testing.assert_allclose(chip_weights(chip, "B1").T, net.back[1], atol=ATOL)


def test_continual_ep_with_a_vanishing_rate_sums_to_the_ep_update():
    """Thesis Lemma 9: as lr -> 0 the per-step increments telescope to the EP statistic."""
    rng = np.random.default_rng(3)
    net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), rng)
    x, y = batch()
    stat, _ = sw.SoftwareEP(net, T=60, K=15, beta=0.2, lrs=[0] * 3).statistic(x, y)

    def moved(lr):
        copy = sw.LayeredNet(net.sizes, net.bias, [w.copy() for w in net.W], net.activations)
        sw.SoftwareEP(copy, T=60, K=15, beta=0.2, lrs=[lr] * 3, continual=True).train_batch(x, y)
        return [(c - w) / lr for c, w in zip(copy.W, net.W)]

    for d, s in zip(moved(1e-7), stat):
        np.testing.assert_allclose(d, s, atol=1e-5 * np.abs(s).max())
    # a large rate pulls the trajectory away: the comparison can fail
    assert max(np.abs(d - s).max() / np.abs(s).max() for d, s in zip(moved(1.0), stat)) > 1e-2


@pytest.mark.parametrize("angle", [0.0, 45.0, 90.0, 180.0])
def test_untie_draws_backward_weights_at_the_asked_angle(angle):
    net = sw.LayeredNet.glorot((50, 300, 200), (1, 1, 0), np.random.default_rng(0))
    net.untie(angle, np.random.default_rng(1))
    assert net.back[0] is None
    assert abs(weight_angle(net.W[1], net.back[1]) - angle) < 3.0


def test_untied_forward_reads_use_the_backward_weights():
    net = sw.LayeredNet.glorot((6, 5, 3), BIAS, np.random.default_rng(0))
    x, y = batch()
    tied, _ = sw.settle(net, x, 30)
    net.untie(0.0, np.random.default_rng(1))
    same, _ = sw.settle(net, x, 30)
    np.testing.assert_allclose(same.a[1], tied.a[1], atol=1e-15)
    net.back[1] = np.zeros_like(net.W[1])                         # no feedback into the hidden layer
    cut, _ = sw.settle(net, x, 30)
    np.testing.assert_allclose(cut.a[1], net.activations[0](sw.input_drive(net, x)), atol=1e-15)


def test_configuration_errors_name_the_problem():
    net = sw.LayeredNet.glorot((6, 5, 3), BIAS, np.random.default_rng(0))
    with pytest.raises(ValueError, match="estimator 'centred'"):
        sw.SoftwareEP(net, T=5, K=2, beta=0.1, lrs=[1, 1], estimator="centred", continual=True)
    with pytest.raises(ValueError, match="rule = 'bp'"):
        sw.SoftwareEP(net, T=5, K=2, beta=0.1, lrs=[1, 1], rule="bp")
    net.untie(45.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="untied backward weights"):
        sw.SoftwareEP(net, T=5, K=2, beta=0.1, lrs=[1, 1])
    with pytest.raises(ValueError, match="untied"):
        sw.bptt_traces(net, *batch(), 5, 2)
    with pytest.raises(ValueError, match=r"back\[1\] has shape"):
        sw.LayeredNet(net.sizes, net.bias, net.W, back=[None, np.zeros((2, 2))])


@pytest.mark.parametrize("rule,angle,dense", [("ep", None, None), ("vf", None, True), ("vf", None, False),
                                              ("vf", 45.0, True), ("vf", 45.0, False)])
@pytest.mark.parametrize("mode,nudge_at", [("discrete", "current"), ("euler", "current"), ("discrete", "activity")])
def test_low_rank_continual_phase_equals_the_step_by_step_reference(rule, angle, dense, mode, nudge_at, monkeypatch):
    """learning.ep_lowrank keeps the moving weights as factors (or, for VF, small tiles as dense
    changes); the matrices must end where step-by-step ends."""
    check_low_rank_against_step_by_step(rule, angle, dense, mode, nudge_at, monkeypatch)


@pytest.mark.parametrize("angle,dense", [(None, True), (None, False), (45.0, True), (45.0, False)])
@pytest.mark.parametrize("nudge_at", ["current", "activity"])
def test_low_rank_equals_step_by_step_with_the_slope_factor(angle, dense, nudge_at, monkeypatch):
    check_low_rank_against_step_by_step("vf", angle, dense, "discrete", nudge_at, monkeypatch, vf_rho_prime=True)


def check_low_rank_against_step_by_step(rule, angle, dense, mode, nudge_at, monkeypatch, **options):
    monkeypatch.setattr(ep_lowrank, "continual_nudged_phase",
                        functools.partial(ep_lowrank.continual_nudged_phase, dense=dense))
    x, y = batch()
    nets = []
    for lowrank in (True, False):
        net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3))
        if angle is not None:
            net.untie(angle, np.random.default_rng(2))
        model = sw.SoftwareEP(net, T=30, K=12, beta=0.2, lrs=[0.3, 0.2, 0.1], continual=True, rule=rule,
                              lowrank=lowrank, mode=mode, eps=0.3, estimator="random", nudge_at=nudge_at,
                              rng=np.random.default_rng(5), **options)
        for _ in range(3):
            model.train_batch(x, y)
        nets.append(net)
    fast, ref = nets
    start = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3))
    for n in range(3):
        assert np.abs(ref.W[n] - start.W[n]).max() > 1e-2
        np.testing.assert_allclose(fast.W[n], ref.W[n], atol=1e-12)
        if angle is not None and n:
            np.testing.assert_allclose(fast.back[n], ref.back[n], atol=1e-12)


@pytest.mark.parametrize("rule,angle,continual,lowrank", [("ep", None, True, True), ("ep", None, True, False),
                                                          ("vf", 45.0, True, True), ("vf", 45.0, True, False),
                                                          ("vf", None, True, True), ("ep", None, False, True)])
def test_frozen_hidden_biases_never_move_and_the_rest_trains_as_without(rule, angle, continual, lowrank):
    """The thesis' C-VF code never updates the hidden layers' biases; both continual paths must agree."""
    x, y = batch()
    runs = {}
    for frozen in (True, False):
        for low in {lowrank, False}:
            net = sw.LayeredNet.fan_in((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3))
            if angle is not None:
                net.untie(angle, np.random.default_rng(2))
            model = sw.SoftwareEP(net, T=30, K=12, beta=0.2, lrs=[0.3, 0.2, 0.1], continual=continual, rule=rule,
                                  lowrank=low, estimator="random" if continual else "one-sided",
                                  nudge_at="activity", frozen_hidden_bias=frozen, rng=np.random.default_rng(5))
            for _ in range(3):
                model.train_batch(x, y)
            runs[frozen, low] = net
    start = sw.LayeredNet.fan_in((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3))
    frozen_net, free_net = runs[True, lowrank], runs[False, lowrank]
    for n in (0, 1):      # the bias rows driving the two hidden layers
        np.testing.assert_array_equal(frozen_net.W[n][-1], start.W[n][-1])
        assert np.abs(free_net.W[n][-1] - start.W[n][-1]).max() > 1e-3
    assert np.abs(frozen_net.W[2][-1] - start.W[2][-1]).max() > 1e-3          # the output's bias trains
    for n in range(3):
        assert np.abs(frozen_net.W[n][:-1] - start.W[n][:-1]).max() > 1e-2
        np.testing.assert_allclose(runs[True, lowrank].W[n], runs[True, False].W[n], atol=1e-12)


@pytest.mark.parametrize("continual,lowrank,rule", [(True, True, "ep"), (True, False, "vf"), (False, True, "ep")])
def test_skip_unsettled_leaves_unsettled_samples_out_of_the_update(continual, lowrank, rule):
    T = 4                                          # short, so the samples' settle gaps spread out
    x, y = batch(n=8)

    def fresh():
        return sw.LayeredNet.fan_in(SIZES, BIAS, np.random.default_rng(3))

    gap = sw.settle_gap(fresh(), x, T)[1]
    threshold = np.median(gap)
    keep = gap <= threshold
    assert keep.sum() == 4 and gap.min() > 1e-3

    def train(skip, xs, ys):
        net = fresh()
        model = sw.SoftwareEP(net, T=T, K=10, beta=0.2, lrs=[0.3, 0.3], continual=continual, rule=rule,
                              lowrank=lowrank, estimator="random" if continual else "one-sided",
                              skip_unsettled=skip, rng=np.random.default_rng(5))
        model.train_batch(xs, ys)
        return net, model

    skipping, model = train(threshold, x, y)
    alone, _ = train(None, x[keep], y[keep])
    everything, _ = train(None, x, y)
    assert model.skipped == 4
    for a, b, c, w in zip(skipping.W, alone.W, everything.W, fresh().W):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)     # the update of the kept samples alone
        assert np.abs(a - w).max() > 1e-3 and np.abs(a - c).max() > 1e-4
    # a threshold no sample reaches changes nothing, bit for bit
    for a, c in zip(train(2.0, x, y)[0].W, everything.W):
        np.testing.assert_array_equal(a, c)
    # a batch with no settled sample: no update, but its beta is still drawn (the run's random stream)
    net, model = train(threshold / 10, x[~keep], y[~keep])
    assert model.skipped == 4
    for a, w in zip(net.W, fresh().W):
        np.testing.assert_array_equal(a, w)
    rng = np.random.default_rng(5)
    if continual:
        rng.random()
    assert model.rng.bit_generator.state == rng.bit_generator.state
    with pytest.raises(ValueError, match="skip_unsettled"):
        sw.SoftwareEP(fresh(), T=3, K=2, beta=0.2, lrs=[0.1, 0.1], skip_unsettled=0.0)


def test_slope_factor_scales_each_vf_change_by_the_activation_slope_at_the_tile_s_read():
    """The cep-branch C-VF rule, written out sample by sample for one step of a 6-5-4-3 untied net."""
    net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3))
    net.untie(45.0, np.random.default_rng(2))
    x, y = batch(n=3)
    before, _ = sw.settle(net, x, 2)
    after, _ = sw.settle(net, x, 1, start=before, nudge=(y, 0.3), nudge_at="activity")
    fwd, bwd = sw.vf_increments(net, before.a, after.a, rho_prime=True)
    plain_f, plain_b = sw.vf_increments(net, before.a, after.a)
    act = net.activations[0]
    for n in range(3):
        want_f, want_b = np.zeros_like(net.W[n]), np.zeros_like(net.W[n])
        for b in range(3):
            pre = np.append(before.a[n][b], 1.0)                      # the bias unit
            read = pre @ net.W[n][:, :net.sizes[n + 1]]
            change = act.derivative(read) * (after.a[n + 1][b] - before.a[n + 1][b])
            want_f[:, :net.sizes[n + 1]] += np.outer(pre, change)
            if n:
                post = before.a[n + 1][b] if n + 1 == 3 else np.append(before.a[n + 1][b], 1.0)
                read = post @ net.back[n][:net.sizes[n], :].T
                change = act.derivative(read) * (after.a[n][b] - before.a[n][b])
                want_b[:net.sizes[n], :] += np.outer(change, post)
        np.testing.assert_allclose(fwd[n], want_f, atol=1e-14)
        assert np.abs(fwd[n] - plain_f[n]).max() > 1e-3
        if n:
            np.testing.assert_allclose(bwd[n], want_b, atol=1e-14)
    with pytest.raises(ValueError, match="vf_rho_prime"):
        sw.SoftwareEP(sw.LayeredNet.glorot((6, 5, 3), (1, 1, 0), np.random.default_rng(3)), T=3, K=2, beta=0.2,
                      lrs=[0.1, 0.1], continual=True, rule="ep", vf_rho_prime=True)


def test_fan_in_initialisation_is_the_thesis_code_s():
    net = sw.LayeredNet.fan_in((784, 512, 10), (1, 1, 0), np.random.default_rng(0))
    for w, fan_in in zip(net.W, (784, 512)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert np.sqrt(np.mean(w ** 2)) == pytest.approx(bound / np.sqrt(3), rel=0.02)


@pytest.mark.parametrize("rule,angle", [("ep", None), ("vf", 45.0)])
def test_float32_net_stays_float32_and_tracks_float64(rule, angle):
    """``glorot(..., dtype=float32)`` (the precision the thesis' GPU code ran at, and ~1.5x faster here):
    no step may silently promote to float64, and a few continual batches stay near the float64 run."""
    x, y = batch(n=8)
    nets = []
    for dtype in (np.float64, np.float32):
        net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3), dtype=dtype)
        if angle is not None:
            net.untie(angle, np.random.default_rng(2))
        model = sw.SoftwareEP(net, T=30, K=12, beta=0.2, lrs=[0.3, 0.2, 0.1], continual=True, rule=rule,
                              estimator="random", rng=np.random.default_rng(5))
        for _ in range(3):
            free = model.train_batch(x, y)
        assert all(a.dtype == dtype for a in free.a[1:])
        assert all(w.dtype == dtype for w in net.W)
        nets.append(net)
    for w64, w32 in zip(nets[0].W, nets[1].W):
        np.testing.assert_allclose(w32, w64, atol=1e-4)


def test_activity_nudge_is_the_thesis_prototypical_step():
    """nudge_at='activity': a_L(t+1) = act(u_L(t)) + beta (y - a_L(t)), the hidden layers as without a nudge;
    nudge_at='current' puts beta (y - a_L(t)) inside the activation instead."""
    x, y = batch()
    net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), np.random.default_rng(3))
    free, _ = sw.settle(net, x, 7)
    drive0 = sw.input_drive(net, x)
    plain = sw.step(net, free, drive0)
    act = net.activations[-1]
    thesis = sw.step(net, free, drive0, nudge=(y, 0.3), nudge_at="activity")
    np.testing.assert_allclose(thesis.a[-1], plain.a[-1] + 0.3 * (y - free.a[-1]), atol=1e-15)
    circuit = sw.step(net, free, drive0, nudge=(y, 0.3))
    np.testing.assert_allclose(circuit.a[-1], act(plain.s[-1] + 0.3 * (y - free.a[-1])), atol=1e-15)
    for n in (1, 2):
        np.testing.assert_array_equal(thesis.a[n], plain.a[n])
        np.testing.assert_array_equal(circuit.a[n], plain.a[n])
    with pytest.raises(ValueError, match="nudge_at = 'after'"):
        sw.SoftwareEP(net, T=5, K=2, beta=0.1, lrs=[0.1] * 3, nudge_at="after")


def test_the_chips_summing_stage_adds_the_nudge_after_the_activation():
    """Chip.settle(nudge_at='activity'): the output's new activity is its activation plus
    beta (y - its held previous output); a current nudge goes through the activation instead.
    Settling K steps at once equals K one-step settles that continue from ``held``."""
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    x, y = batch()
    free = chip.settle({"x": x}, steps=30)
    plain = chip.settle({"x": x}, steps=1, init=free.states)
    summed = chip.settle({"x": x}, steps=1, init=free.states, nudge={"y": (y, 0.3)}, nudge_at="activity")
    np.testing.assert_allclose(summed.held["y"], plain.held["y"] + 0.3 * (y - free.held["y"]), atol=1e-12)
    np.testing.assert_array_equal(summed.held["h1"], plain.held["h1"])
    current = chip.settle({"x": x}, steps=1, init=free.states, nudge={"y": (y, 0.3)})
    assert np.abs(current.held["y"] - summed.held["y"]).max() > 1e-3

    at_once = chip.settle({"x": x}, steps=5, init=free.states, nudge={"y": (y, 0.3)}, nudge_at="activity")
    res = free
    for _ in range(5):
        res = chip.settle({"x": x}, steps=1, init=res.states, hold=res.held, nudge={"y": (y, 0.3)},
                          nudge_at="activity")
    np.testing.assert_allclose(res.held["y"], at_once.held["y"], atol=1e-12)

    with pytest.raises(ParameterError, match="nudge_at = 'after'"):
        chip.settle({"x": x}, steps=1, nudge={"y": (y, 0.3)}, nudge_at="after")
    with pytest.raises(ValueError, match="nudge_at = 'after'"):
        EPConfig(nudge_at="after")
