"""Floating-point EP baseline (no hardware): the thesis' P-1h on plain numpy matrices.

``learning.ep_software.SoftwareEP`` with the dynamics the chip runs (sigmoid 1/(1+exp(-4(u-1/2))),
nudge injected before the activation), Glorot-uniform weights, SGD with the thesis' learning
rates, mini-batches of 20 over the 60,000 official training images (or the first ``--train``),
test on the 10,000. It is the reference the ideal-device chip run (netlists/ep_p1h_ideal.net)
is compared with, and the cheap place to compare estimators on the deeper P-2h (the chip's EP
statistic equals this one to 1e-12 on ideal hardware, tests/test_ep.py).

    python scripts/software_ep.py --epochs 30 --out results/ep_software
    python scripts/software_ep.py --hidden 512 512 --T 100 --K 20 --beta 0.5 --lrs 0.2 0.05 0.005 \
        --estimator centred --train 20000 --epochs 10 --eval-every 1 --out results/ep_p2h_centred
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from learning import ep_software as sw
from learning.data import load_mnist, minibatches


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--T", type=int, default=30)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.08, 0.04], help="input side first")
    ap.add_argument("--estimator", choices=("one-sided", "centred", "random"), default="one-sided")
    ap.add_argument("--hidden", type=int, nargs="+", default=[512])
    ap.add_argument("--train", type=int, default=60000, help="training images per epoch (the first N)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--out", default="results/ep_software")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_mnist("train")
    x, y = x[:args.train], y[:args.train]
    xt, yt = load_mnist("test")
    sizes = (784, *args.hidden, 10)
    act = sw.Activation("sigmoid", 4.0, 0.5)
    rng = np.random.default_rng(args.seed)
    net = sw.LayeredNet.glorot(sizes, (1,) * (len(sizes) - 1) + (0,), rng, [act] * (len(sizes) - 1))
    model = sw.SoftwareEP(net, T=args.T, K=args.K, beta=args.beta, lrs=args.lrs, estimator=args.estimator,
                          rng=np.random.default_rng([args.seed, 2]))
    eye = np.eye(10)
    metrics = {"epoch": [], "test_error": [], "seconds": []}
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        for idx in minibatches(len(x), 20, rng):
            model.train_batch(x[idx], eye[y[idx]])
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            err = float(np.mean(np.concatenate([model.predict(xt[i:i + 1000]) for i in range(0, len(xt), 1000)])
                                != yt))
            metrics["epoch"].append(epoch + 1)
            metrics["test_error"].append(err)
            metrics["seconds"].append(time.perf_counter() - t0)
            print(f"epoch {epoch + 1}: test error {err * 100:.2f}%", flush=True)
            (out / "metrics.json").write_text(json.dumps({"args": vars(args), **metrics}, indent=1))


if __name__ == "__main__":
    main()
