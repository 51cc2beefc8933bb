"""What a run's kept checkpoints say about its free phase and weights, epoch by epoch.

    python scripts/checkpoint_trace.py runs/cvf_software_0_rhop --epochs 60 70 74 76 78 79 80 81 82 85 \
        --test 2000 --out results/checkpoint_trace/cvf0_rhop.json

For each epoch's checkpoint of a ``scripts/software_ep.py --keep-checkpoints`` run,
the net is rebuilt and the first ``--test`` test images are settled for the run's
T steps. Per epoch it reports: the test error on them; the share of images left in
a two-step cycle (settle gap > 0.5); the share of saturated hidden activities
(below 0.02 or above 0.98); the largest share of one predicted class (1.0: the net
answers one class); every matrix's Frobenius norm, forward and (untied nets)
backward; the angle Psi between each forward matrix and its backward one; and, per
hidden layer, the mean activation slope at the layer's full pre-activation and at
the backward matrix's read alone (the gate the ``--vf-rho-prime`` rule applies to
the backward matrix's changes). The per-epoch metrics of a run record the forward
matrices only; this is how a backward matrix's runaway shows.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import software_ep  # noqa: E402
from learning import ep_software as sw  # noqa: E402
from learning.data import load_mnist  # noqa: E402
from learning.ep import weight_angle  # noqa: E402


def trace_epoch(net, model, x, labels) -> dict:
    """The quantities of the module docstring for ``net``'s current weights on images ``x``."""
    st, gap = sw.settle_gap(net, x, model.T, mode=model.mode, eps=model.eps)
    pred = np.argmax(st.a[-1], axis=1)
    hidden = np.concatenate(st.a[1:-1], axis=1)
    u = sw.preactivations(net, st.a, sw.input_drive(net, x))
    out = {"test_error": float(np.mean(pred != labels)), "cycling": float(np.mean(gap > 0.5)),
           "hidden_saturated": float(np.mean((hidden < 0.02) | (hidden > 0.98))),
           "largest_class_share": float(np.bincount(pred, minlength=net.sizes[-1]).max() / len(pred)),
           "norm_W": [float(np.linalg.norm(w)) for w in net.W], "norm_B": [], "angle": [],
           "slope_full": [], "slope_backward_read": []}
    for n in range(1, net.depth):
        act = net.activations[n - 1]
        out["slope_full"].append(float(act.derivative(u[n]).mean()))
        if net.back is None:
            continue
        b = net.back[n]
        out["norm_B"].append(float(np.linalg.norm(b)))
        out["angle"].append(weight_angle(net.W[n], b))
        read = net.with_bias(n + 1, st.a[n + 1]) @ b[:net.sizes[n], :].T     # the feedback read alone
        out["slope_backward_read"].append(float(act.derivative(read).mean()))
    return out


def trace(run: Path, epochs, x, labels) -> dict:
    """``{epoch: trace_epoch(...)}`` over the run's kept checkpoints of ``epochs``."""
    args = software_ep.run_args(run)
    net, model, _ = software_ep.build(args)
    x = x.astype(net.dtype)
    result = {}
    for e in epochs:
        path = run / "checkpoints" / f"epoch_{e:03d}.npz"
        if not path.exists():
            raise SystemExit(f"{path} does not exist (was the run started with --keep-checkpoints?)")
        software_ep.load_weights(path, net)
        result[e] = trace_epoch(net, model, x, labels)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a run directory of scripts/software_ep.py with kept checkpoints")
    ap.add_argument("--epochs", type=int, nargs="+", required=True, help="the epochs to trace (1-based)")
    ap.add_argument("--test", type=int, default=2000, help="test images to settle (the first ones)")
    ap.add_argument("--out", type=Path, default=None, help="write the records here (.json)")
    args = ap.parse_args(argv)
    x, labels = load_mnist("test")
    rec = trace(args.run, args.epochs, x[:args.test], labels[:args.test])
    for e, r in rec.items():
        print(f"epoch {e}: error {100 * r['test_error']:.2f} %, cycling {100 * r['cycling']:.1f} %, "
              f"hidden saturated {100 * r['hidden_saturated']:.1f} %, largest class {r['largest_class_share']:.2f}, "
              f"|W| {np.round(r['norm_W'], 3).tolist()}, |B| {np.round(r['norm_B'], 3).tolist()}, "
              f"Psi {np.round(r['angle'], 1).tolist()}, slope full {np.round(r['slope_full'], 3).tolist()}, "
              f"slope at the feedback read {np.round(r['slope_backward_read'], 3).tolist()}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run": str(args.run), "test_images": args.test, "epochs": rec}, indent=1))


if __name__ == "__main__":
    main()
