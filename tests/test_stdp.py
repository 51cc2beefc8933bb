"""STDP from device physics: the window, the thesis' rho(pre) ds_post/dt claim, and EP training with it.

The tests build the waveforms with learning.stdp and measure the conductance
changes from simulated devices (crossbar.waveforms); nothing is computed from
a formula for the rule's benefit.
"""
import numpy as np
import pytest

from circuits import Chip, NeuronGroup, NeuronParams, ProgramSettings, WaveformWrite
from circuits.chip import ChipTile
from crossbar.devices import ExponentialDevice, ThresholdDevice
from crossbar.tile import Tile
from crossbar.waveforms import apply_waveforms
from learning.stdp import SpikeShape, StdpEP, StdpError, StdpParams, StdpRule, spike_waveforms

P = StdpParams()
NEAR_LINEAR = ExponentialDevice(beta_p=0.005, beta_d=0.005)     # the thesis' "near-linear" beta


def midpoint(device, shape):
    return np.full(shape, 0.5 * (device.g_min + device.g_max))


def test_shapes_are_checked_against_the_design_thresholds():
    assert P.pre.samples(P.dt).size == 24 and P.cycle_samples == 8 + 8 + 24
    with pytest.raises(StdpError, match=r"pre.tail = 1.1 is outside the allowed range \(-1, 1\) V"):
        StdpParams(pre=SpikeShape(tail=1.1))
    with pytest.raises(StdpError, match="pre before post"):
        StdpParams(pre=SpikeShape(peak=-0.3, tail=0.3), post=SpikeShape(peak=-0.3, tail=0.3))
    with pytest.raises(StdpError, match="must equal pre.peak_width"):
        StdpParams(post=SpikeShape(peak_width=2e-9))
    with pytest.raises(StdpError, match="multiple of dt"):
        StdpParams(pre=SpikeShape(peak_width=4.2e-9), post=SpikeShape(peak_width=4.2e-9))
    with pytest.raises(StdpError, match="max_delay"):
        StdpParams(max_delay=6e-9)


@pytest.mark.parametrize("device", [ExponentialDevice(), ThresholdDevice(v_write_set=1.5, v_write_reset=-1.5)],
                         ids=lambda d: type(d).__name__)
def test_stdp_window_from_the_devices(device):
    """One pre spike on the row; column j carries a post spike d_j samples later."""
    spike = P.pre.samples(P.dt)
    delays = np.arange(-30, 31)
    pad = 40
    S = spike.size + 2 * pad
    row = np.zeros(S)
    row[pad:pad + spike.size] = spike
    cols = np.zeros((delays.size, S))
    for j, d in enumerate(delays):
        cols[j, pad + d:pad + d + spike.size] = P.post.samples(P.dt)
    tile = Tile(midpoint(device, (1, delays.size)))
    g0 = tile.g.copy()
    rep = apply_waveforms(tile, device, None, WaveformWrite(row[None], cols, P.dt))
    dg = (tile.g - g0)[0]
    n_peak = int(round(P.pre.peak_width / P.dt))
    n_spike = spike.size
    # sign structure: pre before post potentiates, after depresses, coincidence and no overlap do nothing
    assert np.all(dg[(delays > 0) & (delays < n_spike)] > 0)
    assert np.all(dg[(delays < 0) & (delays > -n_spike)] < 0)
    assert dg[delays == 0] == 0 and np.all(dg[np.abs(delays) >= n_spike] == 0)
    # antisymmetric about zero (a device at its midpoint, symmetric SET/RESET)
    np.testing.assert_allclose(dg[::-1], -dg, rtol=1e-9)
    # the overlap lasts |d| samples up to the peak width: the model's own pulse of that length
    lin = (delays > 0) & (delays <= n_peak)
    np.testing.assert_allclose(dg[lin], device.closed_form(g0[0, 0], 1.3, delays[lin] * P.dt) - g0[0, 0],
                               rtol=1e-9)
    # events only where spikes overlap with a delay
    np.testing.assert_array_equal(rep.pulses[0], (delays != 0) & (np.abs(delays) < n_spike))


def test_expected_change_is_pre_rate_times_post_derivative():
    """The thesis (Part III 'Link to STDP'): E[dG] ~ rho(s_pre) ds_post/dt.

    Rows: pre neurons firing with probability rho per cycle (30 repeats of each
    rho); columns: post neurons whose activity ramps with slope ds per step, so
    their spikes come kappa ds after the cycle's reference time (stochastic
    rounding to the 0.5 ns samples). 40 steps; the mean change over the repeats
    is fitted against rho * ds.
    """
    rng = np.random.default_rng(7)
    params = StdpParams(kappa=20e-9)
    rho = np.linspace(0.0, 1.0, 6)
    reps = 30
    slopes = np.linspace(-0.09, 0.09, 7)       # per step; kappa ds = -3.6 ... 3.6 ns, not whole samples
    T = 40
    pre = np.tile(np.repeat(rho, reps), (T + 1, 1))
    post = 0.5 + np.arange(T + 1)[:, None] * slopes[None]
    rows, cols, stats = spike_waveforms(pre, post, params, rng)
    assert stats.delays_capped == 0 and stats.cycles == T
    tile = Tile(midpoint(NEAR_LINEAR, (rho.size * reps, slopes.size)))
    g0 = tile.g.copy()
    apply_waveforms(tile, NEAR_LINEAR, None, WaveformWrite(rows, cols, params.dt))
    mean = (tile.g - g0).reshape(rho.size, reps, slopes.size).mean(axis=1)
    x = rho[:, None] * slopes[None]
    r = np.corrcoef(mean.ravel(), x.ravel())[0, 1]
    slope = np.sum(mean * x) / np.sum(x * x)
    # prediction: T cycles, each a pulse of kappa ds at the near-linear rate dG_r / dt_max
    predicted = T * params.kappa * NEAR_LINEAR.dg_r / NEAR_LINEAR.dt_max
    assert r > 0.99, r
    assert slope == pytest.approx(predicted, rel=0.05)
    assert np.all(np.sign(mean[1:]) == np.sign(slopes)[None])      # rho > 0: the sign of ds/dt
    assert np.all(mean[0] == 0)                                     # a silent pre neuron: no change


def blobs(rng, n):
    protos = np.array([[0.9, 0.1, 0.8, 0.2], [0.1, 0.9, 0.2, 0.8], [0.8, 0.8, 0.1, 0.1]])
    labels = rng.integers(0, 3, n)
    return np.clip(protos[labels] + rng.normal(0.0, 0.15, (n, 4)), 0.0, 1.0), labels


def layered_chip(seed, device=ExponentialDevice(beta_p=1.0, beta_d=1.0, eps_inter=0.2)):
    """x (4 + bias) -> h (6 + bias) -> y (3), bidirectional tiles of differential pairs, sigmoid neurons."""
    rng = np.random.default_rng(seed)
    sig = dict(activation="sigmoid", slope=4.0, v_mid=0.5, r_feedback=40e3, v_rail_neg=-20.0, v_rail_pos=20.0)
    groups = {"x": NeuronGroup("x", 4, NeuronParams(role="input", bias=True), rng),
              "h": NeuronGroup("h", 6, NeuronParams(bias=True, **sig), rng),
              "y": NeuronGroup("y", 3, NeuronParams(role="output", **sig), rng)}
    tiles = {}
    for name, r, c in (("W1", "x", "h"), ("W2", "h", "y")):
        shape = (groups[r].lines, 2 * groups[c].lines)
        tiles[name] = ChipTile(name, Tile(device.initial_conductance(shape, rng), pairs=True), device,
                               device.sample(shape, rng), r, c, bidirectional=True)
    return Chip(groups, tiles, settings=ProgramSettings(v_read=0.5), rng=rng, seed=seed)


def test_ep_with_stdp_events_trains_a_small_network():
    """Free phase, nudged phase, then each tile written by the spikes of its traces: nothing else."""
    rng = np.random.default_rng(1)
    x_train, y_train = blobs(rng, 120)
    x_test, y_test = blobs(rng, 120)
    chip = layered_chip(0)
    rule = StdpRule(chip, StdpParams(kappa=40e-9, cycles_per_step=4), rng=np.random.default_rng(2))
    ep = StdpEP(chip, rule, inputs="x", outputs="y", beta=0.5, free_steps=15, nudge_steps=4)
    before = np.mean(ep.predict(x_test) == y_test)
    history = ep.fit(x_train, y_train, 3, epochs=5, batch=10, rng=np.random.default_rng(3))
    after = np.mean(ep.predict(x_test) == y_test)
    assert before < 0.6 and after >= 0.85, (before, history, after)
    assert chip.counters.pulse_events == 5 * 12 * 2          # one waveform write per tile per batch
    assert rule.stats.rates_clipped == 0 and sum(r.disturbed.sum() for r in rule.reports) == 0


def test_same_seed_same_run():
    def run():
        chip = layered_chip(3)
        rule = StdpRule(chip, StdpParams(kappa=40e-9, cycles_per_step=4), rng=np.random.default_rng(5))
        ep = StdpEP(chip, rule, inputs="x", outputs="y", nudge_steps=3)
        x, y = blobs(np.random.default_rng(0), 10)
        ep.train_batch(x, np.eye(3)[y])
        return chip.measure_conductance("W1"), chip.measure_conductance("W2")
    a, b = run(), run()
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_bias_lines_and_trace_shapes():
    rng = np.random.default_rng(0)
    pre = np.full((3, 2, 4), 0.5)
    post = np.zeros((3, 2, 2))
    post[1:, :, 0] = 0.1
    rows, cols, stats = spike_waveforms(pre, post, P, rng, rows=5, cols=3)
    L = P.cycle_samples
    assert rows.shape == (5, 4 * L) and cols.shape == (3, 4 * L)
    assert np.count_nonzero(rows[4]) == 4 * P.pre.samples(P.dt).size     # the bias row fires every cycle
    assert not cols[2].any() and not cols[1].any()                        # bias column and a flat neuron
    assert stats.post_spikes == 2                                         # one rising step per example
    with pytest.raises(StdpError, match="does not fit"):
        spike_waveforms(pre, post, P, rng, rows=7, cols=3)
    with pytest.raises(StdpError, match="at least 2 time points"):
        spike_waveforms(pre[:1], post[:1], P, rng)
