"""Waveform writes: only overlapping waveforms beyond a threshold move a device, by the model's own law."""
import numpy as np
import pytest

from circuits import Chip, NeuronGroup, NeuronParams, ProgramSettings
from circuits.chip import ChipTile
from crossbar.devices import ExponentialDevice, ThresholdDevice
from crossbar.errors import ParameterError
from crossbar.tile import Tile, Wires
from crossbar.waveforms import WaveformReport, WaveformWrite, apply_waveforms

DT = 0.5e-9
PEAK, TAIL = -0.65, 0.65
SPIKE = np.r_[np.full(8, PEAK), np.full(16, TAIL)]      # 4 ns peak, 8 ns tail
DEVICES = [ExponentialDevice(), ExponentialDevice(beta_p=0.005, beta_d=0.005),
           ThresholdDevice(v_write_set=1.5, v_write_reset=-1.5)]


def place(shape, start, n):
    w = np.zeros(n)
    w[start:start + shape.size] = shape
    return w


def one_device(device, g=None):
    return Tile(np.full((1, 1), g if g is not None else 0.5 * (device.g_min + device.g_max)))


@pytest.mark.parametrize("device", DEVICES, ids=lambda d: type(d).__name__)
def test_spikes_alone_do_nothing_overlaps_follow_the_closed_form(device):
    S = 80
    pre = place(SPIKE, 20, S)
    for rows, cols in ((pre, np.zeros(S)), (np.zeros(S), pre)):
        tile = one_device(device)
        g0 = tile.g.copy()
        rep = apply_waveforms(tile, device, None, WaveformWrite(rows[None], cols[None], DT))
        assert np.array_equal(tile.g, g0) and rep.pulses.sum() == 0 and rep.energy > 0
    for d in (-7, -3, 3, 7):     # post spike d samples after the pre spike
        tile = one_device(device)
        g0 = tile.g.copy()
        rep = apply_waveforms(tile, device, None, WaveformWrite(pre[None], place(SPIKE, 20 + d, S)[None], DT))
        v = TAIL - PEAK if d > 0 else PEAK - TAIL        # +1.3 V or -1.3 V, for |d| samples
        np.testing.assert_allclose(tile.g, device.closed_form(g0, v, abs(d) * DT), rtol=1e-12)
        assert np.sign(tile.g - g0)[0, 0] == np.sign(d)
        assert rep.pulses[0, 0] == 1 and (rep.set_events[0, 0] == 1) == (d > 0)
        np.testing.assert_allclose(rep.supra_time, abs(d) * DT)
        assert not rep.disturbed.any()


def test_energy_of_a_constant_drive():
    device = ExponentialDevice()
    g = np.array([[20e-6, 40e-6], [60e-6, 80e-6]])
    rows = np.array([[0.3] * 10, [-0.2] * 10])
    cols = np.array([[0.1] * 10, [0.0] * 10])
    v = rows[:, :1] - cols[:, 0][None]
    for method in ("rounds", "segments"):
        tile = Tile(g.copy())
        rep = apply_waveforms(tile, device, None, WaveformWrite(rows, cols, DT), method=method)
        np.testing.assert_allclose(rep.energy, np.sum(g * v ** 2) * 10 * DT, rtol=1e-12)
        assert rep.time == pytest.approx(10 * DT) and rep.n_segments == 1 and rep.n_solves == 0


def random_waveforms(rng, M, N, S):
    """Piecewise-constant waveforms whose overlaps sometimes cross +-1 V."""
    def lines(n):
        levels = rng.choice([-0.7, -0.4, 0.0, 0.4, 0.7], size=(n, S // 4))
        return np.repeat(levels, 4, axis=1)
    return lines(M), lines(N)


@pytest.mark.parametrize("pairs", [False, True])
def test_rounds_and_segments_agree(pairs):
    rng = np.random.default_rng(4)
    device = ExponentialDevice(beta_p=2.0, beta_d=2.0)
    M, N = 5, 4
    g0 = device.initial_conductance((M, 2 * N if pairs else N), rng)
    arrays = ExponentialDevice(eps_inter=0.5).sample(g0.shape, rng)
    rows, cols = random_waveforms(rng, M, N, 200)
    out = {}
    for method in ("rounds", "segments"):
        tile = Tile(g0.copy(), pairs=pairs)
        dev = ExponentialDevice(beta_p=2.0, beta_d=2.0, eps_inter=0.5)
        out[method] = (apply_waveforms(tile, dev, arrays, WaveformWrite(rows, cols, DT), method=method), tile.g)
    (ra, ga), (rb, gb) = out["rounds"], out["segments"]
    assert ra.pulses.sum() > 20 and not np.array_equal(ga, g0)
    np.testing.assert_allclose(ga, gb, rtol=1e-14, atol=0)
    for name in ("set_events", "reset_events", "pulses", "disturbed"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
    np.testing.assert_allclose(ra.supra_time, rb.supra_time)
    assert ra.n_phases == rb.n_phases == (2 if pairs else 1)
    # energies differ only through the conductance change during the write
    assert ra.energy == pytest.approx(rb.energy, rel=0.05)


def test_a_pair_moves_in_opposite_directions():
    device = ExponentialDevice()
    gp, gm = 40e-6, 60e-6
    tile = Tile.from_pairs([[gp]], [[gm]])
    S = 80
    d = 5
    pre, post = place(SPIKE, 20, S), place(SPIKE, 20 + d, S)
    rep = apply_waveforms(tile, device, None, WaveformWrite(pre[None], post[None], DT))
    np.testing.assert_allclose(tile.g[0, 0], device.closed_form(gp, 1.3, d * DT), rtol=1e-12)
    np.testing.assert_allclose(tile.g[0, 1], device.closed_form(gm, -1.3, d * DT), rtol=1e-12)
    assert tile.g[0, 0] > gp and tile.g[0, 1] < gm
    assert rep.n_phases == 2 and rep.time == pytest.approx(2 * S * DT)
    np.testing.assert_array_equal(rep.set_events, [[1, 0]])
    np.testing.assert_array_equal(rep.reset_events, [[0, 1]])
    assert not rep.disturbed.any()
    # physical columns: one phase, as given (here: only G- gets the post spike)
    tile = Tile.from_pairs([[gp]], [[gm]])
    rep = apply_waveforms(tile, device, None, WaveformWrite(pre[None], np.c_[np.zeros(S), post].T, DT))
    assert rep.n_phases == 1 and tile.g[0, 0] == gp and tile.g[0, 1] > gm


def test_a_row_waveform_that_writes_alone_is_reported_as_disturbing():
    device = ExponentialDevice()
    tile = Tile.from_pairs([[50e-6]], [[50e-6]])
    rows = np.full((1, 4), 1.2)                     # beyond v_set on its own
    rep = apply_waveforms(tile, device, None, WaveformWrite(rows, np.zeros((1, 4)), DT))
    assert rep.disturbed.all() and rep.set_events[0, 1] == 1 and rep.reset_events[0, 0] == 1


@pytest.mark.parametrize("method", ["rounds", "segments"])
def test_noise_is_drawn_once_per_event_whatever_the_sampling(method):
    eps = 0.01
    device = ExponentialDevice(beta_p=0.005, beta_d=0.005, eps_intra=eps)
    n = 4000
    spread = {}
    for k in (1, 8):    # the same 2 ns overlap, sampled at dt and dt/8
        dt = DT / k
        spike = np.repeat(SPIKE, k)
        S = spike.size + 8 * k
        pre, post = place(spike, 0, S), place(spike, 4 * k, S)
        tile = Tile(np.full((1, n), 0.5 * (device.g_min + device.g_max)))
        g0 = tile.g.copy()
        rep = apply_waveforms(tile, device, None, WaveformWrite(pre[None], np.tile(post, (n, 1)), dt),
                              rng=np.random.default_rng(0), method=method)
        assert (rep.pulses == 1).all()
        mean = device.closed_form(g0[0, 0], 1.3, 4 * DT) - g0[0, 0]
        dg = tile.g - g0
        assert abs(dg.mean() - mean) < 5 * eps * device.dg_r / np.sqrt(n)
        spread[k] = dg.std() / (eps * device.dg_r)
    assert spread[1] == pytest.approx(1.0, abs=0.05) and spread[8] == pytest.approx(1.0, abs=0.05)


def test_resistive_wires_are_solved():
    device = ExponentialDevice()
    S = 20
    rows = np.full((3, S), 0.55)
    cols = np.full((2, S), -0.5)            # 1.05 V across every device with ideal wires
    g0 = np.full((3, 2), 80e-6)
    ideal = Tile(g0.copy())
    apply_waveforms(ideal, device, None, WaveformWrite(rows, cols, DT))
    assert (ideal.g > g0).all()
    lossy = Tile(g0.copy(), wires=Wires(r_row_segment=200.0, r_col_segment=200.0, r_row_driver=100.0,
                                        r_col_driver=100.0))
    rep = apply_waveforms(lossy, device, None, WaveformWrite(rows, cols, DT))
    assert rep.n_solves == 1 and np.array_equal(lossy.g, g0)      # the drop keeps them below 1 V
    with pytest.raises(ParameterError, match="rounds"):
        apply_waveforms(lossy, device, None, WaveformWrite(rows, cols, DT), method="rounds")
    # tiny wire resistance: the solved energy matches the ideal closed form
    tiny = Tile(g0.copy(), wires=Wires(r_row_segment=1e-6, r_col_segment=1e-6))
    rep = apply_waveforms(tiny, device, None, WaveformWrite(rows * 0.5, cols * 0.5, DT))
    np.testing.assert_allclose(rep.energy, np.sum(g0) * (1.05 * 0.5) ** 2 * S * DT, rtol=1e-6)


def test_bad_schedules_are_rejected():
    with pytest.raises(ParameterError, match="dt"):
        WaveformWrite(np.zeros((2, 3)), np.zeros((2, 3)), 0.0)
    with pytest.raises(ParameterError, match="same number"):
        WaveformWrite(np.zeros((2, 3)), np.zeros((2, 4)), DT)
    with pytest.raises(ParameterError, match="non-finite"):
        WaveformWrite(np.full((2, 3), np.nan), np.zeros((2, 3)), DT)
    with pytest.raises(ParameterError, match="2-D"):
        WaveformWrite(np.zeros(3), np.zeros((2, 3)), DT)
    tile = Tile.from_pairs(np.full((2, 3), 1e-5), np.full((2, 3), 1e-5))
    with pytest.raises(ParameterError, match=r"3 \(logical\) or 6 \(physical\)"):
        apply_waveforms(tile, ExponentialDevice(), None, WaveformWrite(np.zeros((2, 3)), np.zeros((4, 3)), DT))
    with pytest.raises(ParameterError, match="row_waveforms has 3 rows"):
        apply_waveforms(tile, ExponentialDevice(), None, WaveformWrite(np.zeros((3, 3)), np.zeros((3, 3)), DT))
    with pytest.raises(ParameterError, match="method"):
        apply_waveforms(tile, ExponentialDevice(), None, WaveformWrite(np.zeros((2, 3)), np.zeros((3, 3)), DT),
                        method="fast")


def test_chip_pulse_sends_waveforms():
    """Needs the dispatch in crossbar.program.program (WaveformWrite -> apply_waveforms)."""
    rng = np.random.default_rng(0)
    device = ExponentialDevice()
    groups = {"a": NeuronGroup("a", 2, NeuronParams(role="input"), rng),
              "b": NeuronGroup("b", 3, NeuronParams(), rng)}
    g0 = device.initial_conductance((2, 6), rng)
    chip = Chip(groups, {"W": ChipTile("W", Tile(g0.copy(), pairs=True), device, None, "a", "b")},
                settings=ProgramSettings(), rng=rng)
    S = 60
    rows = np.stack([place(SPIKE, 20, S), np.zeros(S)])
    cols = np.stack([place(SPIKE, 20 + d, S) for d in (-4, 0, 4)])
    before = chip.measure_conductance("W")
    rep = chip.pulse("W", WaveformWrite(rows, cols, DT))
    assert isinstance(rep, WaveformReport) and chip.counters.pulse_events == 1
    expected = Tile(g0.copy(), pairs=True)
    apply_waveforms(expected, device, None, WaveformWrite(rows, cols, DT))
    after = chip.measure_conductance("W")
    np.testing.assert_allclose(after, expected.g, rtol=1e-9)
    dw = (after - before)[:, 0::2] - (after - before)[:, 1::2]
    assert dw[0, 0] < 0 and dw[0, 1] == 0 and dw[0, 2] > 0 and not dw[1].any()
