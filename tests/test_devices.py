"""Physics, statistics and validation of the device models (crossbar/devices)."""
import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.integrate import solve_ivp

from crossbar.devices import (ExponentialArrays, ExponentialDevice, SoftBoundsDevice,
                              ThresholdDevice, UpdateStats)
from crossbar.errors import ParameterError

BACKENDS = ["numba", "numpy"]
P_TAIL = 1e-6   # two-sided tail probability behind every statistical tolerance below


def models(**common):
    """One instance per model family and non-linearity, incl. the thesis' beta = 0.005 and 3."""
    return [ExponentialDevice(beta_p=0.005, beta_d=0.005, **common),
            ExponentialDevice(beta_p=3.0, beta_d=0.005, **common),
            ExponentialDevice(beta_p=0.005, beta_d=3.0, **common),
            ExponentialDevice(beta_p=20.0, beta_d=1e-9, **common),
            ExponentialDevice(beta_p=0.0, beta_d=0.0, **common),
            ThresholdDevice(alpha_set=1.0, alpha_reset=3.0, **common),
            ThresholdDevice(alpha_set=2.5, alpha_reset=0.5, **common),
            SoftBoundsDevice(gamma=0.0, **common),
            SoftBoundsDevice(gamma=0.005, **common),
            SoftBoundsDevice(gamma=0.5, **common),
            SoftBoundsDevice(gamma=0.99, **common)]


def write_voltages(m):
    """(SET, RESET) voltages at which one dt_max pulse is a full swing."""
    if isinstance(m, ThresholdDevice):
        return m.v_write_set, m.v_write_reset
    return 1.3 * m.v_set, 1.3 * m.v_reset


MODELS = models()
IDS = [f"{type(m).__name__}-{m._shapes()}" for m in MODELS]


# ---- full swing: one pulse of dt_max ------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m", MODELS, ids=IDS)
def test_one_dt_max_pulse_is_a_full_swing(m, backend):
    v_set, v_reset = write_voltages(m)
    up = m.apply(np.array([m.g_min]), v_set, m.dt_max, backend=backend)
    down = m.apply(np.array([m.g_max]), v_reset, m.dt_max, backend=backend)
    np.testing.assert_allclose(up, m.g_max, rtol=1e-12)
    np.testing.assert_allclose(down, m.g_min, rtol=1e-11)
    np.testing.assert_allclose(m.closed_form(m.g_min, v_set, m.dt_max), m.g_max, rtol=1e-12)
    np.testing.assert_allclose(m.closed_form(m.g_max, v_reset, m.dt_max), m.g_min, rtol=1e-11)


def test_thesis_preset_and_rate_constant():
    m = ExponentialDevice.thesis(beta=3.0)
    assert (m.g_max, m.g_min, m.dt_max, m.beta_p, m.beta_d) == (1.0, 1 / 13, 1.0, 3.0, 3.0)
    c_p, c_d = m.nominal_rates()
    assert c_p == c_d == pytest.approx((12 / 13) * math.expm1(3.0) / 3.0, rel=1e-15)
    # beta -> 0: C tends to the linear rate dG_r / dt_max, without cancellation.
    lin = ExponentialDevice.thesis(beta=1e-12)
    assert lin.nominal_rates()[0] == pytest.approx(12 / 13, rel=1e-11)
    assert ExponentialDevice.thesis(eps_intra=0.006).eps_intra == 0.006


@pytest.mark.parametrize("beta, rtol", [(0.0, 1e-15), (1e-9, 1e-8)])
def test_exponential_linear_limit(beta, rtol):
    m = ExponentialDevice.thesis(beta=beta)
    g = np.linspace(0.1, 0.9, 7)
    np.testing.assert_allclose(m.closed_form(g, 1.5, 0.05), g + 0.05 * 12 / 13, rtol=rtol)
    np.testing.assert_allclose(m.closed_form(g, -1.5, 0.05), g - 0.05 * 12 / 13, rtol=rtol)


# ---- the closed form is the exact solution of the ODE --------------------------------
@pytest.mark.parametrize("m", MODELS, ids=IDS)
@pytest.mark.parametrize("direction", [+1, -1])
def test_closed_form_matches_ode_integration(m, direction):
    v = write_voltages(m)[0 if direction > 0 else 1] * 1.1
    g0 = m.g_min + 0.3 * m.dg_r if direction > 0 else m.g_max - 0.3 * m.dg_r
    dt = 0.4 * m.dt_max
    sol = solve_ivp(lambda t, y: m.dgdt(y, v), (0.0, dt), [g0], method="DOP853",
                    rtol=1e-12, atol=1e-14 * m.dg_r)
    g_ode = sol.y[0, -1]
    np.testing.assert_allclose(m.closed_form(g0, v, dt), g_ode, rtol=1e-10)
    assert (g_ode - g0) * direction > 0


@pytest.mark.parametrize("m", MODELS, ids=IDS)
def test_dgdt_matches_the_thesis_equations_and_is_zero_inside(m):
    g = np.linspace(m.g_min, m.g_max, 5)
    np.testing.assert_array_equal(m.dgdt(g, 0.99 * m.v_set), 0.0)
    np.testing.assert_array_equal(m.dgdt(g, m.v_reset), 0.0)
    if isinstance(m, ExponentialDevice):
        c_p, c_d = m.nominal_rates()
        np.testing.assert_allclose(m.dgdt(g, 2.0),
                                   c_p * np.exp(-m.beta_p * (g - m.g_min) / m.dg_r), rtol=1e-13)
        np.testing.assert_allclose(m.dgdt(g, -2.0),
                                   -c_d * np.exp(-m.beta_d * (m.g_max - g) / m.dg_r), rtol=1e-13)


# ---- semigroup: n pulses of dt/n equal one pulse of dt --------------------------------
@pytest.mark.parametrize("m", MODELS, ids=IDS)
@pytest.mark.parametrize("n", [2, 7, 50])
def test_n_short_pulses_equal_one_long(m, n):
    g0 = np.linspace(m.g_min + 0.2 * m.dg_r, m.g_max - 0.2 * m.dg_r, 5)
    for v in write_voltages(m):
        dt = 0.15 * m.dt_max
        g = g0.copy()
        for _ in range(n):
            g = m.closed_form(g, v, dt / n)
        np.testing.assert_allclose(g, m.closed_form(g0, v, dt), rtol=1e-12)
        np.testing.assert_allclose(g, m.apply(g0, v, dt), rtol=1e-12)


# ---- thresholds: exactly nothing inside, not even noise ------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m", models(eps_intra=0.05, eps_inter=0.5), ids=IDS)
def test_nothing_changes_inside_the_thresholds(m, backend):
    rng = np.random.default_rng(3)
    g = m.initial_conductance((40, 30), rng)
    arrays = m.sample(g.shape, rng)
    v = rng.uniform(m.v_reset, m.v_set, g.shape)
    v[0, :4] = [m.v_set, m.v_reset, 0.0, -0.0]     # exactly at a threshold: no change
    v[1] = 2 * m.v_set                              # supra-threshold but ...
    dt = np.full(g.shape, 0.1 * m.dt_max)
    dt[1] = 0.0                                     # ... a zero-width pulse
    v[2:4] = np.array(write_voltages(m))[:, None]   # only rows 2 (SET) and 3 (RESET) switch
    stats = UpdateStats()
    rng_before = np.random.default_rng(11)
    out = m.apply(g, v, dt, arrays, np.random.default_rng(11), backend=backend, stats=stats)
    quiet = np.ones(g.shape, bool)
    quiet[2:4] = False
    np.testing.assert_array_equal(out[quiet], g[quiet])
    assert stats.n_switched == 2 * g.shape[1]
    # The noise drawn is exactly one standard normal per switched device.
    noise_free = m.apply(g, v, dt, arrays, backend=backend)
    z = rng_before.standard_normal(stats.n_switched)
    inside = (out > m.g_min) & (out < m.g_max) & (noise_free > m.g_min) & (noise_free < m.g_max)
    moved = ~quiet & inside
    assert moved.sum() > 40
    np.testing.assert_allclose((out - noise_free)[moved],
                               (m.eps_intra * m.dg_r * z.reshape(2, -1))[moved[2:4]],
                               rtol=1e-9, atol=1e-12 * m.dg_r)


# ---- clamping is counted -------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m", MODELS[::2], ids=IDS[::2])
def test_clamping_is_counted(m, backend):
    g = np.full((10, 10), 0.5 * (m.g_min + m.g_max))
    stats = UpdateStats()
    v_set, v_reset = write_voltages(m)
    out = m.apply(g, v_set, 3 * m.dt_max, stats=stats, backend=backend)
    np.testing.assert_array_equal(out, m.g_max)
    assert (stats.n_switched, stats.n_clipped) == (100, 100)
    out = m.apply(out, v_reset, 0.01 * m.dt_max, stats=stats, backend=backend)
    assert (stats.n_switched, stats.n_clipped) == (200, 100)   # counters accumulate
    assert np.all(out < m.g_max)


def test_initial_conductance_midpoint_spread_and_counted_clip():
    m = ExponentialDevice(init_std=0.1)
    mid = 0.5 * (m.g_min + m.g_max)
    n = 100_000
    g = m.initial_conductance(n, np.random.default_rng(0))
    z = sps.norm.isf(P_TAIL / 2)
    assert abs(g.mean() - mid) < z * 0.1 * mid / math.sqrt(n)
    lo, hi = sps.chi2.ppf([P_TAIL / 2, 1 - P_TAIL / 2], n - 1)
    assert lo < (n - 1) * g.var(ddof=1) / (0.1 * mid) ** 2 < hi
    wide = dataclasses.replace(m, init_std=1.0)
    stats = UpdateStats()
    g = wide.initial_conductance((300, 300), np.random.default_rng(1), stats)
    assert g.min() == m.g_min and g.max() == m.g_max
    assert stats.n_clipped == np.count_nonzero((g == m.g_min) | (g == m.g_max)) > 0
    exact = dataclasses.replace(m, init_std=0.0).initial_conductance((3,), None)
    np.testing.assert_array_equal(exact, mid)


def test_initial_conductance_at_g_min_leaves_half_the_devices_reset():
    m = SoftBoundsDevice(gamma=0.0, g_min=1e-6, g_max=100e-6, init_mean=1e-6, init_std=0.3)
    stats = UpdateStats()
    n = 100_000
    g = m.initial_conductance(n, np.random.default_rng(3), stats)
    at_floor = np.count_nonzero(g == m.g_min)
    z = sps.norm.isf(P_TAIL / 2)
    assert abs(at_floor / n - 0.5) < z * 0.5 / math.sqrt(n)
    assert stats.n_clipped == at_floor + np.count_nonzero(g == m.g_max)
    # the rest is the upper half of N(g_min, (0.3 g_mid)^2): a half-normal of that scale
    sigma = 0.3 * 0.5 * (m.g_min + m.g_max)
    up = g[g > m.g_min] - m.g_min
    assert abs(up.mean() - sigma * math.sqrt(2 / math.pi)) < z * sigma / math.sqrt(up.size)


# ---- statistics of the variability ---------------------------------------------------
@pytest.mark.parametrize("m", models(eps_intra=0.02)[::2], ids=IDS[::2])
def test_cycle_to_cycle_noise_std(m):
    """(n-1) s^2 / sigma^2 is chi-square with n-1 dof for Gaussian noise."""
    n = 200_000
    g = np.full(n, 0.5 * (m.g_min + m.g_max))
    v = np.where(np.arange(n) % 2, *write_voltages(m))
    dt = 1e-3 * m.dt_max
    noise = m.apply(g, v, dt, rng=np.random.default_rng(5)) - m.apply(g, v, dt)
    sigma = m.eps_intra * m.dg_r
    lo, hi = sps.chi2.ppf([P_TAIL / 2, 1 - P_TAIL / 2], n - 1)
    assert lo < (n - 1) * noise.var(ddof=1) / sigma ** 2 < hi
    assert abs(noise.mean()) < sps.norm.isf(P_TAIL / 2) * sigma / math.sqrt(n)


@pytest.mark.parametrize("eps", [0.1, 1.0, 4.0])
@pytest.mark.parametrize("cls", [ExponentialDevice, ThresholdDevice, SoftBoundsDevice])
def test_device_to_device_spread_is_lognormal_with_mean_c_and_std_eps_c(cls, eps):
    m = cls(eps_inter=eps)
    n = 200_000
    arrays = m.sample((n,), np.random.default_rng(7))
    z = sps.norm.isf(P_TAIL / 2)
    lo, hi = sps.chi2.ppf([P_TAIL / 2, 1 - P_TAIL / 2], n - 1)
    s2 = math.log(1 + eps ** 2)          # variance of ln C
    for c, nominal in zip((arrays.rate_p, arrays.rate_d), m.nominal_rates()):
        # log-moments: ln C ~ N(ln(C/sqrt(1+eps^2)), ln(1+eps^2))
        log_c = np.log(c)
        mu = math.log(nominal / math.sqrt(1 + eps ** 2))
        assert abs(log_c.mean() - mu) < z * math.sqrt(s2 / n)
        assert lo < (n - 1) * log_c.var(ddof=1) / s2 < hi
        assert abs(sps.skew(log_c)) < z * math.sqrt(6 / n)
        # those log-moments give exactly mean C and std eps C ...
        assert math.exp(mu + s2 / 2) == pytest.approx(nominal, rel=1e-14)
        assert nominal * math.sqrt(math.expm1(s2)) == pytest.approx(eps * nominal, rel=1e-14)
        # ... and so does the sample, within its standard error (lognormal kurtosis)
        assert abs(c.mean() - nominal) < z * eps * nominal / math.sqrt(n)
        if eps <= 1:
            kurt = math.exp(4 * s2) + 2 * math.exp(3 * s2) + 3 * math.exp(2 * s2) - 3
            se_var = (eps * nominal) ** 2 * math.sqrt((kurt - 1) / n)
            assert abs(c.var() - (eps * nominal) ** 2) < z * se_var
    r = np.corrcoef(np.log(arrays.rate_p), np.log(arrays.rate_d))[0, 1]
    assert abs(r) < z / math.sqrt(n)     # C_p and C_d are independent


def test_shared_pair_spread_gives_both_devices_of_a_pair_the_same_rates():
    """eps_inter_pairs='shared' (the thesis' code): one draw per pair, so a Cst
    step up and a step down move the pair's weight by the same amount."""
    m = ExponentialDevice.thesis(beta=0.005)
    m = dataclasses.replace(m, eps_inter=1.0, eps_inter_pairs="shared")
    a = m.sample((50, 40), np.random.default_rng(3), pairs=True)
    np.testing.assert_array_equal(a.rate_p[:, 0::2], a.rate_p[:, 1::2])
    np.testing.assert_array_equal(a.rate_d[:, 0::2], a.rate_d[:, 1::2])
    assert not np.allclose(a.rate_p[:, 0::2], a.rate_d[:, 0::2])    # P and D still differ
    assert len(np.unique(a.rate_p)) == 50 * 20
    # the same model without pairs, or with independent draws, gives every device its own rates
    for b in (m.sample((50, 40), np.random.default_rng(3)),
              dataclasses.replace(m, eps_inter_pairs="independent").sample((50, 40), np.random.default_rng(3),
                                                                            pairs=True)):
        assert len(np.unique(b.rate_p)) == 50 * 40
    # pair symmetry: G+ up with C_p and G- down with C_d, then the reverse, restores the weight
    rng = np.random.default_rng(4)
    g = m.initial_conductance((50, 40), rng)
    w0 = g[:, 0::2] - g[:, 1::2]
    dt = 1e-3 * m.dt_max
    up = np.tile([2.0, -2.0], 20)[None, :] * np.ones((50, 1))
    g1 = m.apply(g, up, dt, a, rng)
    g2 = m.apply(g1, -up, dt, a, rng)
    step = (g1[:, 0::2] - g1[:, 1::2]) - w0
    back = (g2[:, 0::2] - g2[:, 1::2]) - (g1[:, 0::2] - g1[:, 1::2])
    np.testing.assert_allclose(back, -step, rtol=2e-3)
    with pytest.raises(ParameterError, match="eps_inter_pairs"):
        ExponentialDevice(eps_inter_pairs="both")


def test_exponential_arrays_names():
    m = ExponentialDevice(eps_inter=0.3)
    a = m.sample((2, 3), np.random.default_rng(0))
    assert isinstance(a, ExponentialArrays) and a.shape == (2, 3)
    assert a.c_p is a.rate_p and a.c_d is a.rate_d
    nominal = ExponentialDevice().sample((4,), None)
    np.testing.assert_array_equal(nominal.c_p, ExponentialDevice().nominal_rates()[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_result_other_seed_other_result(backend):
    m = SoftBoundsDevice(eps_intra=0.01, eps_inter=0.2)

    def run(seed):
        rng = np.random.default_rng(seed)
        arrays = m.sample((20, 20), rng)
        g = m.initial_conductance((20, 20), rng)
        v = rng.uniform(-2, 2, g.shape)
        for _ in range(3):
            g = m.apply(g, v, 0.01 * m.dt_max, arrays, rng, backend=backend)
        return g

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.any(run(1) == run(2))


# ---- validation ----------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, name", [
    (ExponentialDevice, dict(g_min=2e-4, g_max=1e-4), "g_max"),
    (ExponentialDevice, dict(g_min=1e-4, g_max=1e-4), "g_max"),
    (ExponentialDevice, dict(g_min=-1e-6), "g_min"),
    (ExponentialDevice, dict(dt_max=-1e-6), "dt_max"),
    (ExponentialDevice, dict(dt_max=0.0), "dt_max"),
    (ExponentialDevice, dict(v_set=0.0), "v_set"),
    (ExponentialDevice, dict(v_reset=0.5), "v_reset"),
    (ExponentialDevice, dict(beta_p=-0.1), "beta_p"),
    (ExponentialDevice, dict(beta_p=101.0), "beta_p"),
    (ExponentialDevice, dict(beta_d=math.nan), "beta_d"),
    (ExponentialDevice, dict(eps_intra=-0.1), "eps_intra"),
    (ExponentialDevice, dict(eps_inter=-1.0), "eps_inter"),
    (ExponentialDevice, dict(init_std=-0.1), "init_std"),
    (ExponentialDevice, dict(init_mean=0.0), "init_mean"),
    (SoftBoundsDevice, dict(g_min=1e-6, g_max=1e-4, init_mean=2e-4), "init_mean"),
    (SoftBoundsDevice, dict(gamma=1.0), "gamma"),
    (SoftBoundsDevice, dict(gamma=-0.1), "gamma"),
    (ThresholdDevice, dict(alpha_set=0.0), "alpha_set"),
    (ThresholdDevice, dict(v_write_set=0.9), "v_write_set"),
    (ThresholdDevice, dict(v_write_reset=-1.0), "v_write_reset"),
])
def test_out_of_range_parameter_is_named(cls, kwargs, name):
    with pytest.raises(ParameterError, match=rf"\b{name}\b.*allowed range"):
        cls(**kwargs)


def test_models_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ExponentialDevice().g_max = 1.0


@pytest.mark.parametrize("call, name", [
    (lambda m, g: m.apply(g, 1.5, -1e-9), "duration"),
    (lambda m, g: m.apply(g, 1.5, np.array([[1e-9, np.inf, 0]] * 2)), "duration"),
    (lambda m, g: m.apply(g, np.array([[1.5, np.nan, 0]] * 2), 1e-9), "v"),
    (lambda m, g: m.apply(g, np.array([[1.5, -np.inf, 0]] * 2), 1e-9), "v"),
    (lambda m, g: m.apply(g, np.ones(4), 1e-9), "v"),
    (lambda m, g: m.apply(g, 1.5, 1e-9, backend="cuda"), "backend"),
    (lambda m, g: m.apply(g, 1.5, 1e-9, m.sample((3, 2), None)), "arrays"),
    (lambda m, g: m.apply(g, 1.5, 1e-9, SoftBoundsDevice().sample((2, 3), None)), "arrays"),
    (lambda m, g: m.apply(g, 1.5, 1e-9, out=np.empty((3, 2))), "out"),
])
def test_bad_apply_arguments_raise(call, name):
    m = ExponentialDevice()
    g = np.full((2, 3), m.g_max / 2)
    with pytest.raises(ParameterError, match=rf"\b{name}\b"):
        call(m, g)
