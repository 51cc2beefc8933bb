"""Chips built from the example netlists: load, read, pulse, record, and an ngspice check."""
from pathlib import Path

import numpy as np
import pytest

import circuits
from circuits import NetlistError, OuterProductWrite, RowByRowWrite
from circuits.spice import run_ngspice
from learning.perceptron import ManhattanPerceptron

NETLISTS = Path(__file__).resolve().parents[1] / "netlists"
# chips of neuron groups and tiles (a .drn netlist is a resistive network: tests/test_drn_netlist.py)
EXAMPLES = [p for p in sorted(NETLISTS.glob("*.net")) if circuits.read_netlist(p).drn is None]
PATTERNS = np.array([[1, 1, 1, 0, 1, 0, 1, 1, 1],
                     [1, 0, 1, 1, 0, 1, 0, 1, 0],
                     [1, 1, 1, 1, 0, 1, 1, 0, 1]], dtype=float)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_load_read_pulse_and_record(path, tmp_path):
    from circuits.history import History
    chip = circuits.load(path, seed=3)
    writer = chip.record_to(tmp_path / "run.h5", record=50)
    for tile in chip.tiles:
        rows_group, cols_group = chip.tile_groups(tile)
        n_in = chip.groups[rows_group].size
        x = np.random.default_rng(0).random((2, n_in))
        y = chip.read(tile, x)
        assert y.shape == (2, chip.groups[cols_group].size) and np.all(np.isfinite(y))
        before = chip.measure_conductance(tile) if chip.tile_shape(tile)[0] <= 64 else None
        M, N = chip.tile_shape(tile)
        lo, hi = chip.pulse_limits
        width = hi if np.isfinite(hi) else max(lo, 1e-8)
        widths = np.zeros((M, N))
        widths[0, 0] = width          # one SET request and one RESET request: whatever the
        widths[-1, -1] = -width       # initial state, some device can move
        report = chip.pulse(tile, RowByRowWrite(widths))
        assert report.pulses.sum() >= 2
        if before is not None:
            assert not np.allclose(before, chip.measure_conductance(tile))
    writer.close()
    with History(tmp_path / "run.h5") as hist:
        assert set(hist.tiles) == set(chip.tiles)
        for tile in chip.tiles:
            assert hist.n_events(tile) >= 1 and hist.pulse_map(tile).sum() >= 2
        assert hist.provenance["seed"] == 3


def test_same_seed_same_chip():
    a = circuits.load(NETLISTS / "drbm_mnist.net", seed=5)
    b = circuits.load(NETLISTS / "drbm_mnist.net", seed=5)
    c = circuits.load(NETLISTS / "drbm_mnist.net", seed=6)
    x = np.random.default_rng(0).random((1, 794))
    np.testing.assert_array_equal(a.read("w", x), b.read("w", x))
    assert not np.array_equal(a.read("w", x), c.read("w", x))


def test_low_conductance_wired_chip_holds_the_ideal_chips_weights():
    """ep_p1h_wires_lowg.net: conductances / 10 and R_f x 10 give the same weights, k (G+ - G-) with k = R_f v_read."""
    low, ideal = circuits.load(NETLISTS / "ep_p1h_wires_lowg.net"), circuits.load(NETLISTS / "ep_p1h_ideal.net")
    g_low, g_ideal = low.state_dict()["arrays"], ideal.state_dict()["arrays"]
    for t in ideal.tiles:
        k_low, k_ideal = (c.groups[c.tile_groups(t)[1]].params.r_feedback * c.settings.v_read for c in (low, ideal))
        assert (k_low, k_ideal) == (pytest.approx(4e5), pytest.approx(4e4))
        w_low = k_low * (g_low[f"g/{t}"][:, 0::2] - g_low[f"g/{t}"][:, 1::2])
        np.testing.assert_allclose(w_low, k_ideal * (g_ideal[f"g/{t}"][:, 0::2] - g_ideal[f"g/{t}"][:, 1::2]),
                                   atol=1e-12)
        assert g_low[f"g/{t}"].mean() == pytest.approx(g_ideal[f"g/{t}"].mean() / 10)


def test_netlist_round_trip_gives_the_same_chip(tmp_path):
    for path in EXAMPLES:
        net = circuits.read_netlist(path)
        again = tmp_path / path.name
        net.write(again)
        assert circuits.read_netlist(again) == net
        a, b = circuits.load(path, seed=1), circuits.load(again, seed=1)
        for tile in a.tiles:
            x = np.random.default_rng(2).random((1, a.groups[a.tile_groups(tile)[0]].size))
            np.testing.assert_array_equal(a.read(tile, x), b.read(tile, x))


def test_size_mismatch_points_at_the_tile_card(tmp_path):
    text = (NETLISTS / "prezioso_perceptron.net").read_text()
    bad = tmp_path / "bad.net"
    import re
    bad.write_text(re.sub(r"(?m)^(X\S+ .*)$", r"\1 rows=12", text, count=1))
    with pytest.raises(NetlistError, match=r"bad\.net:\d+:1: .*12 rows"):
        circuits.load(bad)


def test_perceptron_from_netlist_trains_with_v2_pulses():
    chip = circuits.load(NETLISTS / "prezioso_perceptron.net", seed=0)
    (tile,) = chip.tiles
    width = chip.pulse_limits[1] / 50 if np.isfinite(chip.pulse_limits[1]) else 2e-8
    rule = ManhattanPerceptron(chip, tile, width=width)
    stats = rule.fit(PATTERNS, np.arange(3), epochs=80, rng=np.random.default_rng(0))
    assert stats[-1].errors == 0, [s.errors for s in stats]
    assert sum(s.disturbed for s in stats) == 0


@pytest.mark.spice
def test_sneak_path_netlist_read_matches_ngspice(ngspice):
    chip = circuits.load(NETLISTS / "passive_sneak.net", seed=0)
    (tile,) = chip.tiles
    rows_group, _ = chip.tile_groups(tile)
    x = np.random.default_rng(1).random((1, chip.groups[rows_group].size))
    deck = chip.to_spice(tile, x)
    op = run_ngspice(deck)
    i_ours, _ = chip._currents(tile, x, "forward")
    n = chip.tile_shape(tile)[1]
    # each column ends in its load resistor and a 0 V source that carries the column current
    i_spice = np.array([op.current(f"VC{j}") for j in range(n)])
    np.testing.assert_allclose(i_ours[0], i_spice[: i_ours.shape[1]], rtol=1e-9)


def test_perceptron_outer_product_write_leaves_half_selected_devices_bit_identical():
    chip = circuits.load(NETLISTS / "prezioso_perceptron.net", seed=1)
    t = chip._tiles["w"].tile                   # the test looks at the devices directly
    rows = np.array([1, 0, 1, 1, 0, 1, 0, 1, 0, 1])
    cols = np.array([1, -1, 0])
    g0 = t.g.copy()
    report = chip.pulse("w", OuterProductWrite(rows=rows, cols=cols, width=chip.pulse_limits[1] / 10))
    selected = np.outer(rows != 0, np.repeat(cols != 0, 2))
    assert np.array_equal(t.g[~selected], g0[~selected])          # half-selected: untouched
    assert np.all(t.g[selected] != g0[selected])                 # fully selected: all moved
    assert not report.disturbed.any() and report.pulses[selected].min() == 1
