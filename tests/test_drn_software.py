"""The floating-point DRN reference (learning/drn_software.py): its operating point and its EP gradient."""
import numpy as np
import pytest

from learning.drn_software import SoftwareDRN


def tiny(seed=0, sweeps=None, sizes=(6, 4, 3)):
    rng = np.random.default_rng(seed)
    net = SoftwareDRN.kaiming_clamped(sizes, rng, gain=3.0, beta=1e-4, sweeps=sweeps)
    # a little of every conductance, so no node floats, and nonzero biases
    net.G = [g + rng.uniform(0.05, 0.3, g.shape) for g in net.G]
    net.b = [rng.normal(0, 0.2, b.shape) for b in net.b]
    x = rng.uniform(0, 1, (5, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 5)]
    return net, x, y


def kcl_currents(net, V, nudge=None):
    """Current leaving each free node through its conductances minus its source currents."""
    out = []
    for k in range(len(net.G)):
        i = V[k + 1] * net.G[k].sum(0) - V[k] @ net.G[k] - net.b[k]
        if k + 1 < len(net.G):
            i = i + V[k + 1] * net.G[k + 1].sum(1) - V[k + 2] @ net.G[k + 1].T
        elif nudge is not None:
            i = i - nudge[0] * (nudge[1] - V[k + 1])
        out.append(i)
    return out


@pytest.mark.parametrize("beta", [None, 0.5, -0.5])
def test_converged_operating_point_obeys_kcl_and_ideal_diodes(beta):
    net, x, y = tiny()
    nudge = None if beta is None else (beta, y)
    V = net.settle(net.inputs(x), nudge=nudge)
    currents = kcl_currents(net, V, nudge)
    # output nodes and hidden nodes off their clamp: KCL holds
    np.testing.assert_allclose(currents[-1], 0.0, atol=1e-10)
    h = V[1].shape[1] // 2
    lower, upper = V[1][:, :h], V[1][:, h:]
    i_lower, i_upper = currents[0][:, :h], currents[0][:, h:]
    assert lower.min() >= 0 and upper.max() <= 0
    np.testing.assert_allclose(i_lower[lower > 0], 0.0, atol=1e-10)
    np.testing.assert_allclose(i_upper[upper < 0], 0.0, atol=1e-10)
    # a clamped node's diode conducts only forwards: the one to a V >= 0 node supplies the current
    # the network draws from it (i >= 0), the one to a V <= 0 node absorbs what it pushes in
    assert np.all(i_lower[lower == 0] >= -1e-10) and np.all(i_upper[upper == 0] <= 1e-10)
    assert (lower == 0).any() or (upper == 0).any(), "the test network should have some diodes conducting"


def test_operating_point_minimises_the_power_over_allowed_voltages():
    net, x, y = tiny(1)
    V = net.settle(net.inputs(x), nudge=(0.3, y))
    e0 = net.power(V, (0.3, y))
    rng = np.random.default_rng(5)
    h = V[1].shape[1] // 2
    for _ in range(50):
        W = [V[0]] + [v + rng.normal(0, 0.05, v.shape) for v in V[1:]]
        W[1][:, :h] = np.maximum(W[1][:, :h], 0)
        W[1][:, h:] = np.minimum(W[1][:, h:], 0)
        assert np.all(net.power(W, (0.3, y)) >= e0 - 1e-12)


def test_centred_ep_matches_finite_differences_of_the_loss():
    net, x, y = tiny(2)
    gG, gb, _ = net.gradients(x, y)

    def loss():
        return net.loss(x, y)

    h = 1e-6
    for k in range(len(net.G)):
        for (i, j) in [(0, 0), (1, 2), (net.G[k].shape[0] - 1, net.G[k].shape[1] - 1)]:
            g0 = net.G[k][i, j]
            net.G[k][i, j] = g0 + h
            lp = loss()
            net.G[k][i, j] = g0 - h
            lm = loss()
            net.G[k][i, j] = g0
            fd = (lp - lm) / (2 * h)
            assert gG[k][i, j] == pytest.approx(fd, rel=1e-3, abs=1e-9)
        for j in range(net.b[k].size):
            b0 = net.b[k][j]
            net.b[k][j] = b0 + h
            lp = loss()
            net.b[k][j] = b0 - h
            lm = loss()
            net.b[k][j] = b0
            assert gb[k][j] == pytest.approx((lp - lm) / (2 * h), rel=1e-3, abs=1e-9)


def test_truncated_sweeps_approach_the_converged_point():
    net, x, _ = tiny(3)
    u = net.inputs(x)
    exact = net.settle(u)[-1]
    errs = []
    for n in (1, 4, 16):
        net.sweeps = n
        errs.append(float(np.max(np.abs(net.settle(u)[-1] - exact))))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-6


def test_sgd_keeps_conductances_non_negative_and_lowers_the_loss():
    net, x, y = tiny(4, sweeps=None)
    net.lrs = (0.05, 0.05)
    before = net.loss(x, y)
    for _ in range(20):
        net.train_batch(x, y)
    assert all(g.min() >= 0 for g in net.G)
    assert any((g == 0).any() for g in net.G), "the clamp at 0 S should have been exercised"
    assert net.loss(x, y) < 0.7 * before


def test_a_nudge_stronger_than_an_output_node_is_reported():
    net, x, y = tiny(5)
    net.beta = 10.0 * max(g.sum(0).max() for g in net.G)
    with pytest.raises(FloatingPointError, match="lower beta"):
        net.gradients(x, y)


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match="beta"):
        SoftwareDRN((4, 2, 2), beta=0)
    with pytest.raises(ValueError, match="even"):
        SoftwareDRN((4, 3, 2))
    with pytest.raises(ValueError, match="sweeps"):
        SoftwareDRN((4, 2, 2), sweeps=0)


def test_bounded_midpoint_devices_stay_in_their_range():
    rng = np.random.default_rng(7)
    net = SoftwareDRN.bounded_midpoint((6, 4, 3), rng, on_off=10.0, init_std=0.8, gain=3.0, beta=0.01,
                                          lrs=(5.0, 5.0))
    for g, (lo, hi) in zip(net.G, net.g_bounds):
        assert hi / lo == pytest.approx(10.0)
        assert (lo + hi) / 2 == pytest.approx(0.25 / np.sqrt(g.shape[0]))
        assert g.min() >= lo and g.max() <= hi
    x = rng.uniform(0, 1, (5, 6))
    y = np.eye(3)[rng.integers(0, 3, 5)]
    for _ in range(10):
        net.train_batch(x, y)
    for g, (lo, hi) in zip(net.G, net.g_bounds):
        assert g.min() >= lo and g.max() <= hi
        assert (g == lo).any() or (g == hi).any(), "a large rate should have driven some devices to a bound"
