"""Table of the 14x14 DRBM circuit-effect study (issue #4, beyond the thesis) from finished runs.

Each condition is one netlist, ``netlists/drbm14_<condition>.net``, trained by
``scripts/train.py`` into ``runs/drbm14_<condition>`` (seed 0) and
``runs/drbm14_<condition>_s<k>`` (seed k), e.g.

    python scripts/train.py netlists/drbm14_wires.net --out runs/drbm14_wires_s1 --seed 1 --epochs 2 \\
        --train 5000 --test 500 --eval-train 200 --eval-every 2 --eval-chains 10

This script reads their ``metrics.json`` and prints a markdown table: final test and
training error per seed, programming energy and programming time summed over the run
(from the chip's pulse reports), device pulses, and the wall time of the first epoch
(training only: the evaluation runs after the last epoch).

    python scripts/circuit_effects_table.py [--runs runs]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CONDITIONS = {
    "ideal": "ideal wires, passive, thresholds ±1 V, V/2",
    "wires": "1 Ω wire segments, passive (0T1R), V/2",
    "wires_1t1r": "1 Ω wire segments, 1T1R (1 kΩ on-resistance), V/2",
    "disturb": "ideal wires, thresholds ±0.7 V, V/2 (half-selected cells at 0.8 V)",
    "disturb_v3": "ideal wires, thresholds ±0.7 V, V/3 (partially selected cells at 0.53 V)",
}


def load(runs: Path, condition: str) -> list[dict]:
    out = []
    for d in sorted(runs.glob(f"drbm14_{condition}*")):
        suffix = d.name[len(f"drbm14_{condition}"):]
        if suffix not in ("",) and not (suffix.startswith("_s") and suffix[2:].isdigit()):
            continue                                  # e.g. drbm14_wires_1t1r when reading drbm14_wires
        f = d / "metrics.json"
        if f.exists():
            out.append(json.loads(f.read_text()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs")
    args = ap.parse_args()
    runs = Path(args.runs)
    print("| Condition | Test error per seed (%) | Mean | Training error (%) | Programming energy | "
          "Programming time | Device pulses | Wall time, epoch 1 |")
    print("|---|---|---|---|---|---|---|---|")
    for cond, text in CONDITIONS.items():
        ms = load(runs, cond)
        if not ms:
            continue
        test = [100 * m["test_error"][-1] for m in ms]
        train = [100 * m["train_error"][-1] for m in ms]
        energy = np.mean([sum(m["energy_J"]) for m in ms])
        ptime = np.mean([sum(m["programming_time_s"]) for m in ms])
        pulses = np.mean([sum(m["pulses"]) for m in ms])
        wall = np.mean([m["seconds"][0] for m in ms])
        print(f"| {text} (`{cond}`) | {', '.join(f'{t:.1f}' for t in test)} | {np.mean(test):.1f} | "
              f"{', '.join(f'{t:.1f}' for t in train)} | {energy * 1e6:.0f} µJ | {ptime * 1e3:.2f} ms | "
              f"{pulses / 1e6:.2f} M | {wall:.0f} s |")


if __name__ == "__main__":
    main()
