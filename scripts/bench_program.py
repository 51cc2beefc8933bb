"""Benchmark of programming (issue #3), written to BENCHMARKS.md.

1. A Manhattan outer-product write of a 795×301 differential tile (the DRBM's
   visible-hidden tile, 478,590 devices) with ideal wires: time per write, and the
   extra cost of recording every device of the tile in the HDF5 history at every write.
2. A row-by-row write (one width per column, 2 M phases) of a 256×256 tile with
   1 ohm wire segments: time per write with our solver, against the same writes
   with every circuit solve done by scipy's spsolve on the same nodal system
   (measured on a few phases and scaled to the full write, as each phase is one solve).

    python scripts/bench_program.py [--quick]
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from crossbar.devices import ExponentialDevice
from crossbar.program import program
from crossbar.schedules import OuterProductWrite, RowByRowWrite
from crossbar.tile import Tile, Wires



def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def manhattan_write(M=795, N=301, repeats=20, record=True):
    dev = ExponentialDevice(eps_intra=6e-3, eps_inter=0.1)
    rng = np.random.default_rng(0)
    tile = Tile(dev.initial_conductance((M, 2 * N), rng), pairs=True)
    arrays = dev.sample((M, 2 * N), rng)
    rows = rng.choice([-1, 0, 1], M)
    cols = rng.choice([-1, 1], N)
    sched = OuterProductWrite(rows, cols, width=dev.dt_max / 1000)
    program(tile, dev, arrays, sched, v_write=1.6, rng=rng)          # compile
    t_write, med_write = best(lambda: program(tile, dev, arrays, sched, v_write=1.6, rng=rng), repeats)
    # the device kernel alone on the same devices (what the write cannot go below)
    P = np.sign(np.outer(rows, np.repeat(cols, 2) * np.tile([1, -1], N))) * sched.width
    v = np.sign(P) * 1.6
    t_dev, _ = best(lambda: dev.apply(tile.g, v, np.abs(P), arrays, rng), repeats)
    res = dict(devices=M * 2 * N, write_s=t_write, write_median_s=med_write, device_update_s=t_dev)
    if record:
        res.update(record_overhead(tile, dev, arrays, sched, rng, repeats))
    return res


def record_overhead(tile, dev, arrays, sched, rng, repeats):
    from circuits.history import HistoryWriter
    out = {}
    for label, kw in (("float32+lzf", dict(dtype="float32", compression="lzf")),
                      ("float32 uncompressed", dict(dtype="float32", compression=None))):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.h5"
            with HistoryWriter(path, {"W": tile.g.shape}, record="all", **kw) as hist:
                n = [0]

                def write_and_record():
                    rep = program(tile, dev, arrays, sched, v_write=1.6, rng=rng)
                    n[0] += 1
                    hist.record(n[0], "W", tile.g, pulses=rep.pulses, disturbed=rep.disturbed)
                write_and_record()
                t, _ = best(write_and_record, repeats)
            out[f"write+record {label}_s"] = t
    return out


def row_by_row_with_wires(M=256, phases_for_spsolve=6):
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla
    from crossbar import program as prog
    from crossbar.solve import packed_line_conductances
    dev = ExponentialDevice()
    rng = np.random.default_rng(1)
    wires = Wires(r_row_segment=1.0, r_col_segment=1.0, r_row_driver=10.0, r_col_driver=10.0)
    tile = Tile(dev.initial_conductance((M, M), rng), wires=wires)
    widths = rng.choice([-1, 1], (M, M)) * rng.choice([1e-9, 2e-9, 5e-9], (M, M))
    t0 = time.perf_counter()
    rep = program(tile, dev, None, RowByRowWrite(widths), v_write=1.6)
    t_ours = time.perf_counter() - t0
    # the same kind of step with scipy: assemble the nodal matrix of one phase and spsolve it
    g_row, g_col = packed_line_conductances(np.full((M, M), 1.0), np.full((M, M), 1.0),
                                            np.full(M, 1 / 11.0), np.full(M, 1 / 11.0))
    n = M * M
    R = np.arange(n).reshape(M, M)
    C = n + R

    def assemble():
        i, j, w = [], [], []
        for a, b, g in ((R.ravel(), C.ravel(), tile.g.ravel()),
                        (R[:, :-1].ravel(), R[:, 1:].ravel(), g_row[:, 1:].ravel()),
                        (C[:-1].ravel(), C[1:].ravel(), g_col[:-1].ravel())):
            i.extend([a, b, a, b]), j.extend([a, b, b, a]), w.extend([g, g, -g, -g])
        i.extend([R[:, 0], C[-1]]), j.extend([R[:, 0], C[-1]]), w.extend([g_row[:, 0], g_col[-1]])
        return sp.csc_matrix((np.concatenate(w), (np.concatenate(i), np.concatenate(j))), shape=(2 * n, 2 * n))
    b = np.zeros(2 * n)
    b[R[:, 0]] = 0.8 / 11.0
    t0 = time.perf_counter()
    for _ in range(phases_for_spsolve):
        sla.spsolve(assemble(), b)
    t_step = (time.perf_counter() - t0) / phases_for_spsolve
    t_scipy = t_step * rep.n_solves
    return dict(size=M, phases=rep.n_phases, solves=rep.n_solves, ours_s=t_ours, spsolve_step_s=t_step,
                spsolve_estimate_s=t_scipy, ratio=t_scipy / t_ours, energy_J=rep.energy)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    a = manhattan_write(repeats=5 if args.quick else 20)
    print(a)
    b = row_by_row_with_wires(M=64 if args.quick else 256)
    print(b)
    lines = ["## Programming (`scripts/bench_program.py`)", "",
             f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, 2 cores. Best of repeated runs.", "",
             "| Case | Time | Baseline (same run) | Ratio / overhead |", "|---|---|---|---|",
             f"| Manhattan outer-product write, 795×301 differential ({a['devices']} devices), ideal wires "
             f"| {a['write_s'] * 1e3:.1f} ms (median {a['write_median_s'] * 1e3:.1f}) "
             f"| device kernel alone {a['device_update_s'] * 1e3:.1f} ms | target ≤ 2 ms |"]
    for k, v in a.items():
        if k.startswith("write+record"):
            label = k[len("write+record "):-2]
            lines.append(f"| same write + recording every device ({label}) | {v * 1e3:.1f} ms "
                         f"| write alone {a['write_s'] * 1e3:.1f} ms | +{(v / a['write_s'] - 1) * 100:.0f}% "
                         "(target ≤ +30%) |")
    lines.append(f"| row-by-row write, {b['size']}×{b['size']}, 1 Ω segments, {b['phases']} phases, "
                 f"{b['solves']} circuit solves | {b['ours_s']:.2f} s | spsolve: {b['spsolve_step_s'] * 1e3:.0f} ms "
                 f"per solve → {b['spsolve_estimate_s']:.0f} s | {b['ratio']:.0f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        from benchmarks_md import replace_section
        replace_section("Programming", text)


if __name__ == "__main__":
    main()
