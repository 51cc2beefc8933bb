"""Overlay the test-error curves of several runs (their ``metrics.json``) in one PNG.

    python scripts/plot_trials.py results/cep_software results/cep_software_s1 results/cep_software_s2 \
        --labels "seed 0" "seed 1" "seed 2" --reference 2.28 --title "C-EP-1h, software" \
        -o results/cep_software_curves.png

Each ``metrics.json`` holds ``epoch`` and ``test_error`` lists (as written by
``scripts/software_ep.py`` and ``scripts/train.py``). ``--reference`` draws a
horizontal line, e.g. the thesis' mean, in percent.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def read_curve(run: Path):
    """(epochs, test error in %) of one run directory or metrics file."""
    path = run / "metrics.json" if run.is_dir() else run
    m = json.loads(path.read_text())
    return np.asarray(m["epoch"]), 100 * np.asarray(m["test_error"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories or metrics.json files")
    ap.add_argument("--labels", nargs="+", help="one per run (default: the directory names)")
    ap.add_argument("--reference", type=float, nargs="*", default=[], help="horizontal lines, test error in %%")
    ap.add_argument("--title", default="")
    ap.add_argument("--ymax", type=float, default=6.0, help="upper limit of the error axis, %%")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    labels = args.labels or [r.name if r.is_dir() else r.parent.name for r in args.runs]
    if len(labels) != len(args.runs):
        ap.error(f"--labels: {len(labels)} given for {len(args.runs)} runs")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for run, label in zip(args.runs, labels):
        epochs, err = read_curve(run)
        ax.plot(epochs, err, lw=1.2, label=f"{label} (last {err[-1]:.2f} %)")
    for ref in args.reference:
        ax.axhline(ref, color="k", ls="--", lw=0.8)
    ax.set(xlabel="epoch", ylabel="test error (%)", ylim=(0, args.ymax), title=args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
