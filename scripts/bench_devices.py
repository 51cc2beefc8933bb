"""Benchmark: numba device-update kernel against its numpy twin, in one run.

Setting: 10^6 exponential devices (thesis model, beta = 3) with device-to-device
rate arrays (eps_inter = 0.1) and cycle-to-cycle noise (eps_intra = 6e-3, the
thesis' typical value); random voltages of either sign beyond the thresholds,
so every device switches. Two timings per backend:

* kernel: the update kernel alone, on identical pre-drawn noise;
* apply: ``ExponentialDevice.apply``, including counting the switched devices
  and drawing their float64 standard normals from a fresh Generator.

Times are the best of ``repeats`` runs (the least disturbed by other load).
Peak extra memory is what tracemalloc sees numpy allocate during one ``apply``
(including the 8 bytes/device result); numba's own small per-chunk buffers
are not traced.

Usage: ``python scripts/bench_devices.py [n]`` prints a markdown table, one
row with numba on one thread and one with all of its threads.
"""
from __future__ import annotations

import sys
import time
import tracemalloc

import numba
import numpy as np

from crossbar.devices import ExponentialDevice, kernels, reference


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def bench_device_update(n: int = 10**6, repeats: int = 7, seed: int = 0,
                        threads: int | None = None) -> dict:
    """Time the numba kernel and its numpy twin on ``n`` devices.

    ``threads`` caps numba's threads for this call (default: all it has).

    Returns
    -------
    dict
        ``kernel_numba_s``, ``kernel_numpy_s``, ``kernel_speedup``,
        ``apply_numba_s``, ``apply_numpy_s``, ``apply_speedup``, ``noise_draw_s``
        (the float64 standard-normal draw alone), ``peak_mb_numba``,
        ``peak_mb_numpy``, ``max_rel_diff`` (between the two backends' results),
        plus ``n``, ``repeats``, ``threads`` and ``threading_layer``.
    """
    model = ExponentialDevice(eps_intra=6e-3, eps_inter=0.1)
    rng = np.random.default_rng(seed)
    arrays = model.sample((n,), rng)
    g = model.initial_conductance((n,), rng)
    v = rng.choice([-1.0, 1.0], n) * rng.uniform(1.1, 1.5, n)
    duration = model.dt_max / 100

    # Kernel-only inputs, prepared exactly as apply() prepares them.
    dt = np.array([duration])
    z = rng.standard_normal(n)
    sigma = model.eps_intra * model.dg_r
    args = (g, v, dt, arrays.rate_p, arrays.rate_d, z, sigma)
    constants = model.kernel_constants()
    outs = {}

    def kernel(engine):
        update = model.update_kernel(engine)
        out = outs.setdefault(engine.__name__, np.empty(n))
        return lambda: update(*args, out, *constants)

    def apply(backend):
        return lambda: model.apply(g, v, duration, arrays, np.random.default_rng(seed),
                                   backend=backend)

    all_threads = numba.get_num_threads()
    numba.set_num_threads(threads or all_threads)
    try:
        res = _measure(kernel, apply, n, repeats, seed)
    finally:
        numba.set_num_threads(all_threads)
    return res


def _measure(kernel, apply, n, repeats, seed) -> dict:
    apply("numba")()                                   # compile outside the timings
    res = {"n": n, "repeats": repeats, "threads": numba.get_num_threads()}
    res["kernel_numba_s"] = _best(kernel(kernels), repeats)
    res["kernel_numpy_s"] = _best(kernel(reference), repeats)
    res["apply_numba_s"] = _best(apply("numba"), repeats)
    res["apply_numpy_s"] = _best(apply("numpy"), repeats)
    res["noise_draw_s"] = _best(lambda: np.random.default_rng(seed).standard_normal(n), repeats)
    res["kernel_speedup"] = res["kernel_numpy_s"] / res["kernel_numba_s"]
    res["apply_speedup"] = res["apply_numpy_s"] / res["apply_numba_s"]
    res["peak_mb_numba"] = _peak_bytes(apply("numba")) / 2**20
    res["peak_mb_numpy"] = _peak_bytes(apply("numpy")) / 2**20
    a, b = apply("numba")(), apply("numpy")()
    res["max_rel_diff"] = float(np.max(np.abs(a - b) / np.abs(b)))
    res["threading_layer"] = numba.threading_layer()
    return res


HEADER = ("| devices | kernel numba (ms) | kernel numpy (ms) | kernel speed-up "
          "| apply numba (ms) | apply numpy (ms) | apply speed-up | noise draw (ms) "
          "| peak MB numba / numpy | threads |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def markdown_row(r: dict) -> str:
    """One row of :data:`HEADER` for a result of :func:`bench_device_update`."""
    ms = {k: 1e3 * r[k] for k in r if k.endswith("_s")}
    return (f"| {r['n']:.0e} | {ms['kernel_numba_s']:.1f} | {ms['kernel_numpy_s']:.1f} "
            f"| {r['kernel_speedup']:.1f}x | {ms['apply_numba_s']:.1f} | {ms['apply_numpy_s']:.1f} "
            f"| {r['apply_speedup']:.1f}x | {ms['noise_draw_s']:.1f} "
            f"| {r['peak_mb_numba']:.0f} / {r['peak_mb_numpy']:.0f} "
            f"| {r['threads']} ({r['threading_layer']}) |")


if __name__ == "__main__":
    n_devices = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10**6
    print(HEADER)
    for n_threads in sorted({1, numba.get_num_threads()}):
        print(markdown_row(bench_device_update(n_devices, threads=n_threads)), flush=True)
