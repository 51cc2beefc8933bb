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
          ExponentialDevice(beta_p=0.0, beta_d=2.0),
          ThresholdDevice(alpha_set=1.0, alpha_reset=2.5),
          SoftBoundsDevice(gamma=0.0),
          SoftBoundsDevice(gamma=0.7)]
IDS = ["exp", "exp-thesis", "exp-linear-set", "threshold", "linear", "softbounds"]
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


@pytest.mark.parametrize("seed", [0, 1])
def test_split_exponential_kernel_equals_fused_kernel_and_reference(seed):
    """The exponential model's numba path (numpy's exp/log1p between two numba passes)
    does the reference's arithmetic, so it equals it to the bit; the fused kernel (libm's
    exp/log1p) equals both to rounding. Both with noise, spread and clamping."""
    m = with_variability(ExponentialDevice(beta_p=3.0, beta_d=0.7))
    assert m.update_kernel(kernels) is kernels.exponential_update
    rng = np.random.default_rng(seed)
    shape = (61, 29)
    arrays = m.sample(shape, rng)
    g = m.initial_conductance(shape, rng)
    v, dt = mixed_pulse(m, shape, rng)
    dt *= 3
    n = g.size
    z = rng.standard_normal(reference.count_switched(n, v.ravel(), dt.ravel(), m.v_set, m.v_reset))
    args = (g.ravel(), v.ravel(), dt.ravel(), arrays.rate_p.ravel(), arrays.rate_d.ravel(), z,
            m.eps_intra * m.dg_r)
    outs = {}
    for name, update in [("split", kernels.exponential_update),
                         ("fused", kernels.update_kernel(ExponentialDevice._step)),
                         ("reference", reference.update_kernel(ExponentialDevice._step))]:
        outs[name] = np.empty(n)
        outs[name + " counts"] = update(*args, outs[name], *m.kernel_constants())
    np.testing.assert_array_equal(outs["split"], outs["reference"])
    np.testing.assert_allclose(outs["fused"], outs["reference"], rtol=RTOL, atol=0)
    assert outs["split counts"] == outs["fused counts"] == outs["reference counts"]
    assert outs["split counts"][1] > 0                  # some devices clamped


def test_exponential_with_a_zero_beta_uses_the_fused_kernel():
    with pytest.raises(ValueError, match="beta_p > 0"):
        kernels.exponential_update(*[np.ones(3)] * 6, 0.0, np.empty(3), 0.1, 1.0, 1.0, -1.0,
                                   0.0, 2.0, 1.0)
    m = ExponentialDevice(beta_p=0.0, beta_d=2.0)
    assert m.update_kernel(kernels) is not kernels.exponential_update
    assert ExponentialDevice(beta_p=3.0, beta_d=3.0).update_kernel(reference) is not \
        kernels.exponential_update


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
