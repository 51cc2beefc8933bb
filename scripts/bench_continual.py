"""Benchmark (issue #5): a C-EP / C-VF mini-batch on the chip, in low-rank software and step-by-step software.

The thesis' C-EP-1h and C-VF-1h (784-512-10, sigmoid, T = 40, K = 15, beta = 0.2 with a random
sign, mini-batches of 20) move the weights at every one of the K nudged steps:

- chip: ``train.py --continual`` on ``netlists/ep_p1h_ideal.net`` (C-EP) and
  ``netlists/cvf_p1h_ideal.net`` (C-VF, untied tiles): a V/2 row-by-row pulse schedule on
  every tile at every nudged step;
- software, step by step (``SoftwareEP(..., lowrank=False)``, the reference): K updates of
  every weight matrix per mini-batch;
- software, low-rank (``learning/ep_lowrank.py``, the default): the moves are kept as thin
  factors and written once; equal to the reference to 1e-12 (tests/test_ep_continual_software.py).

Plain (non-continual) EP with the same T and K is timed as the floor.

    python scripts/bench_continual.py [--batches N]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")      # as in bench_ep.py

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
T, K, BETA = 40, 15, 0.2


def chip_time(x, y, batches, netlist, rule, scales):
    chip = circuits.load(ROOT / "netlists" / netlist)
    net = EquilibriumNetwork(chip)
    cfg = EPConfig(T=T, K=K, beta=BETA, estimator="random", rule=rule, continual=True)
    pol = {t: Proportional(s, limits=chip.pulse_limits, quantum=1e-6) for t, s in zip(chip.tiles, scales)}
    rng = np.random.default_rng(0)
    net.train_batch(x[:20], y[:20], cfg, pol, rng)         # compile outside the timing
    t0 = time.perf_counter()
    for idx in batches:
        net.train_batch(x[idx], y[idx], cfg, pol, rng)
    return (time.perf_counter() - t0) / len(batches)


def software_time(x, y, batches, *, continual, rule="ep", angle=None, lowrank=True, lrs=(0.0056, 0.0028)):
    act = sw.Activation("sigmoid", 4.0, 0.5)
    net = sw.LayeredNet.glorot((784, 512, 10), (1, 1, 0), np.random.default_rng(0), [act, act])
    if angle is not None:
        net.untie(angle, np.random.default_rng(1))
    soft = sw.SoftwareEP(net, T=T, K=K, beta=BETA, lrs=lrs, estimator="random", continual=continual, rule=rule,
                         lowrank=lowrank)
    eye = np.eye(10)
    t0 = time.perf_counter()
    for idx in batches:
        soft.train_batch(x[idx], eye[y[idx]])
    return (time.perf_counter() - t0) / len(batches)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=40, help="mini-batches timed per version (an epoch has 3,000)")
    args = ap.parse_args()
    x, y = load_mnist("train")
    batches = np.array_split(np.random.default_rng(0).permutation(len(x)), len(x) // 20)[:args.batches]
    rows = []
    for name, rule, angle, netlist, scales, lrs in (
            ("C-EP-1h", "ep", None, "ep_p1h_ideal.net", (7e-4, 3.5e-4), (0.0056, 0.0028)),
            ("C-VF-1h at 45°", "vf", 45.0, "cvf_p1h_ideal.net", (9.5e-4, 4.75e-4, 4.75e-4), (0.0076, 0.0038))):
        fast = software_time(x, y, batches, continual=True, rule=rule, angle=angle, lrs=lrs)
        ref = software_time(x, y, batches, continual=True, rule=rule, angle=angle, lowrank=False, lrs=lrs)
        chip = chip_time(x, y, batches, netlist, rule, scales)
        rows.append((name, chip, ref, fast))
    plain = software_time(x, y, batches, continual=False)
    ms = lambda t: f"{t * 1e3:.0f} ms ({t * 3000 / 60:.1f} min/epoch)"   # noqa: E731
    text = ("## Continual EP mini-batch (`scripts/bench_continual.py`)\n\n"
            f"784-512-10, sigmoid, T = {T}, K = {K}, beta = {BETA} (random sign), mini-batch 20, weights moved at "
            f"every nudged step; {len(batches)} mini-batches timed per version, "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}.\n\n"
            "| Net | Chip (pulses at every step) | Software, step by step | Software, low-rank | "
            "Chip / low-rank | Step by step / low-rank |\n|---|---|---|---|---|---|\n")
    for name, chip, ref, fast in rows:
        text += f"| {name} | {ms(chip)} | {ms(ref)} | {ms(fast)} | {chip / fast:.1f}× | {ref / fast:.1f}× |\n"
    text += f"\nPlain EP, same T and K, software: {ms(plain)}.\n"
    print(text)
    from benchmarks_md import replace_section
    replace_section("Continual EP mini-batch", text)


if __name__ == "__main__":
    main()
