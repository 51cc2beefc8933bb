"""Reading one trace from a large history reads only that device's chunks.

A ~256 MB float32 history (40,000 devices x 1,600 events) is written in a temp dir;
reading one device's trace must stay small in memory and fast. The GB-scale check
is ``python scripts/bench_history.py`` (``bench_trace_read``).
"""
import os
import time
import tracemalloc

import numpy as np

from circuits.history import History, HistoryWriter

SHAPE = (200, 200)
EVENTS = 1600


def _rss_bytes():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def test_trace_of_a_large_history_is_lazy(tmp_path):
    path = tmp_path / "big.h5"
    g = np.full(SHAPE, 5e-5)
    g += 1e-9 * np.arange(SHAPE[0] * SHAPE[1]).reshape(SHAPE)
    with HistoryWriter(path, {"W": SHAPE}, compression=None, hist_range=(0.0, 1e-4)) as h:
        for e in range(EVENTS):
            g[e % SHAPE[0], :] += 1e-8
            h.record(e, "W", g)
    size = os.path.getsize(path)
    assert size > 250e6
    with History(path) as r:
        rss0 = _rss_bytes()
        tracemalloc.start()
        t0 = time.perf_counter()
        tr = r.trace("W", 150, 123)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss_growth = _rss_bytes() - rss0
        assert tr.shape == (EVENTS,)
        assert peak < 1 << 20                      # the trace (6 kB) and small change
        assert rss_growth < 32 << 20               # no 256 MB array behind the scenes
        assert elapsed < 3.0
        expected = 5e-5 + 1e-9 * (150 * 200 + 123) + 1e-8 * np.array(
            [(e // SHAPE[0]) + (1 if e % SHAPE[0] >= 150 else 0) for e in range(EVENTS)])
        np.testing.assert_allclose(tr, expected, rtol=1e-6)
