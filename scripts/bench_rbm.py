"""Benchmark (issue #4): one DRBM training epoch on the chip against a plain-numpy software RBM.

Both train the thesis' 795-301 DRBM (784 pixels + 10 labels + bias, 300 hidden + bias) with
CD-1, one chain, mini-batches of 100 over 40,000 binarised MNIST images, and Cst sign
updates. The chip version goes through everything a rule would: stochastic neurons read
through the tile (ideal wires), the CD statistic, the policy, and a row-by-row V/2 pulse
schedule applied to 478,590 thesis exponential devices with their kernel. The software
version does the same arithmetic on a float weight matrix: sigmoid sampling by matrix
products and a sign update of fixed size, no devices. Same run, same machine.

    python scripts/bench_rbm.py [--batches N]
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
from learning.data import binarise, thesis_split
from learning.rbm import DRBM
from learning.updates import Cst

ROOT = Path(__file__).resolve().parents[1]


def software_epoch(x, y, batches, rng):
    """CD-1 with Cst sign updates on a float matrix: the plain-numpy baseline."""
    W = rng.normal(0, 0.1, (795, 301))
    step = 2 * (1 - 1 / 13) / 1000    # a pair's weight step at dt/dt_max = 1/1000, linear device

    def sample(p):
        return (rng.random(p.shape) < p).astype(float)
    for idx in batches:
        v0 = np.c_[x[idx], np.eye(10)[y[idx]], np.ones(len(idx))]
        h0 = np.c_[sample(1 / (1 + np.exp(-(v0 @ W[:, :300])))), np.ones(len(idx))]
        v1 = np.c_[sample(1 / (1 + np.exp(-(h0 @ W[:794].T)))), np.ones(len(idx))]
        h1 = np.c_[sample(1 / (1 + np.exp(-(v1 @ W[:, :300])))), np.ones(len(idx))]
        W += step * np.sign(v0.T @ h0 - v1.T @ h1)
    return W


def chip_epoch(x, y, batches, seed=0):
    chip = circuits.load(ROOT / "netlists" / "drbm_mnist.net", seed=seed)
    model = DRBM(chip, "w")
    policy = Cst(chip.pulse_limits[1], limits=chip.pulse_limits)
    model.train_batch(model.visible_vector(x[:100], y[:100]), policy)   # compile outside the timing
    t0 = time.perf_counter()
    for idx in batches:
        model.train_batch(model.visible_vector(x[idx], y[idx]), policy)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=400, help="mini-batches per epoch (thesis: 400)")
    args = ap.parse_args()
    split = thesis_split()
    x, y = binarise(split.train_images), split.train_labels
    rng = np.random.default_rng(0)
    batches = [b for b in np.array_split(rng.permutation(len(x)), len(x) // 100)][:args.batches]
    t_chip = chip_epoch(x, y, batches)
    t0 = time.perf_counter()
    software_epoch(x, y, batches, np.random.default_rng(1))
    t_soft = time.perf_counter() - t0
    scale = 400 / len(batches)
    text = ("## DRBM training epoch (`scripts/bench_rbm.py`)\n\n"
            f"795-301 DRBM, CD-1, 1 chain, mini-batch 100, Cst, ideal wires; {len(batches)} mini-batches timed"
            f"{'' if scale == 1 else f', scaled to the 400 of an epoch'}.\n\n"
            "| Version | Epoch time | Ratio to software |\n|---|---|---|\n"
            f"| chip (reads, stochastic neurons, V/2 row-by-row pulses on 478,590 devices) | {t_chip * scale:.1f} s "
            f"| {t_chip / t_soft:.2f}× |\n"
            f"| plain-numpy software RBM, same arithmetic | {t_soft * scale:.1f} s | 1 |\n")
    print(text)
    from benchmarks_md import replace_section
    replace_section("DRBM training epoch", text)


if __name__ == "__main__":
    main()
