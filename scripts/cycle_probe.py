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
backward matrices' and the cosine between the two), the first-order change of every
matrix's squared norm (2 W.dW), and the cycle's width at the end of the nudged phase.

Why C-VF and not C-EP: over one period of a two-step cycle between states P and Q,
C-VF's per-step increment A_n(t)^T (A_{n+1}(t+1) - A_{n+1}(t)) does not cancel; the
pair sums to -(P_n - Q_n)^T (P_{n+1} - Q_{n+1}) (the same for the backward matrix), so
K nudged steps add about K/2 such terms, scaled by 1/beta. C-EP's increment is a
difference of products and telescopes to (1/beta)(A(K)^T A(K) - A(0)^T A(0)),
bounded whatever K. For the top matrix the pair sum points along W: the output
copies are sigma(h W), monotone in h W, so 2 W.dW has the sign of beta. For untied
(C-VF) runs the probe reports the cosine between each measured change and this
closed form (``cos_closed_form``, from the free phase's last two states); ``--K``
repeats the kicks for other nudged-phase lengths.
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


def probe(run: Path, x, y, *, threshold: float, batch: int, settled_below: float = 1e-4, chunk: int = 2000,
          checkpoint: Path | None = None, Ks=None) -> dict:
    """The counts and weight changes described in the module docstring, for one run.

    ``checkpoint``: weights to probe (default the run's last); ``Ks``: nudged-phase
    lengths to probe (default the run's K)."""
    args = software_ep.run_args(run)
    net, _, _ = software_ep.build(args)
    states = software_ep.load_weights(checkpoint or run / "checkpoint.npz", net)
    x = x.astype(net.dtype)
    gap = np.concatenate([sw.settle_gap(net, x[i:i + chunk], args.T)[1] for i in range(0, len(x), chunk)])
    cycling, settled = np.flatnonzero(gap > threshold), np.flatnonzero(gap < settled_below)
    result = {"epoch": states["epoch"], "images": len(x), "cycling": len(cycling),
              "mean_gap": float(gap.mean()), "kicks": {}}
    eye = np.eye(10, dtype=net.dtype)
    for label, idx in (("cycling", cycling[:batch]), ("settled", settled[:batch])):
        if len(idx) == 0:
            continue
        pair = cycle_pair_sum(net, x[idx], args.T)
        for K in Ks or (args.K,):
            for beta in (args.beta, -args.beta):
                kick = nudged_kick(net, args, x[idx], eye[y[idx]], beta, K)
                if net.back is not None:
                    dW = [m - w for m, w in zip(kick.pop("moved").W, net.W)]
                    kick["cos_closed_form"] = [cosine(d, p) for d, p in zip(dW, pair)]
                kick.pop("moved", None)
                result["kicks"][f"{label}, beta {beta:+g}, K {K}"] = kick
    if len(cycling) and len(settled) >= batch - 1:
        result["mixed"] = mixed_kicks(net, args, x, eye[y], cycling[:batch], settled[:batch - 1], Ks or (args.K,))
    return result


def mixed_kicks(net, args, x, y, cycling, fill, Ks) -> dict:
    """Kicks of training-like mini-batches: each cycling image with the same settled ``fill`` images.

    Training batches hold one or two cycling images among settled ones (RESULTS.md,
    the replays); a batch made only of cycling images moves the weights so much within
    its own nudged phase that it behaves differently. Per beta and K: the mean and
    standard error over the batches of each matrix's 2 W.dW, and the mean |dW|."""
    out = {}
    for K in Ks:
        for beta in (args.beta, -args.beta):
            kicks = [nudged_kick(net, args, x[np.r_[c, fill]], y[np.r_[c, fill]], beta, K) for c in cycling]
            g = np.array([k["growth"] for k in kicks])
            out[f"beta {beta:+g}, K {K}"] = {
                "batches": len(kicks), "growth_mean": g.mean(0).tolist(),
                "growth_sem": (g.std(0) / np.sqrt(len(g))).tolist(),
                "dW_mean": np.mean([k["dW"] for k in kicks], axis=0).tolist()}
    return out


def nudged_kick(net, args, x, y, beta: float, K: int) -> dict:
    """One nudged phase of the run's rule from ``net`` (left unchanged) at ``beta`` for ``K`` steps."""
    moved = copy.deepcopy(net)
    model = sw.SoftwareEP(moved, T=args.T, K=K, beta=beta, lrs=args.lrs, estimator="one-sided",
                          continual=args.continual, rule=args.rule, nudge_at=args.nudge_at,
                          frozen_hidden_bias=args.frozen_hidden_bias, vf_rho_prime=args.vf_rho_prime)
    free = model.train_batch(x, y)
    dW = [m - w for m, w in zip(moved.W, net.W)]
    # the cycle's width at the end of the nudged phase, the weights held at their start
    held, _ = sw.settle(net, x, K - 1, nudge=(y, beta), nudge_at=args.nudge_at, start=free)
    last, _ = sw.settle(net, x, 1, nudge=(y, beta), nudge_at=args.nudge_at, start=held)
    width = sw.largest_change(held, last)
    kick = {"batch": len(x), "dW": [float(np.linalg.norm(d)) for d in dW],
            "W": [float(np.linalg.norm(w)) for w in net.W],
            "growth": [float(2 * np.sum(w.astype(float) * d)) for w, d in zip(net.W, dW)],
            "nudged_gap": float(width.mean()), "moved": moved}
    if net.back is not None:
        dB = [m - b if b is not None else None for m, b in zip(moved.back, net.back)]
        kick["dB"] = [float(np.linalg.norm(d)) if d is not None else None for d in dB]
        kick["cos_dW_dB"] = [cosine(w, b) if b is not None else None for w, b in zip(dW, dB)]
    return kick


def cycle_pair_sum(net, x, T: int) -> list:
    """-(P_n - Q_n)^T (P_{n+1} - Q_{n+1}) per weight matrix, batch-summed: C-VF's increment over one
    period of the two-step cycle between the free phase's last two states P (step T) and Q (T - 1)."""
    before, _ = sw.settle(net, x, T - 1)
    after, _ = sw.settle(net, x, 1, start=before)
    d = [net.with_bias(n, after.a[n]) - net.with_bias(n, before.a[n]) for n in range(net.depth + 1)]
    return [-d[n].T @ d[n + 1] for n in range(net.depth)]


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
    ap.add_argument("--epoch", type=int, default=None,
                    help="probe the kept checkpoint of this epoch (checkpoints/epoch_NNN.npz) instead of the last")
    ap.add_argument("--K", type=int, nargs="+", default=None, help="nudged-phase lengths (default: each run's K)")
    args = ap.parse_args(argv)
    x, y = load_mnist("train")
    x, y = x[:args.train], y[:args.train]
    results = {}
    for run in args.runs:
        ck = run / "checkpoints" / f"epoch_{args.epoch:03d}.npz" if args.epoch else None
        r = probe(run, x, y, threshold=args.threshold, batch=args.batch, settled_below=args.settled_below,
                  checkpoint=ck, Ks=args.K)
        results[str(run)] = r
        print(f"{run} (epoch {r['epoch']}): {r['cycling']} of {r['images']} training images cycle "
              f"(gap > {args.threshold}); mean gap {r['mean_gap']:.2e}")
        for label, k in r["kicks"].items():
            extra = (f"  |dB| {_fmt(k['dB'], '.2e')}  cos(dW, dB) {_fmt(k['cos_dW_dB'], '+.3f')}"
                     f"  cos(dW, closed form) {_fmt(k['cos_closed_form'], '+.3f')}" if "dB" in k else "")
            print(f"  {label} ({k['batch']} images): |dW| {_fmt(k['dW'], '.2e')}  2W.dW {_fmt(k['growth'], '+.2e')}"
                  f"  nudged gap {k['nudged_gap']:.2f}{extra}")
        for label, k in r.get("mixed", {}).items():
            print(f"  one cycling image among settled ones, {label} ({k['batches']} batches): "
                  f"2W.dW {_fmt(k['growth_mean'], '+.2e')} +- {_fmt(k['growth_sem'], '.1e')}  "
                  f"|dW| {_fmt(k['dW_mean'], '.2e')}")
        if args.out:        # after every run: a long probe that stops keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
