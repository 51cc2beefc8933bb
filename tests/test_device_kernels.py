"""The numba kernels against their numpy twins, and properties of the update."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.devices import (ExponentialDevice, SoftBoundsDevice, ThresholdDevice,
                              UpdateStats, kernels, reference)

MODELS = [ExponentialDevice(beta_p=3.0, beta_d=0.005),
          ExponentialDevice.thesis(beta=3.0),
          ThresholdDevice(alpha_set=1.0, alpha_reset=2.5),
          SoftBoundsDevice(gamma=0.0),
          SoftBoundsDevice(gamma=0.7)]
IDS = ["exp", "exp-thesis", "threshold", "linear", "softbounds"]
RTOL = 1e-12


def with_variability(m, eps_intra=0.02, eps_inter=0.5):
    return dataclasses.replace(m, eps_intra=eps_intra, eps_inter=eps_inter)


def mixed_pulse(m, shape, rng):
    """Voltages of both signs, inside and beyond the thresholds; some zero widths."""
    v = rng.uniform(2.5 * m.v_reset, 2.5 * m.v_set, shape)
    dt = rng.uniform(0, 0.5 * m.dt_max, shape)
    dt[rng.random(shape) < 0.1] = 0.0
    return v, dt


def both_backends(m, g, v, dt, arrays, seed):
    """(out, stats) of each backend, each with a Generator seeded alike."""
    res = []
    for backend in ("numba", "numpy"):
        stats = UpdateStats()
        rng = None if seed is None else np.random.default_rng(seed)
        res.append((m.apply(g, v, dt, arrays, rng, backend=backend, stats=stats), stats))
    return res


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m", MODELS, ids=IDS)
def test_kernel_equals_numpy_twin_with_noise_and_spread(m, seed):
    m = with_variability(m)
    rng = np.random.default_rng(seed)
    shape = (37, 53)        # not a multiple of the chunking
    arrays = m.sample(shape, rng)
    g = m.initial_conductance(shape, rng)
    g_before = g.copy()
    v, dt = mixed_pulse(m, shape, rng)
    (a, sa), (b, sb) = both_backends(m, g, v, dt, arrays, seed + 100)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    assert sa == sb and 0 < sa.n_switched < g.size
    np.testing.assert_array_equal(g, g_before)          # input untouched
    # and with large swings, so that some devices clamp
    (a, sa), (b, sb) = both_backends(m, g, 3 * v, 4 * dt, arrays, seed)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    assert sa == sb and sa.n_clipped > 0


@pytest.mark.parametrize("m", MODELS, ids=IDS)
def test_scalar_pulse_no_noise_and_in_place(m):
    rng = np.random.default_rng(4)
    g = m.initial_conductance((300,), rng)
    for v in (1.5 * m.v_set, 1.5 * m.v_reset, 0.5 * m.v_set):
        (a, sa), (b, sb) = both_backends(m, g, v, 0.2 * m.dt_max, None, None)
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
        assert sa == sb
        # noise-free, nominal apply = clamped closed form
        np.testing.assert_allclose(a, np.clip(m.closed_form(g, v, 0.2 * m.dt_max),
                                              m.g_min, m.g_max), rtol=RTOL)
    out = g.copy()
    res = m.apply(out, 1.5 * m.v_set, 0.1 * m.dt_max, out=out)
    assert res is out
    np.testing.assert_allclose(out, m.apply(g, 1.5 * m.v_set, 0.1 * m.dt_max), rtol=RTOL)


@pytest.mark.parametrize("engine", [kernels, reference])
def test_count_switched(engine):
    v = np.array([1.0, 1.0001, -1.0, -1.5, 0.3, 2.0])
    dt = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    assert engine.count_switched(6, v, dt, 1.0, -1.0) == 2
    assert engine.count_switched(6, np.array([1.2]), np.array([1e-9]), 1.0, -1.0) == 6


def test_empty_array():
    m = MODELS[0]
    assert m.apply(np.empty((0, 3)), 1.5, 1e-9).shape == (0, 3)


# ---- properties ---------------------------------------------------------------------
conductance_fraction = st.floats(0.0, 1.0)
voltage = st.floats(-4.0, 4.0)
width = st.floats(0.0, 5.0)          # in units of dt_max


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.lists(st.tuples(conductance_fraction, voltage, width),
                                         min_size=1, max_size=30),
       st.integers(0, 2**32 - 1))
def test_conductance_stays_in_bounds_and_backends_agree(m, cells, seed):
    m = with_variability(m, eps_intra=0.05, eps_inter=1.0)
    x, v, w = map(np.array, zip(*cells))
    g = m.g_min + x * m.dg_r
    arrays = m.sample(g.shape, np.random.default_rng(seed))
    (a, sa), (b, sb) = both_backends(m, g, v, w * m.dt_max, arrays, seed)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    assert sa == sb
    assert np.all((a >= m.g_min) & (a <= m.g_max))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), conductance_fraction, st.floats(0.0, 4.0),
       st.floats(0.0, 2.0), st.floats(0.0, 2.0))
def test_monotone_in_duration(m, x, overdrive, w1, w2):
    """A longer pulse moves a device at least as far, in the pulse's direction."""
    g = m.g_min + x * m.dg_r
    w1, w2 = sorted((w1, w2))
    for v, sign in ((m.v_set * (1 + overdrive), 1), (m.v_reset * (1 + overdrive), -1)):
        g1, g2 = (m.apply(np.array([g]), v, w * m.dt_max)[0] for w in (w1, w2))
        assert sign * (g2 - g1) >= 0
        assert sign * (g1 - g) >= 0
