"""Benchmark (issue #5): an EP P-1h epoch on the chip against plain-numpy software EP, and settling with wires.

1. Epoch time. Both train the thesis' P-1h network (784-512-10, sigmoid neurons, T = 30,
   K = 10, beta = 0.1, mini-batches of 20, 3,000 mini-batches per epoch of 60,000 images).
   The chip version (``netlists/ep_p1h_ideal.net``: ideal wires, ideal linear devices) goes
   through everything a rule would: tile reads in both directions in every settling step,
   op-amp stages and sigmoid circuits, the EP statistic, quantised proportional widths and
   a row-by-row V/2 pulse schedule applied to 815,670 devices. The software version
   (``learning.ep_software.SoftwareEP``) does the same arithmetic on float matrices.
2. Settling with wire resistance: the same network with 1 ohm wire segments
   (``netlists/ep_p1h_wires.net``): every read is a nodal solve of the tile. Time per sample
   of one free phase (T = 30), against the ~1 s per sample that SPICE-based EP took
   (Kendall et al. 2020, see shared/reference/anchors-learning.md §1).

    python scripts/bench_ep.py [--batches N] [--wire-samples N]
"""
from __future__ import annotations

import os

# Before numpy loads OpenBLAS, which reads this once: its idle threads then sleep at once
# instead of spinning for 2^28 cycles after each product, on the cores the numba kernels
# need between products (a DRBM mini-batch: 24-36 ms spinning, 14-17 ms not; BENCHMARKS.md).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse
import time
from pathlib import Path

import numpy as np

import circuits
from learning import ep_software as sw
from learning.data import load_mnist
from learning.ep import EPConfig, EquilibriumNetwork
from learning.updates import Proportional

ROOT = Path(__file__).resolve().parents[1]
CFG = EPConfig(T=30, K=10, beta=0.1)


def chip_time(x, y, batches):
    chip = circuits.load(ROOT / "netlists" / "ep_p1h_ideal.net")
    net = EquilibriumNetwork(chip)
    pol = {t: Proportional(s, limits=chip.pulse_limits, quantum=1e-6) for t, s in zip(chip.tiles, (0.01, 0.005))}
    net.train_batch(x[:20], y[:20], CFG, pol)            # compile outside the timing
    t0 = time.perf_counter()
    for idx in batches:
        net.train_batch(x[idx], y[idx], CFG, pol)
    return time.perf_counter() - t0


def software_time(x, y, batches):
    act = sw.Activation("sigmoid", 4.0, 0.5, -12.0, 12.0)
    net = sw.LayeredNet.glorot((784, 512, 10), (1, 1, 0), np.random.default_rng(0), [act, act])
    soft = sw.SoftwareEP(net, T=CFG.T, K=CFG.K, beta=CFG.beta, lrs=[0.08, 0.04])
    eye = np.eye(10)
    t0 = time.perf_counter()
    for idx in batches:
        soft.train_batch(x[idx], eye[y[idx]])
    return time.perf_counter() - t0


def wire_settle(x, n):
    chip = circuits.load(ROOT / "netlists" / "ep_p1h_wires.net")
    net = EquilibriumNetwork(chip)
    net.free_phase(x[:1], CFG)
    t0 = time.perf_counter()
    for i in range(n):
        net.free_phase(x[i:i + 1], CFG)
    one = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    net.free_phase(x[:20], CFG)
    batched = (time.perf_counter() - t0) / 20
    return one, batched


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=200, help="mini-batches timed (an epoch has 3,000)")
    ap.add_argument("--wire-samples", type=int, default=3, help="single samples settled with 1 ohm wires")
    args = ap.parse_args()
    x, y = load_mnist("train")
    rng = np.random.default_rng(0)
    batches = np.array_split(rng.permutation(len(x)), len(x) // 20)[:args.batches]
    t_chip = chip_time(x, y, batches)
    t_soft = software_time(x, y, batches)
    scale = 3000 / len(batches)
    one, batched = wire_settle(x, args.wire_samples)
    text = ("## EP training epoch (`scripts/bench_ep.py`)\n\n"
            f"P-1h: 784-512-10, sigmoid, T = 30, K = 10, beta = 0.1, mini-batch 20, quantised proportional "
            f"pulses, ideal wires; {len(batches)} mini-batches timed, scaled to the 3,000 of an epoch.\n\n"
            "| Version | Epoch time | Ratio to software |\n|---|---|---|\n"
            f"| chip (reads both ways at every step, neuron circuits, V/2 row-by-row pulses on 815,670 devices) "
            f"| {t_chip * scale:.0f} s | {t_chip / t_soft:.2f}× |\n"
            f"| plain-numpy software EP, same arithmetic | {t_soft * scale:.0f} s | 1 |\n\n"
            "Settling with 1 Ω wire segments (`netlists/ep_p1h_wires.net`, every read a nodal solve of "
            "the 785×1026 or 513×20 tile), one free phase of T = 30 steps:\n\n"
            "| | Time per sample |\n|---|---|\n"
            f"| one sample at a time | {one * 1e3:.0f} ms |\n"
            f"| 20 samples settled together | {batched * 1e3:.0f} ms |\n"
            "| SPICE-based EP (Kendall et al. 2020, worked out in anchors-learning.md §1) | ~1000 ms |\n")
    print(text)
    from benchmarks_md import replace_section
    replace_section("EP training epoch", text)


if __name__ == "__main__":
    main()
