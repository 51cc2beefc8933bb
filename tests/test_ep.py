"""Equilibrium propagation on the chip: against its software twin, finite differences and BPTT; pulses."""
import math

import numpy as np
import pytest

from ep_chips import R_F, V_READ, ep_chip, software_twin
from learning import ep_software as sw
from learning.ep import EPConfig, EquilibriumNetwork, align_backward, weight_angle
from learning.updates import Cst, Proportional

SIZES, BIAS = (6, 5, 3), (1, 1, 0)


def batch(seed=1, n=4, sizes=SIZES):
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]


def reference_statistic(net, x, y, cfg, eps):
    f, _ = sw.settle(net, x, cfg.T, mode=cfg.mode, eps=eps)
    p, _ = sw.settle(net, x, cfg.K, mode=cfg.mode, eps=eps, nudge=(y, cfg.beta), start=f)
    if cfg.estimator == "centred":
        m, _ = sw.settle(net, x, cfg.K, mode=cfg.mode, eps=eps, nudge=(y, -cfg.beta), start=f)
        return sw.ep_statistic(net, p.a, m.a, cfg.beta, -cfg.beta), f
    return sw.ep_statistic(net, p.a, f.a, cfg.beta, 0.0), f


@pytest.mark.parametrize("mode", ["discrete", "euler"])
@pytest.mark.parametrize("estimator", ["one-sided", "centred"])
@pytest.mark.parametrize("activation", ["sigmoid", "hardsigmoid"])
def test_chip_ep_equals_its_software_twin(mode, estimator, activation):
    rails = (0.0, 1.0) if activation == "hardsigmoid" else (-20.0, 20.0)
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3, activation=activation, rails=rails)
    net = software_twin(chip, SIZES, BIAS, activation, rails)
    x, y = batch()
    cfg = EPConfig(T=40, K=10, beta=0.1, estimator=estimator, mode=mode)
    stat, free, _ = EquilibriumNetwork(chip).statistic(x, y, cfg)
    ref, f = reference_statistic(net, x, y, cfg, eps=0.1 if mode == "euler" else 1.0)  # chip: dt = tau / 10
    np.testing.assert_allclose(free.activities["y"], f.a[-1], atol=1e-12)
    for n in range(2):
        assert np.abs(ref[n]).max() > 1e-3                      # the nudge did something
        np.testing.assert_allclose(stat[f"W{n}"], ref[n], atol=1e-12)


def finite_difference_gradient(net, x, y, T, mode, eps, h=1e-6):
    def loss():
        st, _ = sw.settle(net, x, T, mode=mode, eps=eps)
        return sw.loss(net, st.a[-1], y)
    grads = []
    for w in net.W:
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            w[idx] += h
            lp = loss()
            w[idx] -= 2 * h
            lm = loss()
            w[idx] += h
            g[idx] = (lp - lm) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("mode,eps,T", [("discrete", 1.0, 200), ("euler", 0.2, 600)])
def test_ep_estimates_the_gradient_of_the_loss_at_the_fixed_point(mode, eps, T):
    """Centred EP at small beta equals -dL*/dW by finite differences; one-sided carries an O(beta) bias."""
    rng = np.random.default_rng(0)
    net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), rng)
    x, y = rng.random((4, 6)), np.eye(3)[rng.integers(0, 3, 4)]
    fd = finite_difference_gradient(net, x, y, T, mode, eps)
    errors = {}
    for est, beta in [("centred", 1e-3), ("one-sided", 1e-3), ("one-sided", 0.1), ("centred", 0.1)]:
        stat, _ = reference_statistic(net, x, y, EPConfig(T=T, K=T, beta=beta, estimator=est, mode=mode), eps)
        errors[est, beta] = max(np.abs(s + g).max() / np.abs(g).max() for s, g in zip(stat, fd))
    assert errors["centred", 1e-3] < 1e-4
    assert errors["one-sided", 1e-3] < 1e-2
    # centring removes the first-order bias: at beta = 0.1 it is several times smaller
    assert errors["centred", 0.1] < errors["one-sided", 0.1] / 5
    # BPTT through the whole free phase gives the same gradient
    _, gw = sw.bptt_traces(net, x, y, T, T, mode=mode, eps=eps)
    for n in range(3):
        np.testing.assert_allclose(sum(g[n] for g in gw), fd[n], atol=1e-7 * np.abs(fd[n]).max() + 1e-12)


@pytest.mark.parametrize("mode,eps,T,K", [("discrete", 1.0, 200, 30), ("euler", 0.2, 600, 100)])
def test_gdu_ep_steps_follow_bptt_steps(mode, eps, T, K):
    """Thesis Theorem 4: EP's per-step increments match BPTT's elementary gradients (beta -> 0)."""
    rng = np.random.default_rng(0)
    net = sw.LayeredNet.glorot((6, 5, 4, 3), (1, 1, 1, 0), rng)
    x, y = rng.random((4, 6)), np.eye(3)[rng.integers(0, 3, 4)]
    gs, gw = sw.bptt_traces(net, x, y, T, K, mode=mode, eps=eps)
    ds, dw = sw.ep_traces(net, x, y, T, K, 1e-3, mode=mode, eps=eps)
    for n in range(3):
        ep = np.array([dw[t][n] for t in range(1, K + 1)])
        bp = -np.array([gw[t][n] for t in range(1, K + 1)])
        assert sw.rel_mse(ep, bp) < 1e-2, n
        assert np.mean(np.sign(ep.sum(0)) == np.sign(bp.sum(0))) > 0.95
    for n in range(1, 4):
        assert sw.rel_mse([ds[t][n] for t in range(K)], [-gs[t][n] for t in range(K)]) < 1e-2, n
    # and a large beta breaks the match: the test can fail
    _, dw_big = sw.ep_traces(net, x, y, T, K, 2.0, mode=mode, eps=eps)
    assert sw.rel_mse([dw_big[t][0] for t in range(1, K + 1)], [-gw[t][0] for t in range(1, K + 1)]) > 0.1


def weights(chip, n):
    return R_F * V_READ * chip._tiles[f"W{n}"].tile.weights()      # the test may look inside


@pytest.mark.parametrize("quantum", [1e-3, 1e-5])
def test_quantised_pulses_converge_to_the_floating_point_update(quantum):
    """Ideal linear device: a pulse of t seconds moves a weight by 4 t; widths = lr stat / 4, quantised."""
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    net = software_twin(chip, SIZES, BIAS)
    x, y = batch()
    cfg = EPConfig(T=40, K=10, beta=0.2)
    lr = 1.0
    ref, _ = reference_statistic(net, x, y, cfg, 1.0)
    before = [weights(chip, n) for n in range(2)]
    pol = {f"W{n}": Proportional(lr / 4.0, quantum=quantum) for n in range(2)}
    EquilibriumNetwork(chip).train_batch(x, y, cfg, pol)
    for n in range(2):
        moved = weights(chip, n) - before[n]
        np.testing.assert_allclose(moved, lr * ref[n], atol=2 * quantum * (1 + 1e-6) + 1e-12)
        assert np.abs(moved).max() > 10 * quantum


def test_sign_updates_move_every_weight_with_a_nonzero_statistic():
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    x, y = batch()
    cfg = EPConfig(T=40, K=10, beta=0.2)
    ep = EquilibriumNetwork(chip)
    stat, _, _ = ep.statistic(x, y, cfg)
    before = [weights(chip, n) for n in range(2)]
    ep.train_batch(x, y, cfg, {f"W{n}": Cst(1e-3) for n in range(2)})
    for n in range(2):
        moved = weights(chip, n) - before[n]
        np.testing.assert_allclose(moved, 4e-3 * (1 - 0.5e-6) * np.sign(stat[f"W{n}"]), atol=1e-12)  # range 2 S - 1 uS


def test_continual_ep_with_tiny_steps_sums_to_the_ep_update():
    """C-EP (Lemma 9): with a vanishing learning rate the per-step increments telescope to EP's."""
    x, y = batch()
    cfg = EPConfig(T=40, K=10, beta=0.2)
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    stat, _, _ = EquilibriumNetwork(chip).statistic(x, y, cfg)
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    before = [weights(chip, n) for n in range(2)]
    tiny = 1e-6
    res = EquilibriumNetwork(chip).train_batch(x, y, EPConfig(T=40, K=10, beta=0.2, continual=True),
                                               {f"W{n}": Proportional(tiny / 4.0) for n in range(2)})
    for n in range(2):
        np.testing.assert_allclose(res.statistic[f"W{n}"], stat[f"W{n}"], atol=1e-4 * np.abs(stat[f"W{n}"]).max())
        np.testing.assert_allclose(weights(chip, n) - before[n], tiny * stat[f"W{n}"], rtol=1e-3, atol=1e-14)
    assert len(res.reports) == 2 * cfg.K            # pulses at every nudged step, on both tiles


def test_vector_field_rule_on_tied_weights_approaches_ep():
    """VF's per-step 'pre x post change' summed over both directions equals EP's product difference to O(beta)."""
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    x, y = batch()
    ep = EquilibriumNetwork(chip)
    e, _, _ = ep.statistic(x, y, EPConfig(T=60, K=30, beta=1e-3))
    v, _, _ = ep.statistic(x, y, EPConfig(T=60, K=30, beta=1e-3, rule="vf"))
    for t in e:
        np.testing.assert_allclose(v[t], e[t], atol=1e-2 * np.abs(e[t]).max())


def test_untied_chip_and_initial_angle_by_write_verify():
    chip = ep_chip(SIZES, bias=BIAS, untied=True, init_std=0.3)
    assert set(chip.tiles) == {"W0", "W1", "B1"} and not chip.is_bidirectional("W1")
    fwd = lambda: weights(chip, 1)[:5, :]                       # hidden -> output, bias row dropped
    bwd = lambda: R_F * V_READ * chip._tiles["B1"].tile.weights()[:, :5].T
    assert abs(weight_angle(fwd(), bwd()) - 90) < 30            # independent draws: about 90 degrees
    rep = align_backward(chip, "W1", "B1", 0.0, np.random.default_rng(0), width=4e-3, tol=0.01)
    assert rep.n_unverified == 0
    assert weight_angle(fwd(), bwd()) < 3
    align_backward(chip, "W1", "B1", 180.0, np.random.default_rng(0), width=4e-3, tol=0.01)
    assert weight_angle(fwd(), bwd()) > 177
    # the rule runs on untied tiles: the nudge reaches the hidden layer through B1 only
    res = EquilibriumNetwork(chip).train_batch(*batch(), EPConfig(T=30, K=10, beta=0.2, rule="vf", continual=True),
                                               {t: Proportional(1e-3) for t in chip.tiles})
    assert np.abs(res.statistic["W0"]).max() > 0 and np.abs(res.statistic["B1"]).max() > 0


def test_random_sign_beta_draws_both_signs():
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    ep = EquilibriumNetwork(chip)
    rng = np.random.default_rng(0)
    signs = {np.sign(ep.statistic(*batch(), EPConfig(T=5, K=2, beta=0.1, estimator="random"), rng)[2])
             for _ in range(12)}
    assert signs == {-1.0, 1.0}


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"beta = -0.1 is outside the allowed range \(0, inf\)"):
        EPConfig(beta=-0.1)
    with pytest.raises(ValueError, match="T = 0 is outside"):
        EPConfig(T=0)
    with pytest.raises(ValueError, match="estimator = 'both'"):
        EPConfig(estimator="both")
    with pytest.raises(ValueError, match="centred"):
        EPConfig(estimator="centred", continual=True)
    with pytest.raises(ValueError, match="rule = 'ep' only"):
        EPConfig(estimator="centred", rule="vf")


@pytest.mark.parametrize("continual,rule", [(False, "ep"), (True, "ep"), (True, "vf")])
def test_chip_skip_unsettled_leaves_unsettled_samples_out_of_the_update(continual, rule):
    """The chip's cycle guard: the update of the kept samples alone, judged by the last free step's change."""
    T, (x, y) = 4, batch(n=8)                        # short, so the samples' settle gaps spread out
    fresh = lambda: ep_chip(SIZES, bias=BIAS, init_std=0.3, untied=rule == "vf")   # noqa: E731
    tiles = ("W0", "W1", "B1") if rule == "vf" else ("W0", "W1")

    def cfg(skip):
        return EPConfig(T=T, K=6, beta=0.2, rule=rule, continual=continual,
                        estimator="random" if continual else "one-sided", skip_unsettled=skip)

    ep = EquilibriumNetwork(fresh())
    last, before = ep.free_phase(x, cfg(None)), ep._settle(x, cfg(None), T - 1)   # two settles from zero
    gap = np.max(np.concatenate([np.abs(last.activities[g] - before.activities[g]) for g in ("h1", "y")], 1), 1)
    threshold = np.median(gap)
    keep = gap <= threshold
    assert keep.sum() == 4 and gap.max() > 2 * gap.min()
    split = ep.kept_free_phase(x, y, cfg(threshold))[0]       # the split settle is the same T steps
    for g in ("h1", "y"):
        np.testing.assert_array_equal(split.activities[g], last.activities[g])

    def train(skip, xs, ys):
        chip = fresh()
        rng = np.random.default_rng(5)
        res = EquilibriumNetwork(chip).train_batch(xs, ys, cfg(skip), {t: Proportional(4e-2) for t in tiles}, rng)
        return chip, res, rng

    skipping, res, _ = train(threshold, x, y)
    alone, _, _ = train(None, x[keep], y[keep])
    everything, _, _ = train(None, x, y)
    start = fresh()
    assert res.skipped == 4 and res.free_outputs.shape == (8, 3)      # predictions for the whole batch
    for t in tiles:
        g = lambda chip: chip._tiles[t].tile.weights()                # noqa: E731
        np.testing.assert_allclose(g(skipping), g(alone), rtol=0, atol=1e-12)
        assert np.abs(g(skipping) - g(start)).max() > 1e-4 and np.abs(g(skipping) - g(everything)).max() > 1e-5
    # a threshold no sample reaches changes nothing, bit for bit
    untouched, res, _ = train(2.0, x, y)
    assert res.skipped == 0
    for t in tiles:
        np.testing.assert_array_equal(untouched._tiles[t].tile.weights(), everything._tiles[t].tile.weights())
    # a batch with no settled sample: no pulse, but beta is still drawn (the run's random stream stays in step)
    none_kept, res, rng = train(threshold / 10, x[~keep], y[~keep])
    assert res.skipped == 4 and res.reports == []
    for t in tiles:
        np.testing.assert_array_equal(none_kept._tiles[t].tile.weights(), start._tiles[t].tile.weights())
    want = np.random.default_rng(5)
    if continual:
        want.random()
    assert rng.bit_generator.state == want.bit_generator.state


def test_skip_unsettled_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"skip_unsettled = 0.0 is outside the allowed range \(0, inf\)"):
        EPConfig(skip_unsettled=0.0)
    with pytest.raises(ValueError, match=r"T = 1 is outside the allowed range \[2, inf\) with skip_unsettled"):
        EPConfig(T=1, skip_unsettled=0.5)


def test_predict_takes_a_wired_chip_in_batches_its_memory_allows(monkeypatch):
    import circuits
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "netlists"
    assert circuits.load(root / "ep_p1h_ideal.net").batch_limit() is None         # reads are matrix products
    wired = circuits.load(root / "ep_p1h_wires.net")
    assert wired.batch_limit() == int(2e9 // (32 * 2 * 785 * 1026)) == 38         # the 785 x 1026 tile's nodes
    assert wired.batch_limit(1.0) == 1
    assert (wired.images_per_batch(1000), wired.images_per_batch(10, 2), wired.images_per_batch(1000, 40)) == (38, 10, 1)
    chip = ep_chip(SIZES, bias=BIAS, init_std=0.3)
    ep, cfg = EquilibriumNetwork(chip), EPConfig(T=20)
    x = batch(n=8)[0]
    whole = ep.predict(x, cfg)
    sizes = []
    free_phase = ep.free_phase
    monkeypatch.setattr(ep, "free_phase", lambda xs, c: sizes.append(len(xs)) or free_phase(xs, c))
    monkeypatch.setattr(chip, "batch_limit", lambda: 3)
    np.testing.assert_array_equal(ep.predict(x, cfg), whole)
    assert sizes == [3, 3, 2]
