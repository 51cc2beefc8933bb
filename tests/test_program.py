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
