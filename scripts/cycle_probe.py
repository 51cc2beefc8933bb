"""Two-step cycles in the free phase of a trained C-EP / C-VF net, and the weight changes they cause.

    python scripts/cycle_probe.py runs/cep_software_activity runs/cvf_software_0_thesis_activity \
        --out results/cycle_probe.json

In the discrete (synchronous) dynamics the odd and even half-steps run as two
independent copies of the network (:func:`learning.ep_software.settle_gap`); an
image whose two copies land in different fixed points leaves the free phase
alternating between them. For each run written by ``scripts/software_ep.py``
this rebuilds the net from its ``checkpoint.npz`` and arguments, settles every
training image for the run's T steps, and counts the images whose settle gap
exceeds ``--threshold``. Then, from the same weights, it runs one nudged phase
of the run's rule (rates, K, nudge placement) on a mini-batch of such cycling
images and on one of settled images (gap under ``--settled-below``), at +beta and at -beta, and reports the
Frobenius norm of every weight matrix's change (and, for untied nets, of the
backward matrices' and the cosine between the two).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import software_ep  # noqa: E402
from learning import ep_software as sw  # noqa: E402
from learning.data import load_mnist  # noqa: E402


def probe(run: Path, x, y, *, threshold: float, batch: int, settled_below: float = 1e-4, chunk: int = 2000) -> dict:
    """The counts and weight changes described in the module docstring, for one run."""
    args = software_ep.run_args(run)
    net, _, _ = software_ep.build(args)
    states = software_ep.load_weights(run / "checkpoint.npz", net)
    x = x.astype(net.dtype)
    gap = np.concatenate([sw.settle_gap(net, x[i:i + chunk], args.T)[1] for i in range(0, len(x), chunk)])
    cycling, settled = np.flatnonzero(gap > threshold), np.flatnonzero(gap < settled_below)
    result = {"epoch": states["epoch"], "images": len(x), "cycling": len(cycling),
              "mean_gap": float(gap.mean()), "kicks": {}}
    eye = np.eye(10, dtype=net.dtype)
    for label, idx in (("cycling", cycling[:batch]), ("settled", settled[:batch])):
        if len(idx) == 0:
            continue
        for beta in (args.beta, -args.beta):
            moved = copy.deepcopy(net)
            model = sw.SoftwareEP(moved, T=args.T, K=args.K, beta=beta, lrs=args.lrs, estimator="one-sided",
                                  continual=args.continual, rule=args.rule, nudge_at=args.nudge_at)
            model.train_batch(x[idx], eye[y[idx]])
            kick = {"batch": len(idx), "dW": [float(np.linalg.norm(m - w)) for m, w in zip(moved.W, net.W)],
                    "W": [float(np.linalg.norm(w)) for w in net.W]}
            if net.back is not None:
                dB = [m - b if b is not None else None for m, b in zip(moved.back, net.back)]
                dW = [m - w for m, w in zip(moved.W, net.W)]
                kick["dB"] = [float(np.linalg.norm(d)) if d is not None else None for d in dB]
                kick["cos_dW_dB"] = [cosine(w, b) if b is not None else None for w, b in zip(dW, dB)]
            result["kicks"][f"{label}, beta {beta:+g}"] = kick
    return result


def cosine(u, v) -> float | None:
    """The cosine between two arrays; None when either is zero (a matrix the nudged phase left alone)."""
    u, v = np.ravel(u).astype(float), np.ravel(v).astype(float)
    norms = np.linalg.norm(u) * np.linalg.norm(v)
    return float(u @ v / norms) if norms > 0 else None


def _fmt(values, spec: str) -> str:
    return "[" + ", ".join("-" if v is None else format(v, spec) for v in values) + "]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories of scripts/software_ep.py")
    ap.add_argument("--threshold", type=float, default=0.5, help="settle gap above which an image cycles")
    ap.add_argument("--settled-below", type=float, default=1e-4, help="settle gap under which an image has settled")
    ap.add_argument("--batch", type=int, default=20, help="images per probing mini-batch")
    ap.add_argument("--train", type=int, default=60000, help="training images to settle (the first N)")
    ap.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    args = ap.parse_args(argv)
    x, y = load_mnist("train")
    x, y = x[:args.train], y[:args.train]
    results = {}
    for run in args.runs:
        r = probe(run, x, y, threshold=args.threshold, batch=args.batch, settled_below=args.settled_below)
        results[str(run)] = r
        print(f"{run} (epoch {r['epoch']}): {r['cycling']} of {r['images']} training images cycle "
              f"(gap > {args.threshold}); mean gap {r['mean_gap']:.2e}")
        for label, k in r["kicks"].items():
            extra = (f"  |dB| {_fmt(k['dB'], '.2e')}  cos(dW, dB) {_fmt(k['cos_dW_dB'], '+.3f')}"
                     if "dB" in k else "")
            print(f"  {label} ({k['batch']} images): |dW| {_fmt(k['dW'], '.2e')}{extra}")
        if args.out:        # after every run: a long probe that stops keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
