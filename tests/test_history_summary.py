"""Per-event tile summaries: the numba kernel against its numpy twin, and against numpy."""
import numpy as np
import pytest

from circuits.history._summary import (SUMMARY_DTYPE, summarize_numba, summarize_numpy,
                                       summarize_rows)

IDX = np.empty(4096, dtype=np.int32)


def _both(x, lo, hi, nb):
    h1 = np.zeros(nb + 2, dtype=np.int64)
    h2 = np.zeros(nb + 2, dtype=np.int64)
    r1 = summarize_numba(x, lo, hi, h1, IDX)
    r2 = summarize_numpy(x, lo, hi, h2)
    return (np.array(r1, dtype=float), h1), (np.array(r2, dtype=float), h2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_numba_kernel_agrees_with_numpy_twin(seed, dtype):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n = int(rng.integers(1, 20000))
        nb = int(rng.integers(1, 100))
        lo = rng.uniform(0, 2e-5)
        hi = lo + rng.uniform(1e-7, 1e-4)
        x = rng.uniform(lo - 1e-5, hi + 1e-5, n)
        edges = np.linspace(lo, hi, nb + 1)
        x[rng.integers(0, n, 10)] = rng.choice(np.r_[edges, lo, hi], 10)   # on the edges
        if seed % 2:
            x = np.clip(x, lo, hi)                  # saturated devices at exactly lo / hi
        if seed % 3 == 0:
            x[rng.integers(0, n, 3)] = rng.choice([np.nan, np.inf, -np.inf], 3)
        (r1, h1), (r2, h2) = _both(x.astype(dtype), lo, hi, nb)
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_allclose(r1, r2, rtol=1e-10, equal_nan=True)


def test_histogram_matches_numpy_histogram_and_counts_what_is_outside():
    rng = np.random.default_rng(1)
    lo, hi, nb = 7.7e-6, 1e-4, 64
    x = rng.uniform(0, 1.2e-4, 50_000)
    h = np.zeros(nb + 2, dtype=np.int64)
    summarize_numba(x, lo, hi, h, IDX)
    inside = x[(x >= lo) & (x <= hi)]
    np.testing.assert_array_equal(h[1:-1], np.histogram(inside, nb, (lo, hi))[0])
    assert h[0] == np.count_nonzero(x < lo) and h[-1] == np.count_nonzero(x > hi)


def test_range_ends_are_inclusive_and_saturation_is_counted_not_clipped():
    lo, hi = 1e-6, 1e-4
    x = np.array([lo, hi, hi, np.nextafter(hi, 1), np.nextafter(lo, 0)])
    for r, h in _both(x, lo, hi, 8):
        assert h.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 2, 1]   # below, 8 bins, above
        assert r[2] == x.min() and r[3] == x.max()


def test_moments_keep_their_digits_far_from_zero():
    rng = np.random.default_rng(2)
    x = 1e-4 + 1e-12 * rng.standard_normal(100_000)     # spread 1e-8 of the mean
    (r, _), _ = _both(x, 0.0, 2e-4, 16)
    assert r[0] == pytest.approx(x.mean(), rel=1e-14)
    assert r[1] == pytest.approx(x.std(), rel=1e-6)


def test_nonfinite_values_are_counted_and_left_out():
    x = np.array([1.0, np.nan, 3.0, np.inf, -np.inf])
    for r, h in _both(x, 0.0, 4.0, 4):
        assert r[4] == 3
        assert r[0] == 2.0 and r[1] == 1.0 and r[2] == 1.0 and r[3] == 3.0
        assert h.sum() == 2
    for r, h in _both(np.array([np.nan, np.nan]), 0.0, 1.0, 4):
        assert np.isnan(r[:4]).all() and r[4] == 2 and h.sum() == 0


def test_summarize_rows_fills_one_row_per_event():
    rng = np.random.default_rng(3)
    block = rng.uniform(0, 1, (5, 1000)).astype(np.float32)
    hist = np.empty((5, 10), dtype=np.int32)
    summ = np.empty(5, dtype=SUMMARY_DTYPE)
    summarize_rows(block, 0.0, 1.0, hist, summ)
    hist2 = np.empty_like(hist)
    summ2 = np.empty_like(summ)
    summarize_rows(block, 0.0, 1.0, hist2, summ2, backend="numpy")
    np.testing.assert_array_equal(hist, hist2)
    assert (hist.sum(axis=1) == 1000).all()
    np.testing.assert_allclose(summ["mean"], block.astype(float).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(summ["std"], block.astype(float).std(axis=1), rtol=1e-9)
    np.testing.assert_array_equal(summ["max"], block.max(axis=1))
