"""Floating-point DRN baseline (no hardware): Scellier 2024's idealised 1568-100-10 on MNIST.

``learning.drn_software.SoftwareDRN`` with his settings for DRN-XS: ideal diodes to 0 V (half the
hidden nodes rectify from below, half from above), unbounded conductances clamped at >= 0 and
initialised U(-1/sqrt(n_in), 1/sqrt(n_in)) clamped, current-source biases from 0, input gain 100,
4 block-coordinate-descent sweeps per phase from 0 V, centred beta = 1, mini-batches of 4, SGD at
0.006 decayed by 0.99 per epoch. It tells how far the circuit DRN (scripts/train.py with
netlists/drn_*.net) is from the algorithm when nothing is a device.

    python scripts/software_drn.py --epochs 10 --out results/drn_software
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # idle BLAS threads must not spin (README)

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from learning.data import load_mnist, minibatches  # noqa: E402
from learning.drn_software import SoftwareDRN  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, nargs="+", default=[100])
    ap.add_argument("--gain", type=float, default=100.0)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.006], help="one, or one per crossbar")
    ap.add_argument("--lr-decay", type=float, default=0.99)
    ap.add_argument("--sweeps", type=int, default=4, help="0: iterate each phase to convergence")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--train", type=int, default=60000, help="training images per epoch (the first N)")
    ap.add_argument("--test", type=int, default=10000, help="test images (the first N)")
    ap.add_argument("--init", choices=("scellier", "midpoint"), default="scellier",
                    help="scellier: U(-1/sqrt(n), 1/sqrt(n)) clamped at 0, unbounded; midpoint: bounded devices "
                         "drawn around their midpoint as on our chips (--on-off, --init-std)")
    ap.add_argument("--on-off", type=float, default=100.0, help="bounded devices: g_max / g_min")
    ap.add_argument("--init-scale", type=float, nargs="+", default=None,
                    help="scellier init with these U(-s, s) scales (one, or one per crossbar) instead of 1/sqrt(n_in)")
    ap.add_argument("--normal", action="store_true", help="scellier init: N(0, s^2) clamped instead of U(-s, s)")
    ap.add_argument("--bounds", type=float, nargs=2, default=None, metavar=("G_MIN", "G_MAX"),
                    help="scellier init: bounded devices, the same range for every crossbar (as one device model)")
    ap.add_argument("--init-std", type=float, default=0.4, help="midpoint init: spread, fraction of the midpoint")
    ap.add_argument("--bias-pixel", action="store_true",
                    help="no bias current sources: an always-white pixel (and its inverted copy) instead, as on our chips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/drn_software")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_mnist("train")
    x, y = x[:args.train], y[:args.train]
    xt, yt = load_mnist("test")
    xt, yt = xt[:args.test], yt[:args.test]
    if args.bias_pixel:
        x, xt = (np.concatenate([a, np.ones((len(a), 1))], axis=1) for a in (x, xt))
    rng = np.random.default_rng(args.seed)
    common = dict(gain=args.gain, beta=args.beta, lrs=tuple(args.lrs), sweeps=args.sweeps or None,
                  learn_biases=not args.bias_pixel)
    if args.init == "scellier":
        sizes = (x.shape[1], *args.hidden, 10)
        if args.init_scale is None:
            net = SoftwareDRN.kaiming_clamped(sizes, rng, g_bounds=args.bounds, **common)
        else:
            net = SoftwareDRN.clamped_uniform(sizes, rng, args.init_scale, g_bounds=args.bounds,
                                              normal=args.normal, **common)
    else:
        net = SoftwareDRN.bounded_midpoint((x.shape[1], *args.hidden, 10), rng, on_off=args.on_off,
                                           init_std=args.init_std, **common)
    eye = np.eye(10)
    metrics = {"epoch": [], "test_error": [], "train_error": [], "seconds": []}
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        wrong = 0
        for idx in minibatches(len(x), args.batch, rng):
            free = net.train_batch(x[idx], eye[y[idx]])
            wrong += int(np.count_nonzero(np.argmax(free[-1], axis=1) != y[idx]))
        net.lrs = tuple(lr * args.lr_decay for lr in net.lrs)
        err = float(np.mean(np.concatenate([net.predict(xt[i:i + 1000]) for i in range(0, len(xt), 1000)]) != yt))
        metrics["epoch"].append(epoch + 1)
        metrics["test_error"].append(err)
        metrics["train_error"].append(wrong / len(x))
        metrics["seconds"].append(time.perf_counter() - t0)
        print(f"epoch {epoch + 1}: test error {err * 100:.2f}%, running train error {wrong / len(x) * 100:.2f}%, "
              f"{metrics['seconds'][-1]:.0f} s", flush=True)
        (out / "metrics.json").write_text(json.dumps({"args": vars(args), **metrics}, indent=1))


if __name__ == "__main__":
    main()
