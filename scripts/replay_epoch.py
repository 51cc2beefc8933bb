"""Replay one epoch of a ``scripts/software_ep.py`` run mini-batch by mini-batch, recording what moves.

    python scripts/replay_epoch.py runs/cvf_software_45_thesis_activity_s1 --epoch 83 \
        --out results/replay/cvf45_s1_epoch83.npz

The run must have kept the checkpoint of the epoch before (``--keep-checkpoints``,
or ``checkpoint.prev.npz`` when ``--from`` names it). From it, the weights and both
random states are restored and the epoch is run again exactly (the end is checked
against the run's own checkpoint of that epoch when there is one). For every
mini-batch it records: the sign of the drawn beta, how many of its images the free
phase leaves in a two-step cycle (settle gap > 0.5) and the largest gap, the Frobenius
norm of each weight matrix's change, and every matrix's rms after it. This is how a
C-VF collapse that an epoch-level metric only dates can be traced to its mini-batch.
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
from learning.data import load_mnist, minibatches  # noqa: E402


def replay(run: Path, epoch: int, start: Path | None = None, threshold: float = 0.5) -> dict:
    """Per-batch records of ``epoch`` (1-based), replayed from the checkpoint after ``epoch - 1``."""
    args = software_ep.run_args(run)
    net, model, rng = software_ep.build(args)
    start = start or run / "checkpoints" / f"epoch_{epoch - 1:03d}.npz"
    states = software_ep.load_weights(start, net)
    if states["epoch"] != epoch - 1:
        raise ValueError(f"{start} holds epoch {states['epoch']}; replaying epoch {epoch} needs epoch {epoch - 1}")
    rng.bit_generator.state = states["rng"]
    model.rng.bit_generator.state = states["model_rng"]
    betas = []
    draw = model._draw_beta

    def recorded_draw():
        b = draw()
        betas.append(b)
        return b

    model._draw_beta = recorded_draw
    x, y = load_mnist("train")
    x, y = x[:args.train], y[:args.train]
    eye = np.eye(10)
    mats = lambda: list(net.W) + [b for b in (net.back or []) if b is not None]   # noqa: E731
    rec = {"cycling": [], "max_gap": [], "dW": [], "rms": []}
    rms_start = [float(np.sqrt(np.mean(m.astype(float) ** 2))) for m in mats()]
    size = [m.size for m in mats()]
    for idx in minibatches(len(x), 20, rng):
        _, gap = sw.settle_gap(net, np.asarray(x[idx], dtype=net.dtype), args.T, mode=model.mode, eps=model.eps)
        before = [m.copy() for m in mats()]
        model.train_batch(x[idx], eye[y[idx]])
        rec["cycling"].append(int(np.sum(gap > threshold)))
        rec["max_gap"].append(float(gap.max()))
        rec["dW"].append([float(np.linalg.norm(m - b)) for m, b in zip(mats(), before)])
        rec["rms"].append([float(np.sqrt(np.mean(m.astype(float) ** 2))) for m in mats()])
    out = {k: np.asarray(v) for k, v in rec.items()}
    out["beta"] = np.asarray(betas)
    out["rms_start"], out["size"] = np.asarray(rms_start), np.asarray(size)
    end = run / "checkpoints" / f"epoch_{epoch:03d}.npz"
    if not end.exists() and software_ep.load_weights(run / "checkpoint.npz", software_ep.build(args)[0])["epoch"] == epoch:
        end = run / "checkpoint.npz"          # a run without kept checkpoints, replaying its last epoch
    if end.exists():        # the replay must be the run itself, or its records mean nothing
        with np.load(end) as ck:
            same = [np.array_equal(ck[f"W{n}"], w) for n, w in enumerate(net.W)]
            same += [np.array_equal(ck[f"back{n}"], b) for n, b in enumerate(net.back or []) if b is not None]
            out["exact"] = np.asarray(all(same))
    return out


def growth_by_kind(rec: dict, m: int) -> dict:
    """The change of matrix ``m``'s squared norm, summed over the mini-batches of each kind.

    ``m`` counts the forward matrices, then the backward ones.

    Kinds: with or without a cycling image, at +beta or at -beta. The four sums add
    up to the epoch's change; they split a runaway into the batches that drive it."""
    d = _norm_sq_changes(rec, m)
    cyc, pos = rec["cycling"] > 0, rec["beta"] > 0
    return {f"{'cycling' if c else 'settled'}, beta {'+' if b else '-'}": float(d[(cyc == c) & (pos == b)].sum())
            for c in (True, False) for b in (True, False)}


def _norm_sq_changes(rec: dict, m: int):
    """Per mini-batch: the change of matrix ``m``'s squared Frobenius norm."""
    size = rec["size"][m]
    return np.diff(np.concatenate([[rec["rms_start"][m] ** 2 * size], rec["rms"][:, m] ** 2 * size]))


def plot(rec: dict, m: int, out: Path, title: str = "", name: str | None = None):
    """Matrix ``m``'s rms, cycling images and the squared-norm growth by kind of batch, against the batch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    d = _norm_sq_changes(rec, m)
    cyc, pos = rec["cycling"] > 0, rec["beta"] > 0
    b = np.arange(len(d))
    fig, ax = plt.subplots(3, 1, figsize=(6.4, 7.0), sharex=True)
    ax[0].semilogy(b, rec["rms"][:, m], lw=1.0)
    ax[0].set(ylabel=f"rms of {name or f'matrix {m}'}", title=title)
    w = min(50, len(b))
    ax[1].plot(b, np.convolve(rec["cycling"], np.ones(w), mode="same"), lw=1.0)
    ax[1].set(ylabel=f"cycling images\n(per {w} batches)")
    for mask, label in ((cyc & pos, "cycling, +β"), (cyc & ~pos, "cycling, −β"), (~cyc, "no cycling image")):
        ax[2].plot(b, np.cumsum(np.where(mask, d, 0.0)), lw=1.0, label=label)
    ax[2].set(ylabel="cumulative change of |W|²", xlabel="mini-batch", yscale="symlog")
    ax[2].legend(fontsize=8)
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a run directory of scripts/software_ep.py")
    ap.add_argument("--epoch", type=int, required=True, help="the epoch to replay (1-based)")
    ap.add_argument("--from", dest="start", type=Path, default=None,
                    help="the checkpoint to start from (default: the run's checkpoints/epoch_{E-1}.npz)")
    ap.add_argument("--out", type=Path, required=True, help="write the per-batch records here (.npz)")
    ap.add_argument("--plot", type=Path, default=None, help="also draw the picked matrix's story here (.png)")
    ap.add_argument("--matrix", type=int, default=None,
                    help="the matrix whose squared-norm growth is split and drawn, counted over the forward "
                         "matrices then the backward ones (default: the top forward matrix)")
    args = ap.parse_args(argv)
    run_args = software_ep.run_args(args.run)
    top = len(run_args.hidden)                             # the top forward matrix's index
    # forward W0..W_top, then the untied backward B1..B_top (B0 does not exist: the input is clamped)
    n_matrices = top + 1 + (top if run_args.angle is not None else 0)
    picked = top if args.matrix is None else args.matrix
    if not 0 <= picked < n_matrices:
        raise SystemExit(f"--matrix {picked} is outside the allowed range [0, {n_matrices - 1}]")
    name = f"W{picked}" if picked <= top else f"B{picked - top}"
    rec = replay(args.run, args.epoch, args.start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **rec)
    rms_top = rec["rms"][:, top]
    jump = int(np.argmax(rec["dW"].max(axis=1)))
    print(f"epoch {args.epoch}: {len(rec['beta'])} mini-batches, {int((rec['cycling'] > 0).sum())} with a cycling "
          f"image; top-layer rms {rms_top[0]:.4f} -> {rms_top[-1]:.4f}; largest change at batch {jump} "
          f"(beta {rec['beta'][jump]:+g}, {rec['cycling'][jump]} cycling, |dW| {json.dumps(rec['dW'][jump].round(4).tolist())})"
          + ("" if "exact" not in rec else f"; replay equals the run: {bool(rec['exact'])}"))
    growth = growth_by_kind(rec, picked)
    print(f"change of {name}'s squared norm ({rec['rms_start'][picked]:.4f} -> {rec['rms'][-1, picked]:.4f} "
          "rms) by kind of mini-batch: " + ", ".join(f"{k} {v:+.3g}" for k, v in growth.items()))
    if args.plot:
        plot(rec, picked, args.plot, f"{args.run.name}, epoch {args.epoch}", name)


if __name__ == "__main__":
    main()
