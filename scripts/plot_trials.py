"""Overlay the test-error curves of several runs (their ``metrics.json``) in one PNG.

    python scripts/plot_trials.py results/cep_software results/cep_software_s1 results/cep_software_s2 \
        --labels "seed 0" "seed 1" "seed 2" --reference 2.28 --title "C-EP-1h, software" \
        -o results/cep_software_curves.png

Each ``metrics.json`` holds ``epoch`` and ``test_error`` lists (as written by
``scripts/software_ep.py`` and ``scripts/train.py``). ``--reference`` draws a
horizontal line, e.g. the thesis' mean, in percent.

``--panels`` adds panels under the error curves, one per metric that
``scripts/software_ep.py`` records: ``weight_rms`` (of the top weight matrix),
``angle`` (Psi between the top forward and backward matrices, untied nets),
``back_rms`` (of the top backward matrix, untied nets) and
``settle_gap`` (how far the free phase still moves at its last step), to see
what went with a run's collapse:

    python scripts/plot_trials.py runs/cvf_a runs/cvf_b --panels weight_rms angle settle_gap \
        --ymax 100 -o results/cvf_diagnostics.png
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


PANELS = {   # metric: (y label, log scale)
    "weight_rms": ("rms of the top weights", True),
    "angle": ("Ψ(W, B) of the top layer (°)", False),
    "back_rms": ("rms of the top backward weights", True),
    "settle_gap": ("settle gap (last free step)", True),
}


def read_metric(run: Path, name: str):
    """(epochs, values) of a per-epoch metric; a list-valued one (one entry per layer) gives its last
    entry; epochs the run did not record it for are left out."""
    path = run / "metrics.json" if run.is_dir() else run
    m = json.loads(path.read_text())
    pairs = [(e, v[-1] if isinstance(v, list) else v) for e, v in zip(m["epoch"], m.get(name, [])) if v is not None]
    return np.asarray([e for e, _ in pairs]), np.asarray([v for _, v in pairs], dtype=float)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories or metrics.json files")
    ap.add_argument("--labels", nargs="+", help="one per run (default: the directory names)")
    ap.add_argument("--reference", type=float, nargs="*", default=[], help="horizontal lines, test error in %%")
    ap.add_argument("--title", default="")
    ap.add_argument("--ymax", type=float, default=6.0, help="upper limit of the error axis, %%")
    ap.add_argument("--panels", nargs="*", default=[], choices=sorted(PANELS),
                    help="per-epoch metrics to draw in panels under the error curves")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    labels = args.labels or [r.name if r.is_dir() else r.parent.name for r in args.runs]
    if len(labels) != len(args.runs):
        ap.error(f"--labels: {len(labels)} given for {len(args.runs)} runs")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = 1 + len(args.panels)
    fig, axes = plt.subplots(rows, 1, figsize=(6.4, 4.0 + 2.2 * (rows - 1)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [1.8] + [1] * (rows - 1)})
    ax = axes[0, 0]
    for i, (run, label) in enumerate(zip(args.runs, labels)):
        epochs, err = read_curve(run)
        ax.plot(epochs, err, lw=1.2, color=f"C{i}", label=f"{label} (last {err[-1]:.2f} %)")
        for pax, name in zip(axes[1:, 0], args.panels):
            pax.plot(*read_metric(run, name), lw=1.0, color=f"C{i}")
    for pax, name in zip(axes[1:, 0], args.panels):
        ylabel, log = PANELS[name]
        pax.set(ylabel=ylabel, yscale="log" if log else "linear")
        pax.grid(alpha=0.3)
    for ref in args.reference:
        ax.axhline(ref, color="k", ls="--", lw=0.8)
    ax.set(ylabel="test error (%)", ylim=(0, args.ymax), title=args.title)
    axes[-1, 0].set(xlabel="epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
