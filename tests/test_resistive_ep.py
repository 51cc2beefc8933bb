"""Centred EP on the deep resistive network: the estimate is the gradient, pulses carry it, it learns."""
import numpy as np
import pytest

from circuits.resistive_network import DiodeClamp, ResistiveNetwork
from crossbar.devices import SoftBoundsDevice
from learning.resistive_ep import ResistiveEP, duplicate_inverted, squared_voltage_sums
from learning.updates import Proportional
from test_boundary import LEARNING, violations

LINEAR = SoftBoundsDevice(gamma=0.0, init_std=0.5)


def net_5_4_3(seed=0, **kw):
    opts = dict(gains=(3.0, 2.0), diode=DiodeClamp(v_bias=0.1), rng=np.random.default_rng(seed))
    opts.update(kw)
    return ResistiveNetwork((5, 4, 3), LINEAR, **opts)


def batch(seed=1, B=4):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (B, 5)), rng.uniform(-0.5, 0.5, (B, 3))


def loss(net, u, y):
    out = net.operating_point(u).outputs
    return float(np.mean(0.5 * np.sum((out - y) ** 2, axis=1)))


class Instrument:
    """Only what a chip would expose: settle, pulse, names and limits. No conductance anywhere."""

    def __init__(self, net):
        self._net = net
        self.crossbars = net.crossbars
        self.pulse_limits = net.pulse_limits

    def operating_point(self, *a, **kw):
        return self._net.operating_point(*a, **kw)

    def operating_points(self, *a, **kw):
        return self._net.operating_points(*a, **kw)

    def pulse(self, name, schedule):
        return self._net.pulse(name, schedule)


@pytest.mark.parametrize("output_diodes", [False, True], ids=["linear-out", "clamped-out"])
def test_centred_ep_estimate_is_the_finite_difference_gradient(output_diodes):
    net = net_5_4_3(output_diodes=output_diodes)
    u, y = batch()
    op = net.operating_point(u)
    assert np.max(np.abs(op.layers[1])) > 0.1 + 0.4      # the diodes are part of the gradient
    rule = ResistiveEP(Instrument(net), Proportional(1.0), beta=1e-6)   # 1e-6 S against ~400 uS per node
    ep, _ = rule.gradients(u, y)
    h = 1e-9                                              # S, against conductances of ~50 uS
    for name in net.crossbars:
        g = net.tile(name).g
        fd = np.empty_like(g)
        for idx in np.ndindex(g.shape):
            g0 = g[idx]
            g[idx] = g0 + h
            lp = loss(net, u, y)
            g[idx] = g0 - h
            lm = loss(net, u, y)
            g[idx] = g0
            fd[idx] = (lp - lm) / (2 * h)
        scale = np.max(np.abs(fd))
        assert scale > 0
        np.testing.assert_allclose(ep[name], fd, rtol=1e-3, atol=1e-3 * scale, err_msg=name)
        # and the sign convention: the rule's statistic -dL/dG points downhill
        assert np.sum(ep[name] * fd) > 0


def test_one_sided_ep_would_be_biased_but_centred_is_not():
    """At a large beta the centred estimate stays close; it is exact to O(beta^2)."""
    net = net_5_4_3(seed=2)
    u, y = batch(seed=3)
    small = ResistiveEP(net, Proportional(1.0), beta=1e-7).gradients(u, y)[0]
    big = ResistiveEP(net, Proportional(1.0), beta=1e-5).gradients(u, y)[0]
    free, plus = net.operating_points(u, [None, (y, 1e-5)])
    one_sided = [(a - b) / (2 * 1e-5 * len(u)) for a, b in zip(squared_voltage_sums(plus), squared_voltage_sums(free))]
    for k, name in enumerate(net.crossbars):
        err_c = np.max(np.abs(big[name] - small[name]))
        err_1 = np.max(np.abs(one_sided[k] - small[name]))
        assert err_c < 0.2 * err_1, name


def test_pulse_update_equals_the_float_update_within_the_quantum():
    net = net_5_4_3(seed=4)
    u, y = batch(seed=5, B=8)
    eta = 1e-9                                            # dG = -eta dL/dG, S^2/V^2
    scale = eta * LINEAR.dt_max / LINEAR.dg_r             # a linear device: dG_r per dt_max
    quantum = 1e-5 * LINEAR.dt_max
    rule = ResistiveEP(Instrument(net), Proportional(scale, quantum=quantum), beta=1e-6)
    grads, _ = rule.gradients(u, y)
    before = {n: net.tile(n).g.copy() for n in net.crossbars}
    rule.step(u, y)
    dg_quantum = quantum / LINEAR.dt_max * LINEAR.dg_r
    moved = 0
    for name in net.crossbars:
        dg = net.tile(name).g - before[name]
        want = -eta * grads[name]
        assert np.max(np.abs(want)) > 20 * dg_quantum     # the test resolves the update
        # a device at a bound stays there (the device model clamps, and counts it)
        want = np.clip(before[name] + want, LINEAR.g_min, LINEAR.g_max) - before[name]
        assert np.all(np.abs(dg - want) <= 0.5 * dg_quantum * (1 + 1e-6) + 1e-18), name
        moved += np.count_nonzero(dg)
    assert moved > 0.8 * sum(np.prod(net.crossbar_shape(n)) for n in net.crossbars)
    # what was sent is what the network received: only pulses, counted by the hardware
    assert net.counters.pulse_events == 2


def test_the_rule_stays_behind_the_hardware_boundary():
    assert violations((LEARNING / "resistive_ep.py").read_text(), "resistive_ep.py") == []


def test_training_on_a_small_task_learns():
    """Three noisy prototypes in 8 dimensions, 8+8 inputs, 12 hidden, 3 outputs; a few hundred samples."""
    rng = np.random.default_rng(0)
    protos = rng.choice([-1.0, 1.0], (3, 8))
    labels = rng.integers(0, 3, 600)
    x = np.clip(0.5 + 0.5 * protos[labels] * 0.8 + 0.25 * rng.standard_normal((600, 8)), 0, 1)
    u = duplicate_inverted(x, 1.0)
    targets = np.eye(3)[labels] * 0.5
    net = ResistiveNetwork((16, 12, 3), LINEAR, gains=(4.0, 3.0), diode=DiodeClamp(v_bias=0.0),
                           bias_voltages=(0.5, -0.5), rng=np.random.default_rng(1))
    eta = 3e-9
    rule = ResistiveEP(net, Proportional(eta * LINEAR.dt_max / LINEAR.dg_r, quantum=1e-4 * LINEAR.dt_max),
                       beta=1e-4)
    test = slice(400, 600)                                # trained on the first 400
    err0 = rule.error_rate(u[test], labels[test])
    for epoch in range(3):
        for s in range(0, 400, 10):
            rule.step(u[s:s + 10], targets[s:s + 10], labels=labels[s:s + 10])
    err = rule.error_rate(u[test], labels[test])
    assert err0 > 0.3 and err < 0.2, (err0, err)
