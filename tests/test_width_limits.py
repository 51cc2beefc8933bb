"""The one-pass width-limits kernel against its numpy reference, and the policies that use it."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from learning.updates import Cst, PolicyError, Proportional
from learning.width_limits import NOT_FINITE, OK, OVER, limit_widths


def both(values, **kw):
    a = limit_widths(values, backend="numba", **kw)
    b = limit_widths(values, backend="numpy", **kw)
    return a, b


def assert_same(a, b):
    assert a[1:] == b[1:]
    if a[1] == OK:
        assert np.array_equal(a[0], b[0])
        assert np.array_equal(np.signbit(a[0]), np.signbit(b[0]))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sign_only=st.booleans(), cap=st.booleans(),
       quantum=st.sampled_from([None, 1e-9, 1e-6, 3e-7]), dt_min=st.sampled_from([0.0, 1e-9, 2e-6]),
       scale=st.sampled_from([1.0, 1e-3, 0.01, 2.5e-5]))
def test_kernel_equals_reference(seed, sign_only, cap, quantum, dt_min, scale):
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1e-3, (37, 11)) * rng.choice([0, 1, 1e3], (37, 11))
    hi = 1e-5 if quantum is None else np.floor(1e-5 / quantum * (1 + 1e-9)) * quantum
    # widths exactly at, within fuzz of, and just past the bounds
    values.flat[:4] = np.array([hi, hi * (1 + 5e-10), dt_min * (1 - 5e-10), -hi]) / scale
    a, b = both(values, scale=scale, sign_only=sign_only, quantum=quantum, max_width=hi, dt_min=dt_min, cap=cap)
    assert_same(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_flagged_by_both(bad):
    values = np.ones((3, 3))
    values[1, 2] = bad
    a, b = both(values, scale=1.0, sign_only=False, quantum=None, max_width=10.0, dt_min=0.0, cap=True)
    assert a[1] == b[1] == NOT_FINITE


def test_over_without_cap_is_flagged_and_capped_otherwise():
    values = np.array([[0.5, 2.0, -3.0]])
    a, b = both(values, scale=1.0, sign_only=False, quantum=None, max_width=1.0, dt_min=0.0, cap=False)
    assert a[1] == b[1] == OVER
    a, b = both(values, scale=1.0, sign_only=False, quantum=None, max_width=1.0, dt_min=0.0, cap=True)
    assert_same(a, b)
    assert a[0].tolist() == [[0.5, 1.0, -1.0]] and a[4] == 2


def test_policies_report_counters_and_errors_through_the_kernel():
    pol = Proportional(1.0, limits=(0.2, 1.0), quantum=0.1)
    w = pol.step(np.array([[0.0, 0.04, 0.26, -0.5, 7.0]]))
    # 0.04 rounds to 0 (dropped), 0.26 -> 0.3, 7 capped to 1
    assert np.allclose(w, [[0.0, 0.0, 0.3, -0.5, 1.0]])
    assert (pol.n_requested, pol.n_dropped, pol.n_capped) == (4, 1, 1)
    with pytest.raises(PolicyError, match="finite"):
        pol.step(np.array([[np.nan]]))
    cst = Cst(0.3, limits=(0.0, 1.0))
    assert np.array_equal(cst.step(np.array([[-2.0, 0.0, 5.0]])), [[-0.3, 0.0, 0.3]])
    assert cst.n_requested == 2
