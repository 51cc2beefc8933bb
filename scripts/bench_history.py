"""Benchmark: what recording conductance histories costs a training loop.

Setting: one 795 x 301 differential tile (physical shape 795 x 602, 478,590
devices, the size of a 784-input layer with bias and margin), every device
recorded at every event. The project's target: a Manhattan write of this tile in
<= 2 ms, and recording must add <= 30 % to it (<= ~0.6 ms per event).

The "write" here is a stand-in: a numpy Manhattan step (g += sign * dg, clipped
into [g_min, g_max]) repeated until it takes about 2 ms, so the numbers answer
"what does recording add to a 2 ms write" on this machine, whatever the real
device kernel costs today. Pulse and disturb maps are passed as a chip would
(int8 pulses, bool disturbs).

For each storage setting (float32 + lzf, float32 uncompressed, float64 + gzip,
summary-only = ``record=0``; background thread on, and float32 uncompressed
also with it off; then two settings that fit the budget: every 8th event, or
4096 random devices) it reports

* ``call_ms``: median time of one ``record()`` call, what the loop waits for;
* ``added_ms``: extra wall time per event of the loop (write + record, until the
  file is closed) over the same loop without recording, the honest cost;
* ``added_pct``: ``added_ms`` relative to the measured write;
* ``alone_ms``: per-event time of recording alone in a tight loop (close
  included), i.e. the sustained throughput of the writer;
* ``MB_event``: bytes stored per event.

``bench_trace_read`` writes a large history (``gb`` GB of float32, uncompressed)
and reads one device's trace, reporting time and peak traced memory.

Usage: ``python scripts/bench_history.py [events] [--repeats 3] [--read-gb 1.0]`` prints
markdown tables.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from circuits.history import History, HistoryWriter

G_MIN, G_MAX = 7.7e-6, 1e-4


class _ManhattanWrite:
    """A stand-in programming step of about ``target_ms`` on ``g`` (in place)."""

    def __init__(self, g, rng, target_ms=2.0, n_patterns=16):
        self.g = g
        # Manhattan steps: sign per device and event, ~0.5 % of the range with 5 %
        # cycle-to-cycle spread; a few patterns drawn once and cycled (no rng cost),
        # so every device moves at every event, as in a parallel write.
        dg = (G_MAX - G_MIN) / 200
        self.steps = [dg * rng.choice([-1.0, 1.0], size=g.shape) * (1 + 0.05 * rng.standard_normal(g.shape))
                      for _ in range(n_patterns)]
        self.k = 0
        self.pulses = np.ones(g.shape, dtype=np.int8)
        self.disturbed = rng.random(g.shape) < 0.5
        self.repeats = 1
        t = self._time()
        self.repeats = max(1, round(target_ms / 1e3 / t))
        self.ms = 1e3 * self._time()

    def _once(self):
        self.k += 1
        np.add(self.g, self.steps[self.k % len(self.steps)], out=self.g)
        np.clip(self.g, G_MIN, G_MAX, out=self.g)

    def __call__(self):
        for _ in range(self.repeats):
            self._once()

    def _time(self, n=30):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            self()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)


def _loop(write, events, rec=None):
    calls = []
    t0 = time.perf_counter()
    for e in range(events):
        write()
        if rec is not None:
            c0 = time.perf_counter()
            rec(e)
            calls.append(time.perf_counter() - c0)
    return time.perf_counter() - t0, calls


CONFIGS = [
    # label, writer options
    ("float32 + lzf", dict(dtype="float32", compression="lzf")),
    ("float32, no compression", dict(dtype="float32", compression=None)),
    ("float64 + gzip", dict(dtype="float64", compression="gzip")),
    ("summary only (record=0)", dict(dtype="float32", compression=None, record=0)),
    ("float32, no compression, no thread", dict(dtype="float32", compression=None, background=False)),
    # what fits the budget: fewer rows, or fewer devices (summaries still every event)
    ("float32, no compression, stride 8", dict(dtype="float32", compression=None, stride=8)),
    ("float32 + lzf, 4096 random devices", dict(dtype="float32", compression="lzf", record=4096,
                                                 rng=np.random.default_rng(0))),
]


def bench_record(shape=(795, 602), events: int = 200, seed: int = 0, configs=None,
                 with_counts: bool = True, repeats: int = 3, tmpdir=None) -> dict:
    """Cost of recording every device of a ``shape`` tile at every event.

    Each setting is run ``repeats`` times, each time right after a loop of the
    write alone (so slow drifts of a shared machine cancel); the median is kept.

    Returns
    -------
    dict
        ``write_ms`` (the stand-in write), ``devices``, ``events``, ``repeats`` and
        ``rows``: one dict per configuration with ``label``, ``call_ms``,
        ``call_p99_ms``, ``added_ms`` (median), ``added_min_ms``, ``added_max_ms``,
        ``added_pct``, ``added_pct_of_2ms``, ``alone_ms``, ``MB_event``, ``file_MB``.
    """
    rng = np.random.default_rng(seed)
    g = rng.uniform(G_MIN, G_MAX, size=shape)
    write = _ManhattanWrite(g, rng)
    out = {"write_ms": write.ms, "devices": g.size, "events": events, "repeats": repeats, "rows": []}
    kw = dict(pulses=write.pulses, disturbed=write.disturbed) if with_counts else {}
    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        for label, opts in (configs or CONFIGS):
            opts = dict(opts)
            opts.setdefault("record", "all")
            counter = iter(range(10**6))

            def run(do_write):
                # a fresh file each time: rewriting a truncated file makes ext4 flush it on close
                path = os.path.join(d, f"bench{next(counter)}.h5")
                h = HistoryWriter(path, {"W": shape}, hist_range=(G_MIN, G_MAX), flush_every=5.0, **opts)
                rec = (lambda e: h.record(e, "W", g, time=e * 1e-6, energy=1e-9, **kw))
                total, calls = _loop(write if do_write else (lambda: None), events, rec)
                t0 = time.perf_counter()
                h.close()
                size = os.path.getsize(path)
                os.remove(path)
                return total + time.perf_counter() - t0, calls, size

            added, calls = [], []
            for _ in range(repeats):
                if hasattr(os, "sync"):
                    os.sync()          # let the page cache drain: each run starts alike
                base, _ = _loop(write, events)
                total, c, size = run(True)
                added.append((total - base) / events)
                calls += c
            alone, _, _ = run(False)
            med = statistics.median(added)
            out["rows"].append({
                "label": label,
                "call_ms": 1e3 * statistics.median(calls),
                "call_p99_ms": 1e3 * float(np.percentile(calls, 99)),
                "added_ms": 1e3 * med,
                "added_min_ms": 1e3 * min(added),
                "added_max_ms": 1e3 * max(added),
                "added_pct": 100 * med / (write.ms / 1e3),
                "added_pct_of_2ms": 100 * med / 2e-3,
                "alone_ms": 1e3 * alone / events,
                "MB_event": size / events / 1e6,
                "file_MB": size / 1e6,
            })
    return out


def bench_trace_read(gb: float = 1.0, shape=(400, 400), tmpdir=None) -> dict:
    """Write a ``gb``-GB float32 history and read one device's trace.

    Returns ``file_GB``, ``events``, ``write_s``, ``read_ms``, ``peak_MB`` (traced by
    tracemalloc while reading) and ``rss_growth_MB`` (resident set size grown during
    the read, chunk cache and HDF5 buffers included).
    """
    n = shape[0] * shape[1]
    events = int(gb * 1e9 / (4 * n))
    rng = np.random.default_rng(1)
    g = rng.uniform(G_MIN, G_MAX, size=shape)
    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        path = os.path.join(d, "big.h5")
        t0 = time.perf_counter()
        with HistoryWriter(path, {"W": shape}, compression=None, hist_range=(G_MIN, G_MAX)) as h:
            for e in range(events):
                g[e % shape[0]] += 1e-8
                h.record(e, "W", g)
        write_s = time.perf_counter() - t0
        size = os.path.getsize(path)
        os.sync() if hasattr(os, "sync") else None
        with History(path) as r:
            rss0 = _rss_mb()
            tracemalloc.start()
            t0 = time.perf_counter()
            tr = r.trace("W", shape[0] // 2, shape[1] // 3)
            read = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rss1 = _rss_mb()
        assert tr.shape == (events,)
    return {"file_GB": size / 1e9, "events": events, "write_s": write_s, "read_ms": 1e3 * read,
            "peak_MB": peak / 2**20, "rss_growth_MB": rss1 - rss0}


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:      # pragma: no cover - not Linux
        return float("nan")


def markdown(res: dict) -> str:
    lines = [f"Tile {res['devices']:,} devices, {res['events']} events; stand-in Manhattan write "
             f"{res['write_ms']:.2f} ms/event; every device recorded at every event "
             f"(with pulse and disturb maps); median of {res['repeats']} runs (min-max).", "",
             "| setting | record() call (ms, median / p99) | added per event (ms) "
             "| added vs write | added vs 2 ms | recording alone (ms/event) | stored MB/event |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['label']} | {r['call_ms']:.2f} / {r['call_p99_ms']:.2f} "
                     f"| {r['added_ms']:.2f} ({r['added_min_ms']:.2f}-{r['added_max_ms']:.2f}) "
                     f"| {r['added_pct']:.0f} % | {r['added_pct_of_2ms']:.0f} % | {r['alone_ms']:.2f} "
                     f"| {r['MB_event']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("events", nargs="?", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--read-gb", type=float, default=1.0, help="size of the trace-read check (0: skip)")
    p.add_argument("--tmpdir", default=None)
    a = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}\n")
    print(markdown(bench_record(events=a.events, repeats=a.repeats, tmpdir=a.tmpdir)), flush=True)
    if a.read_gb > 0:
        r = bench_trace_read(a.read_gb, tmpdir=a.tmpdir)
        print(f"\n| history | events | write (s) | trace read (ms) | peak traced (MB) | RSS growth (MB) |\n"
              f"|---|---|---|---|---|---|\n"
              f"| {r['file_GB']:.2f} GB | {r['events']} | {r['write_s']:.1f} | {r['read_ms']:.0f} "
              f"| {r['peak_MB']:.2f} | {r['rss_growth_MB']:.1f} |")


if __name__ == "__main__":
    main()
