"""Benchmark of the crossbar circuit solver against ngspice and scipy, written to BENCHMARKS.md.

The benchmark circuit (issue #2): an M×M passive tile, G ~ U(1 µS, 100 µS),
1 ohm per wire segment, 10 ohm row drivers, columns sensed by ideal virtual
grounds at their ends, inputs ~ U(-0.2, 0.2) V. Every row of the table is
measured in its own fresh process (so its peak memory can be read from the
process' maximum resident set size), and every ratio compares two timings taken
in the same run of this script.

    python scripts/bench_solver.py            # full run, rewrites the solver section of BENCHMARKS.md
    python scripts/bench_solver.py --quick    # small sizes only, prints the table
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
R_SEGMENT, R_DRIVER, V_RANGE = 1.0, 10.0, 0.2


def benchmark_tile(M, seed=0):
    from crossbar.tile import Tile, Wires
    rng = np.random.default_rng(seed)
    tile = Tile(rng.uniform(1e-6, 1e-4, (M, M)),
                wires=Wires(r_row_segment=R_SEGMENT, r_col_segment=R_SEGMENT, r_row_driver=R_DRIVER))
    return tile, rng


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _warm_up(tile, v):
    """Compile the kernels outside the timings and memory readings."""
    tile.read_rows(v[:1, :], warm_start=False)


def _ours(tile, v, repeats):
    """Best time of a cold solve (no warm start) of the tile for drives v (K, M)."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        read = tile.read_rows(v, warm_start=False)
        best = min(best, time.perf_counter() - t0)
    return best, read


def nodal_matrix(tile, v):
    """The nodal system our solver works on, assembled as a scipy sparse matrix."""
    import scipy.sparse as sp
    from crossbar.solve import packed_line_conductances
    M, N = tile.g.shape
    row_g = np.full(M, 1.0 / (R_SEGMENT + R_DRIVER))
    col_g = np.full(N, 1.0 / R_SEGMENT)
    g_row, g_col = packed_line_conductances(np.full((M, N), R_SEGMENT), np.full((M, N), R_SEGMENT), row_g, col_g)
    n = M * N
    R = np.arange(n).reshape(M, N)
    C = n + R
    i, j, w = [], [], []

    def branch(a, b, g):
        i.extend([a, b, a, b]), j.extend([a, b, b, a]), w.extend([g, g, -g, -g])
    branch(R.ravel(), C.ravel(), tile.g.ravel())
    branch(R[:, :-1].ravel(), R[:, 1:].ravel(), g_row[:, 1:].ravel())
    branch(C[:-1].ravel(), C[1:].ravel(), g_col[:-1].ravel())
    i.extend([R[:, 0], C[-1]]), j.extend([R[:, 0], C[-1]]), w.extend([g_row[:, 0], g_col[-1]])
    A = sp.csc_matrix((np.concatenate(w), (np.concatenate(i), np.concatenate(j))), shape=(2 * n, 2 * n))
    b = np.zeros((2 * n, v.shape[0]))
    b[R[:, 0]] = (row_g[:, None] * v.T)
    return A, b


# ---------------------------------------------------------------- one measurement per process

def _timed_single_solve(M):
    """The benchmark tile, one input vector, our best cold-solve time and its memory growth."""
    tile, rng = benchmark_tile(M)
    v = rng.uniform(-V_RANGE, V_RANGE, (1, M))
    _warm_up(tile, v)
    base = _rss_mib()
    t_ours, read = _ours(tile, v, repeats=3)
    return tile, v, t_ours, read, _rss_mib() - base


def run_vs_spsolve(M):
    import scipy.sparse.linalg as sla
    tile, v, t_ours, read, mem_ours = _timed_single_solve(M)
    A, b = nodal_matrix(tile, v)
    base = _rss_mib()
    t0 = time.perf_counter()
    x = sla.spsolve(A, b[:, 0])
    t_ref = time.perf_counter() - t0
    mem_ref = _rss_mib() - base
    ours = np.concatenate([read.solution.v_row[0].ravel(), read.solution.v_col[0].ravel()])
    agree = float(np.abs(ours - x).max() / np.abs(x).max())
    return dict(case=f"{M}×{M} vs scipy spsolve", ours_s=t_ours, ref_s=t_ref, ratio=t_ref / t_ours,
                agreement=agree, ours_mib=mem_ours, ref_mib=mem_ref, iterations=read.solution.iterations)


def run_vs_ngspice(M):
    from circuits.spice import run_ngspice
    from circuits.tile_spice import tile_deck
    tile, v, t_ours, read, mem_ours = _timed_single_solve(M)
    deck = tile_deck(tile, np.full(M, 1.0 / R_DRIVER), v[0], np.full(M, np.inf), np.zeros(M))
    t0 = time.perf_counter()
    op = run_ngspice(deck, timeout=1800)
    t_ref = time.perf_counter() - t0
    mem_ref = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    sol = read.solution
    ours = np.array([sol.v_row[0, i, j] for i in range(M) for j in range(M)]
                    + [sol.v_col[0, i, j] for i in range(M) for j in range(M)])
    ref = np.array([op.voltage(f"r{i}_{j}") for i in range(M) for j in range(M)]
                   + [op.voltage(f"c{i}_{j}") for i in range(M) for j in range(M)])
    agree = float(np.abs(ours - ref).max() / np.abs(ref).max())
    return dict(case=f"{M}×{M} vs ngspice (whole run: write, simulate, read back)", ours_s=t_ours, ref_s=t_ref,
                ratio=t_ref / t_ours, agreement=agree, ours_mib=mem_ours, ref_mib=mem_ref,
                iterations=sol.iterations)


def run_large(M):
    tile, v, t_ours, read, mem_ours = _timed_single_solve(M)
    kcl = read.solution.kcl_residual()["relative"]
    return dict(case=f"{M}×{M}, one input vector", ours_s=t_ours, ref_s=None, ratio=None,
                agreement=kcl, ours_mib=mem_ours, ref_mib=None, iterations=read.solution.iterations,
                note="agreement column: relative KCL residual")


def run_batch(M, K):
    tile, rng = benchmark_tile(M)
    v = rng.uniform(-V_RANGE, V_RANGE, (K, M))
    _warm_up(tile, v)
    t_one, one = _ours(tile, v[:1], repeats=5)
    base = _rss_mib()
    t_all, read = _ours(tile, v, repeats=3)
    agree = float(np.abs(read.outputs[:1] - one.outputs).max() / np.abs(one.outputs).max())
    return dict(case=f"{M}×{M}, batch of {K} vs 1 input vector", ours_s=t_all, ref_s=t_one,
                ratio=t_all / t_one, agreement=agree, ours_mib=_rss_mib() - base, ref_mib=None,
                iterations=read.solution.iterations,
                note="ref column: time of one vector; ratio: batch time / single time")


def run_warm(M):
    """Warm start after a small programming change: 1% of devices moved by 1%."""
    tile, rng = benchmark_tile(M)
    v = rng.uniform(-V_RANGE, V_RANGE, (1, M))
    tile.read_rows(v, warm_start=False)
    idx = rng.choice(M * M, M * M // 100, replace=False)
    tile.g.ravel()[idx] *= 1.01
    t0 = time.perf_counter()
    warm = tile.read_rows(v, warm_start=True)
    t_warm = time.perf_counter() - t0
    t_cold, cold = _ours(tile, v, repeats=3)
    agree = float(np.abs(warm.outputs - cold.outputs).max() / np.abs(cold.outputs).max())
    return dict(case=f"{M}×{M}, warm start after changing 1% of devices by 1%", ours_s=t_warm, ref_s=t_cold,
                ratio=t_cold / t_warm, agreement=agree, ours_mib=None, ref_mib=None,
                iterations=f"{warm.solution.iterations} (cold {cold.solution.iterations})",
                note="ref column: cold solve of the same circuit")


def run_devices():
    """Device update: numba kernel against its numpy twin (scripts/bench_devices.py)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_devices import HEADER, bench_device_update, markdown_row
    r = bench_device_update()
    r["markdown"] = ("### Device update (10^6 exponential devices with noise and spread)\n\n"
                     + HEADER + "\n" + markdown_row(r))
    return r


def in_fresh_process(fn, *args):
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def fmt(x, unit=""):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if unit == "s":
        return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"
    if unit == "x":
        return f"{x:.0f}×" if x >= 10 else f"{x:.2f}×"
    if unit == "MiB":
        return f"{x:.0f} MiB"
    return f"{x:.1e}"


def table(rows):
    out = ["| Case | Ours | Reference | Ratio | Agreement | Ours peak mem | Ref peak mem | CG iterations |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['case']} | {fmt(r['ours_s'], 's')} | {fmt(r['ref_s'], 's')} | {fmt(r['ratio'], 'x')} | "
                   f"{fmt(r['agreement'])} | {fmt(r['ours_mib'], 'MiB')} | {fmt(r['ref_mib'], 'MiB')} | "
                   f"{r['iterations']} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes only; do not touch BENCHMARKS.md")
    args = ap.parse_args()
    plan = ([(run_vs_ngspice, 16), (run_vs_spsolve, 64), (run_large, 128), (run_batch, 64, 100), (run_warm, 64)]
            if args.quick else
            [(run_vs_ngspice, 64), (run_vs_ngspice, 128), (run_vs_spsolve, 256), (run_vs_spsolve, 512),
             (run_large, 1024), (run_batch, 256, 100), (run_warm, 512), (run_warm, 1024)])
    rows = []
    for fn, *a in plan:
        r = in_fresh_process(fn, *a)
        print(r, flush=True)
        rows.append(r)
    dev = None if args.quick else in_fresh_process(run_devices)
    text = table(rows)
    print(text)
    if dev:
        print(dev)
    if not args.quick:
        write_section(text, dev)


def write_section(text, dev):
    import numba
    import scipy
    path = ROOT / "BENCHMARKS.md"
    head = ("## Circuit solver (`scripts/bench_solver.py`)\n\n"
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} with {mp.cpu_count()} cores, "
            f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
            f"numba {numba.__version__}. Benchmark circuit: M×M passive tile, G ~ U(1 µS, 100 µS), "
            "1 Ω per wire segment, 10 Ω row drivers, columns at virtual ground, inputs ~ U(−0.2, 0.2) V. "
            "Times are the best of 3 cold solves for ours and one run for the reference; memory is the growth "
            "of the peak resident set of a fresh process (ngspice: the child process' peak). Agreement is the "
            "largest node-voltage difference relative to the largest node voltage.\n\n")
    body = head + text + "\n"
    if dev:
        body += "\n" + dev.get("markdown", str(dev)) + "\n"
    from benchmarks_md import replace_section
    replace_section("Circuit solver", body, path)


if __name__ == "__main__":
    main()
