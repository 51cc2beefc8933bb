"""EP against BPTT on MNIST-sized networks: the GDU traces and the bias of one-sided vs centred nudging.

Ideal hardware (the floating-point twin of an ideal-device chip, ``learning.ep_software``),
prototypical setting, sigmoid 1/(1+exp(-4(u-1/2))), Glorot weights, one mini-batch of 20
MNIST training images.

1. GDU (thesis Part IV, Theorem 4), on P-1h, P-2h and the energy-based EB-1h (Euler steps,
   eps = 0.08; our leaky-integrator dynamics, not the thesis' rho' form): T free steps, then
   K steps of EP (beta small) and of BPTT; RelMSE between EP's per-step increments and BPTT's elementary gradients, per layer,
   for synapses and neurons, and the fraction of synapses whose summed updates agree in sign.
2. Bias: the whole EP update (one-sided beta, or centred +-beta) against the BPTT gradient
   through the same K steps, on two hidden layers (784-512-512-10), at several beta: relative
   error ||EP - (-grad)|| / ||grad|| per layer and sign agreement.

    python scripts/ep_gdu.py --out results/ep_gdu
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from learning import ep_software as sw  # noqa: E402
from learning.data import load_mnist  # noqa: E402

# thesis App. Table 2.1 (T, K; beta = 0.01 for P, 0.001 for EB with eps = 0.08)
NETS = {"P-1h": ((784, 512, 10), 150, 10, "discrete", 1.0, 0.01),
        "P-2h": ((784, 512, 512, 10), 1500, 40, "discrete", 1.0, 0.01),
        "EB-1h": ((784, 512, 10), 3000, 80, "euler", 0.08, 0.01)}   # thesis T = 800, beta = 0.001: our
# leaky-integrator settling is slower (|ds| ~ 1e-3 after 800 steps), so T = 3000, beta = 0.01


def network(sizes, seed):
    act = sw.Activation("sigmoid", 4.0, 0.5)
    return sw.LayeredNet.glorot(sizes, (1,) * (len(sizes) - 1) + (0,), np.random.default_rng(seed),
                                [act] * (len(sizes) - 1))


def gdu(net, x, y, T, K, beta, mode, eps):
    gs, gw = sw.bptt_traces(net, x, y, T, K, mode=mode, eps=eps)
    ds, dw = sw.ep_traces(net, x, y, T, K, beta, mode=mode, eps=eps)
    out = {"synapses": [], "neurons": [], "sign_agreement": []}
    for n in range(net.depth):
        ep = np.array([dw[t][n] for t in range(1, K + 1)])
        bp = -np.array([gw[t][n] for t in range(1, K + 1)])
        out["synapses"].append(sw.rel_mse(ep, bp))
        big = np.abs(bp.sum(0)) > 1e-3 * np.abs(bp.sum(0)).max()
        out["sign_agreement"].append(float(np.mean(np.sign(ep.sum(0))[big] == np.sign(bp.sum(0))[big])))
    for n in range(1, net.depth + 1):
        out["neurons"].append(sw.rel_mse([ds[t][n] for t in range(K)], [-gs[t][n] for t in range(K)]))
    return out, (ds, dw, gs, gw)


def bias(net, x, y, T, K, betas):
    _, gw = sw.bptt_traces(net, x, y, T, K)
    grad = [-sum(g[n] for g in gw) for n in range(net.depth)]
    free, _ = sw.settle(net, x, T)
    rows = []
    for beta in betas:
        plus, _ = sw.settle(net, x, K, nudge=(y, beta), start=free)
        minus, _ = sw.settle(net, x, K, nudge=(y, -beta), start=free)
        for name, st in (("one-sided", sw.ep_statistic(net, plus.a, free.a, beta, 0.0)),
                         ("centred", sw.ep_statistic(net, plus.a, minus.a, beta, -beta))):
            err = [float(np.linalg.norm(s - g) / np.linalg.norm(g)) for s, g in zip(st, grad)]
            agree = [float(np.mean(np.sign(s) == np.sign(g))) for s, g in zip(st, grad)]
            rows.append({"beta": beta, "estimator": name, "rel_error": err, "sign_agreement": agree})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results/ep_gdu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, labels = load_mnist("train")
    x, y = x[:20], np.eye(10)[labels[:20]]
    results = {}
    fig, axes = plt.subplots(2, len(NETS), figsize=(4.5 * len(NETS), 6))
    for col, (name, (sizes, T, K, mode, eps, beta)) in enumerate(NETS.items()):
        net = network(sizes, args.seed)
        res, (ds, dw, gs, gw) = gdu(net, x, y, T, K, beta, mode, eps)
        results[name] = {"T": T, "K": K, "beta": beta, "mode": mode, "eps": eps, **res}
        print(name, json.dumps(res))
        # traces of a few synapses of the first layer and neurons of the first hidden layer
        rng = np.random.default_rng(1)
        w_idx = [tuple(rng.integers(0, s) for s in net.W[0].shape) for _ in range(4)]
        t = np.arange(1, K + 1)
        for i, idx in enumerate(w_idx):
            axes[0, col].plot(t, [dw[k][0][idx] for k in t], f"C{i}-")
            axes[0, col].plot(t, [-gw[k][0][idx] for k in t], f"C{i}--")
        axes[0, col].set_title(f"{name}: W0 synapses, EP (solid) vs -BPTT (dashed)")
        for i in range(4):
            axes[1, col].plot(range(K), [ds[k][1][0, i] for k in range(K)], f"C{i}-")
            axes[1, col].plot(range(K), [-gs[k][1][0, i] for k in range(K)], f"C{i}--")
        axes[1, col].set_title(f"{name}: first hidden neurons")
        axes[1, col].set_xlabel("step t of phase 2 / BPTT")
    fig.tight_layout()
    fig.savefig(out / "gdu_traces.png", dpi=110)
    plt.close(fig)
    sizes = NETS["P-2h"][0]
    rows = bias(network(sizes, args.seed), x, y, 100, 20, [0.01, 0.1, 0.5, 1.0])   # thesis P-2h: T=100, K=20
    results["bias_P-2h"] = rows
    for r in rows:
        print(r)
    (out / "gdu.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
