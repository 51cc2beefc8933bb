"""Programming pulses go through the circuit: thresholds, half-select and disturb."""
import numpy as np
import pytest

from crossbar import ParameterError
from crossbar.cells import Selector
from crossbar.devices import ExponentialDevice
from crossbar.program import apply_pulse, device_voltages, half_select
from crossbar.tile import Tile, Wires


def make(n=6, r=0.0, access=None, v_set=1.0):
    dev = ExponentialDevice(v_set=v_set, v_reset=-v_set)
    kw = {} if access is None else {"access": access}
    tile = Tile(np.full((n, n), 0.5 * (dev.g_min + dev.g_max)), wires=Wires(r, r, 5.0 if r else 0.0,
                                                                             5.0 if r else 0.0), **kw)
    return dev, tile


def test_v2_writes_only_the_selected_device():
    dev, tile = make()
    g0 = tile.g.copy()
    rv, cv = half_select(6, 6, 2, 3, 1.6)
    rep = apply_pulse(tile, dev, None, rv, cv, dev.dt_max / 10)
    changed = np.argwhere(tile.g != g0)
    assert changed.tolist() == [[2, 3]] and tile.g[2, 3] > g0[2, 3]
    assert rep.switched.sum() == 1 and rep.energy > 0
    np.testing.assert_allclose(rep.v_device[2, 3], 1.6, rtol=1e-12)
    np.testing.assert_allclose(rep.v_device[2, 0], 0.8, rtol=1e-12)


def test_half_select_above_threshold_disturbs():
    dev, tile = make(v_set=0.7)
    g0 = tile.g.copy()
    rv, cv = half_select(6, 6, 2, 3, 1.6)   # V/2 = 0.8 V > 0.7 V threshold
    rep = apply_pulse(tile, dev, None, rv, cv, dev.dt_max / 10)
    moved = tile.g != g0
    assert moved[2].all() and moved[:, 3].all() and moved.sum() == 11
    assert rep.switched.sum() == 11


def test_wire_resistance_reduces_the_written_voltage():
    dev, tile = make(n=16, r=5.0)
    rv, cv = half_select(16, 16, 15, 15, 1.6)   # far corner from both drivers
    v, sol = device_voltages(tile, rv, cv)
    assert 1.0 < v[15, 15] < 1.6
    assert sol.kcl_residual()["relative"] < 1e-10


def test_v3_scheme_keeps_unselected_at_one_third():
    dev, tile = make()
    rv, cv = half_select(6, 6, 1, 4, 1.5, scheme="V/3")
    v, _ = device_voltages(tile, rv, cv)
    mask = np.ones((6, 6), bool)
    mask[1, 4] = False
    np.testing.assert_allclose(np.abs(v[mask]), 0.5, rtol=1e-12)
    np.testing.assert_allclose(v[1, 4], 1.5, rtol=1e-12)


def test_selector_takes_its_share_of_the_write_voltage():
    dev, tile = make(access=Selector(i_s=1e-9))
    rv, cv = half_select(6, 6, 0, 0, 1.6)
    v, sol = device_voltages(tile, rv, cv)
    assert 0 < v[0, 0] < 1.6 and abs(v[0, 1]) < 0.8


def test_bad_pulse_arguments():
    dev, tile = make()
    with pytest.raises(ParameterError, match="duration"):
        apply_pulse(tile, dev, None, np.zeros(6), np.zeros(6), -1.0)
    with pytest.raises(ParameterError, match="scheme"):
        half_select(3, 3, 0, 0, 1.0, scheme="V/4")


# ---------------------------------------------------------------- schedules
from crossbar import program as prog  # noqa: E402
from crossbar.program import program  # noqa: E402
from crossbar.schedules import OuterProductWrite, RowByRowWrite, WriteVerify  # noqa: E402


def pair_tile(M=5, N=4, seed=0, **kw):
    dev = ExponentialDevice(beta_p=3.0, beta_d=3.0)
    rng = np.random.default_rng(seed)
    g = dev.initial_conductance((M, 2 * N), rng)
    return dev, Tile(g, pairs=True, **kw), rng


def test_fast_path_equals_phase_by_phase_path():
    dev, tile, rng = pair_tile()
    widths = rng.choice([-2e-8, -1e-8, 0.0, 1e-8, 3e-8], size=tile.shape)
    twin = Tile(tile.g.copy(), pairs=True)
    P = prog.physical_widths(tile, widths)
    phases = list(prog._row_phases(P, 1.6, "V/2"))
    fast = prog._program_at_once(tile, dev, None, P, phases, 1.6, None, "numba")
    slow = prog._program_phase_by_phase(twin, dev, None, phases, None, "numba")
    np.testing.assert_allclose(tile.g, twin.g, rtol=1e-14)
    assert fast.time == slow.time and fast.n_phases == slow.n_phases
    # the fast path integrates the energy at the start-of-schedule conductances; the
    # phase-by-phase path follows every device's change (here up to 3% of the range per write)
    np.testing.assert_allclose(fast.energy, slow.energy, rtol=2e-2)
    np.testing.assert_array_equal(fast.pulses, slow.pulses)
    assert not slow.disturbed.any()


def test_outer_product_write_signs_on_pairs():
    dev, tile, _ = pair_tile(M=4, N=3)
    w0 = tile.weights()
    rows, cols = np.array([1, -1, 0, 1]), np.array([-1, 1, 1])
    rep = program(tile, dev, None, OuterProductWrite(rows, cols, width=1e-8), v_write=1.6)
    dw = tile.weights() - w0
    np.testing.assert_array_equal(np.sign(dw), np.outer(rows, cols))
    assert rep.n_phases == 4 and rep.time == pytest.approx(4e-8) and rep.energy > 0
    assert rep.pulses.sum() == 2 * np.count_nonzero(np.outer(rows, cols))


def test_row_by_row_zero_statistic_sends_no_pulse():
    dev, tile, _ = pair_tile()
    g0 = tile.g.copy()
    widths = np.zeros(tile.shape)
    widths[2, 1] = 1e-8
    rep = program(tile, dev, None, RowByRowWrite(widths), v_write=1.6)
    changed = np.argwhere(tile.g != g0)
    assert changed.tolist() == [[2, 2], [2, 3]]      # G+ and G- of weight (2, 1)
    assert rep.n_phases == 2 and rep.pulses.sum() == 2


def test_low_threshold_half_select_disturbs_and_is_reported():
    dev = ExponentialDevice(v_set=0.7, v_reset=-0.7)
    tile = Tile(np.full((4, 4), 5e-5))
    widths = np.zeros((4, 4))
    widths[1, 2] = 1e-8
    rep = program(tile, dev, None, RowByRowWrite(widths), v_write=1.6)
    assert rep.disturbed.sum() == 6 and not rep.disturbed[1, 2]
    assert rep.disturbed[1].sum() == 3 and rep.disturbed[:, 2].sum() == 3


def test_resistive_wires_solve_each_segment_and_weaken_far_writes():
    from crossbar.devices import ThresholdDevice   # its rate grows with the overdrive
    _, tile, _ = pair_tile(M=12, N=6, wires=Wires(r_row_segment=20.0, r_col_segment=20.0))
    dev = ThresholdDevice()
    ideal = Tile(tile.g.copy(), pairs=True)
    w0 = tile.weights()
    widths = np.full(tile.shape, 1e-8)
    rep = program(tile, dev, None, RowByRowWrite(widths), v_write=1.6)
    program(ideal, dev, None, RowByRowWrite(widths), v_write=1.6)
    assert rep.n_solves > 0 and not rep.disturbed.any()
    moved, moved_ideal = tile.weights() - w0, ideal.weights() - w0
    assert np.all(moved > 0) and np.all(moved <= moved_ideal)
    assert moved[-1, -1] < 0.9 * moved_ideal[-1, -1]   # the far corner gets the least voltage


def test_v3_costs_more_energy_than_v2_for_a_sparse_write():
    """V/3 biases every unselected cell at V/3 (energy ~ M N V^2/9), V/2 only the selected
    lines' cells at V/2 (~ (M + N) V^2/4): for one weight in 16x16, V/3 dissipates more."""
    dev, tile, _ = pair_tile(M=16, N=8)
    twin = Tile(tile.g.copy(), pairs=True)
    widths = np.zeros(tile.shape)
    widths[3, 5] = 1e-8
    e2 = program(tile, dev, None, RowByRowWrite(widths), v_write=1.6, scheme="V/2").energy
    e3 = program(twin, dev, None, RowByRowWrite(widths), v_write=1.6, scheme="V/3").energy
    assert e3 > e2 > 0


def test_write_verify_reaches_targets():
    dev = ExponentialDevice(beta_p=1.0, beta_d=1.0)
    tile = Tile(np.full((3, 3), dev.g_min))
    targets = np.full((3, 3), np.nan)
    targets[0, 0], targets[2, 1] = 40e-6, 70e-6
    rep = program(tile, dev, None, WriteVerify(targets, width=dev.dt_max / 200, tol=0.02, max_pulses=400),
                  v_write=1.6)
    assert abs(tile.g[0, 0] / 40e-6 - 1) <= 0.02 and abs(tile.g[2, 1] / 70e-6 - 1) <= 0.02
    assert rep.pulses[0, 0] > 1 and rep.pulses[1, 1] == 0 and rep.n_unverified == 0
    short = program(Tile(np.full((3, 3), dev.g_min)), dev, None,
                    WriteVerify(targets, width=dev.dt_max / 200, max_pulses=3), v_write=1.6)
    assert short.n_unverified == 2


def test_vectorised_row_write_equals_the_phase_loop():
    """The closed-form V/2 row-by-row path agrees with the general per-phase loop on ideal wires."""
    dev, tile, rng = pair_tile(M=7, N=5, seed=4)
    widths = rng.choice([-3e-8, -1e-8, 0.0, 1e-8, 2e-8], size=tile.shape)
    twin = Tile(tile.g.copy(), pairs=True)
    P = prog.physical_widths(tile, widths)
    fast = prog._row_write_v2_linear(tile, dev, None, P, 1.6, None, "numba")
    phases = list(prog._row_phases(P, 1.6, "V/2"))
    loop = prog._program_at_once(twin, dev, None, P, phases, 1.6, None, "numba")
    np.testing.assert_array_equal(tile.g, twin.g)
    np.testing.assert_allclose(fast.energy, loop.energy, rtol=1e-12)
    assert fast.time == pytest.approx(loop.time) and fast.n_phases == loop.n_phases


@pytest.mark.parametrize("shape", [(1, 1), (7, 10), (40, 33)])
def test_write_cost_kernel_equals_its_numpy_reference(shape):
    """The one-pass numba sums of a V/2 row-by-row write equal the whole-array numpy version."""
    from crossbar.write_kernels import v2_row_write_cost
    rng = np.random.default_rng(shape[0])
    P = rng.choice([-2e-8, -1e-9, 0.0, 0.0, 3e-9, 5e-8], size=shape)
    g = rng.uniform(1e-6, 1e-4, size=shape)
    fast = v2_row_write_cost(P, g, 1.6, "numba")
    ref = v2_row_write_cost(P, g, 1.6, "numpy")
    np.testing.assert_allclose(fast[:2], ref[:2], rtol=1e-12)
    assert fast[2] == ref[2]
    assert v2_row_write_cost(np.zeros(shape), g, 1.6) == (0.0, 0.0, 0)
    with pytest.raises(ValueError, match="backend"):
        v2_row_write_cost(P, g, 1.6, "cuda")


@pytest.mark.parametrize("shape", [(1, 1), (7, 10), (40, 33)])
def test_write_drive_and_range_kernels_equal_their_numpy_references(shape):
    """The one-pass device drive and width range of a write equal their whole-array numpy versions."""
    from crossbar.write_kernels import v2_drive, width_range
    rng = np.random.default_rng(shape[1])
    P = rng.choice([-2e-8, -1e-9, 0.0, 0.0, 3e-9, 5e-8], size=shape)
    for fast, ref in zip(v2_drive(P, 1.6, "numba"), v2_drive(P, 1.6, "numpy")):
        assert fast.dtype == ref.dtype
        np.testing.assert_array_equal(fast, ref)
    assert width_range(P, "numba") == width_range(P, "numpy")
    assert width_range(np.zeros(shape), "numba") == width_range(np.zeros(shape), "numpy") == (True, np.inf, 0.0)
    P[0, 0] = np.nan
    assert width_range(P, "numba")[0] is width_range(P, "numpy")[0] is False
    with pytest.raises(ValueError, match="backend"):
        v2_drive(P, 1.6, "cuda")


def test_row_by_row_write_rejects_non_finite_widths():
    with pytest.raises(ParameterError, match="finite"):
        RowByRowWrite(np.array([[1e-9, np.inf]]))


def test_pair_interleave_kernel_equals_the_strided_numpy_assignment():
    """physical_widths' numba pass (C-ordered input) and its numpy form (any other layout) agree."""
    rng = np.random.default_rng(7)
    signed = rng.choice([-2e-8, 0.0, 3e-9], size=(9, 6))
    tile = Tile.from_pairs(np.full((9, 6), 1e-5), np.full((9, 6), 2e-5))
    fast = prog.physical_widths(tile, signed)
    ref = prog.physical_widths(tile, np.asfortranarray(signed))
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(fast[:, 0::2], signed)
    np.testing.assert_array_equal(fast[:, 1::2], -signed)
