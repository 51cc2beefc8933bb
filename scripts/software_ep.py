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

Continual EP and vector-field EP (thesis Part V; the chip's ``train.py --continual``):

    python scripts/software_ep.py --T 40 --K 15 --beta 0.2 --estimator random --lrs 0.0056 0.0028 \
        --continual --epochs 100 --eval-every 1 --out runs/cep_software
    python scripts/software_ep.py --T 40 --K 15 --beta 0.2 --estimator random --lrs 0.0056 0.0028 \
        --continual --rule vf --angle 45 --epochs 100 --eval-every 1 --out runs/cvf_software_45

(C-VF at the C-EP rates: at the thesis' C-VF rates 0.0076 / 0.0038 these dynamics, with the
circuit's nudge before the activation, do not train. With ``--nudge-at activity``, the thesis'
placement after the activation, they do, and C-EP gets closer to the thesis: RESULTS.md.)

The weights, random states and metrics are checkpointed after every epoch
(``checkpoint.npz``, ``metrics.json``; the one before is kept as ``checkpoint.prev.npz``,
and with ``--keep-checkpoints`` every one in ``checkpoints/``); ``--resume`` continues from the
last one, and from an older one put in its place it replays the epochs after it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from learning import ep_software as sw
from learning.data import load_mnist, minibatches
from learning.ep import weight_angle


def parser() -> argparse.ArgumentParser:
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
    ap.add_argument("--continual", action="store_true", help="C-EP / C-VF: weights move at every nudged step")
    ap.add_argument("--rule", choices=("ep", "vf"), default="ep")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="float32: the thesis' GPU precision, ~1.5x faster here")
    ap.add_argument("--nudge-at", choices=sw.NUDGE_PLACES, default="current",
                    help="current: into the output neurons, as on the chip; activity: added after the "
                         "activation, the thesis' prototypical setting")
    ap.add_argument("--angle", type=float, default=None,
                    help="vector-field EP on untied weights, backward ones drawn at this angle (degrees)")
    ap.add_argument("--init", choices=("glorot", "fan-in"), default="glorot",
                    help="glorot: Glorot-uniform (the thesis' text); fan-in: U(+-1/sqrt(fan-in)), biases too "
                         "(the thesis' code, PyTorch's default)")
    ap.add_argument("--frozen-hidden-bias", action="store_true",
                    help="never update the hidden layers' biases (the thesis' C-VF code)")
    ap.add_argument("--vf-rho-prime", action="store_true",
                    help="C-VF's changes times the activation's slope at each tile's read, as in the code "
                         "behind the thesis' C-VF results (ernoult/continualEP, branch cep); the text drops it")
    ap.add_argument("--skip-unsettled", type=float, default=None, metavar="GAP",
                    help="leave out of the update every sample whose free phase ends with a settle gap above "
                         "GAP (in a two-step cycle: the C-VF runaway's fuel, RESULTS.md); not in the thesis")
    ap.add_argument("--out", default="results/ep_software")
    ap.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    ap.add_argument("--keep-checkpoints", action="store_true",
                    help="also keep every epoch's checkpoint, as checkpoints/epoch_NNN.npz (to replay any epoch)")
    return ap


def run_args(run: Path) -> argparse.Namespace:
    """The arguments a run was started with (from its metrics.json), defaults for those it predates."""
    args = parser().parse_args([])
    vars(args).update(json.loads((Path(run) / "metrics.json").read_text())["args"])
    return args


def main(argv=None):
    args = parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_mnist("train")
    x, y = x[:args.train], y[:args.train]
    xt, yt = load_mnist("test")
    net, model, rng = build(args)
    eye = np.eye(10)
    metrics = {"epoch": [], "test_error": [], "seconds": [], "weight_rms": [], "settle_gap": []}
    if net.back is not None:
        metrics["angle"] = []      # Psi(W, B) per untied layer: C-VF degrades as it grows (thesis section 4.2)
        metrics["back_rms"] = []   # per untied layer: the rho' rule's collapse is the backward matrix's runaway
    if args.skip_unsettled is not None:
        metrics["skipped"] = []    # training samples left out per epoch
    start = load_checkpoint(out, net, rng, model.rng, metrics) if args.resume else 0
    for epoch in range(start, args.epochs):
        t0 = time.perf_counter()
        model.skipped = 0
        for idx in minibatches(len(x), 20, rng):
            model.train_batch(x[idx], eye[y[idx]])
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            err, gap = evaluate(model, xt, yt)
            metrics["epoch"].append(epoch + 1)
            metrics["test_error"].append(err)
            metrics["seconds"].append(time.perf_counter() - t0)
            metrics["settle_gap"].append(gap)
            metrics["weight_rms"].append([float(np.sqrt(np.mean(w.astype(float) ** 2))) for w in net.W])
            if "angle" in metrics:
                metrics["angle"].append([weight_angle(w, b) for w, b in zip(net.W, net.back) if b is not None])
                metrics["back_rms"].append([float(np.sqrt(np.mean(b.astype(float) ** 2))) for b in net.back
                                            if b is not None])
            if "skipped" in metrics:
                metrics["skipped"].append(model.skipped)
            print(f"epoch {epoch + 1}: test error {err * 100:.2f}%", flush=True)
        save_checkpoint(out, epoch + 1, net, rng, model.rng, {"args": vars(args), **metrics})
        if args.keep_checkpoints:
            (out / "checkpoints").mkdir(exist_ok=True)
            shutil.copyfile(out / "checkpoint.npz", out / "checkpoints" / f"epoch_{epoch + 1:03d}.npz")


def build(args):
    """``(net, model, rng)`` of a run from its arguments (``rng`` draws the mini-batch order)."""
    sizes = (784, *args.hidden, 10)
    act = sw.Activation("sigmoid", 4.0, 0.5)
    rng = np.random.default_rng(args.seed)
    init = sw.LayeredNet.glorot if args.init == "glorot" else sw.LayeredNet.fan_in
    net = init(sizes, (1,) * (len(sizes) - 1) + (0,), rng, [act] * (len(sizes) - 1), dtype=np.dtype(args.dtype))
    if args.angle is not None:
        net.untie(args.angle, np.random.default_rng([args.seed, 3]))
    model = sw.SoftwareEP(net, T=args.T, K=args.K, beta=args.beta, lrs=args.lrs, estimator=args.estimator,
                          continual=args.continual, rule=args.rule, nudge_at=args.nudge_at,
                          frozen_hidden_bias=args.frozen_hidden_bias, skip_unsettled=args.skip_unsettled,
                          vf_rho_prime=args.vf_rho_prime, rng=np.random.default_rng([args.seed, 2]))
    return net, model, rng


def evaluate(model, xt, yt, chunk=1000):
    """``(test error, settle gap)`` of the free phase on the test set.

    The settle gap is the mean over test images of :func:`learning.ep_software.settle_gap`,
    the largest change of any free activity in the last free step: near 0 for a settled net,
    near 1 for one caught in a two-step cycle, as the collapsed C-VF run was (RESULTS.md).
    """
    wrong, gaps = 0, []
    for i in range(0, len(xt), chunk):
        st, gap = sw.settle_gap(model.net, xt[i:i + chunk], model.T, mode=model.mode, eps=model.eps)
        wrong += int(np.sum(np.argmax(st.a[-1], axis=1) != yt[i:i + chunk]))
        gaps.append(gap)
    return wrong / len(xt), float(np.mean(np.concatenate(gaps)))


def save_checkpoint(out: Path, epoch: int, net, rng, model_rng, metrics: dict):
    """Weights and random states after ``epoch``, written beside and then over the old ones."""
    arrays = {f"W{n}": w for n, w in enumerate(net.W)}
    arrays.update({f"back{n}": b for n, b in enumerate(net.back or []) if b is not None})
    states = json.dumps({"epoch": epoch, "rng": rng.bit_generator.state, "model_rng": model_rng.bit_generator.state})
    np.savez(out / "checkpoint.tmp.npz", states=np.array(states), **arrays)
    if (out / "checkpoint.npz").exists():   # one epoch back, to replay an epoch that went wrong
        shutil.copyfile(out / "checkpoint.npz", out / "checkpoint.prev.tmp.npz")   # a copy: never without a checkpoint
        (out / "checkpoint.prev.tmp.npz").replace(out / "checkpoint.prev.npz")
    (out / "checkpoint.tmp.npz").replace(out / "checkpoint.npz")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def load_checkpoint(out: Path, net, rng, model_rng, metrics: dict) -> int:
    """Restore what :func:`save_checkpoint` wrote; returns the number of completed epochs."""
    states = load_weights(out / "checkpoint.npz", net)
    rng.bit_generator.state = states["rng"]
    model_rng.bit_generator.state = states["model_rng"]
    saved = json.loads((out / "metrics.json").read_text())
    # only the epochs the checkpoint holds (it may be checkpoint.prev.npz put back); a run begun
    # before a metric existed gets None for its earlier epochs
    keep = sum(e <= states["epoch"] for e in saved["epoch"])
    for k in metrics:
        metrics[k] = saved.get(k, [None] * len(saved["epoch"]))[:keep]
    return states["epoch"]


def load_weights(path: Path, net) -> dict:
    """Put a checkpoint's weights into ``net`` (built by :func:`build`); returns its saved states."""
    with np.load(path) as ck:
        for n in range(len(net.W)):
            net.W[n][...] = ck[f"W{n}"]
            if net.back is not None and net.back[n] is not None:
                net.back[n][...] = ck[f"back{n}"]
        return json.loads(str(ck["states"]))


if __name__ == "__main__":
    main()
