"""Hardware-in-the-loop training of a discriminative RBM on MNIST, from a netlist.

Every weight update is a pulse schedule sent to the simulated chip; the rule
sees only what the chip's neurons measure. The run writes, in ``--out``:

- ``run.h5``: per-device conductance histories, pulse counts, per-epoch metrics,
  provenance and a checkpoint after every epoch (``scripts/inspect_run.py`` reads it);
- ``learning_curve.png``, ``conductances.png`` (histograms through training),
  ``features.png`` (hidden units' weights as 28x28 images, thesis Fig. 2.2),
  ``pulse_widths.png`` (the RProp width distribution, RProp only).

Interrupt it (Ctrl-C) or kill it and run the same command with ``--resume``:
it continues from the last completed epoch.

    python scripts/train.py netlists/drbm_small.net --out runs/drbm
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import circuits  # noqa: E402
from circuits.history import History, read_checkpoint  # noqa: E402
from learning.data import binarise, minibatches, thesis_split  # noqa: E402
from learning.rbm import DRBM  # noqa: E402
from learning.updates import Cst, Proportional, RProp  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("netlist", help="netlist of the chip (one bidirectional visible-hidden tile)")
    ap.add_argument("--out", default="runs/train", help="output folder")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train", type=int, default=5000, help="training images (thesis: 40000)")
    ap.add_argument("--test", type=int, default=1000, help="test images (thesis: 10000)")
    ap.add_argument("--batch", type=int, default=100, help="mini-batch size (thesis: 100)")
    ap.add_argument("--chains", type=int, default=1, help="parallel CD chains per sample (thesis: 1 or 20)")
    ap.add_argument("--policy", choices=("cst", "rprop", "proportional"), default="cst",
                    help="proportional: widths = --scale x statistic (the software baseline, with an ideal device)")
    ap.add_argument("--scale", type=float, default=2.5e-5, help="seconds of pulse per count (proportional)")
    ap.add_argument("--width", type=float, default=None,
                    help="pulse width (RProp: initial and largest width), s; default: the drivers' dt_max")
    ap.add_argument("--tile", default=None, help="tile to train (default: the only one)")
    ap.add_argument("--seed", type=int, default=None, help="overrides the netlist's .seed")
    ap.add_argument("--eval-every", type=int, default=1, help="evaluate every this many epochs (and at the end)")
    ap.add_argument("--eval-train", type=int, default=None,
                    help="training images used for the training error (default: as many as --test)")
    ap.add_argument("--record", default="2000", help="devices with full traces per tile: a number or 'all'")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    h5 = out / "run.h5"
    chip = circuits.load(args.netlist, seed=args.seed)
    tile = args.tile or chip.tiles[0]
    model = DRBM(chip, tile)
    width = args.width if args.width is not None else chip.pulse_limits[1]
    shape = chip.tile_shape(tile)
    limits = chip.pulse_limits
    if args.policy == "proportional":
        policy = Proportional(args.scale, limits=limits)
    elif not np.isfinite(width):
        sys.exit("give --width: the netlist's drivers have no dt_max")
    else:
        policy = Cst(width, limits=limits) if args.policy == "cst" else RProp(shape, width, limits=limits)

    split = thesis_split()
    x_train = binarise(split.train_images[:args.train])
    y_train = split.train_labels[:args.train]
    x_test = binarise(split.test_images[:args.test])
    y_test = split.test_labels[:args.test]
    rng = np.random.default_rng([chip.seed or 0, 1])   # data order: its own stream
    metrics = {"epoch": [], "test_error": [], "train_error": [], "reconstruction": [], "energy_J": [],
               "programming_time_s": [], "pulses": [], "seconds": []}

    start_epoch = 0
    record = "all" if args.record == "all" else int(args.record)
    if args.resume and h5.exists():
        ckpt = read_checkpoint(h5)
        if ckpt is None:
            sys.exit(f"{h5} holds no checkpoint yet: start without --resume")
        state, meta = ckpt
        chip.load_state_dict({"arrays": _unpack(state, "chip"), "rng": meta["chip_rng"],
                              "counters": meta["counters"]})
        policy.load_state_dict(_unpack(state, "policy") | meta["policy"])
        rng.bit_generator.state = meta["data_rng"]
        metrics = meta["metrics"]
        start_epoch = meta["epoch"] + 1
        writer = chip.record_to(h5, record=record, mode="a", rewind=True)
        print(f"resuming after epoch {meta['epoch'] + 1}")
    else:
        writer = chip.record_to(h5, record=record)

    with writer:
        for epoch in range(start_epoch, args.epochs):
            t0 = time.perf_counter()
            energy = prog_time = 0.0
            pulses = 0
            recon = []
            batches = list(minibatches(len(x_train), args.batch, rng))
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
            for idx in bar:
                v0 = model.visible_vector(x_train[idx], y_train[idx])
                stats, report = model.train_batch(v0, policy, chains=args.chains)
                recon.append(stats.reconstruction_error)
                if report is not None:
                    energy += report.energy
                    prog_time += report.time
                    pulses += int(report.pulses.sum())
                bar.set_postfix(recon=f"{np.mean(recon[-20:]):.4f}")
            if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
                n_tr = args.eval_train or args.test
                test_err = model.error_rate(x_test, y_test)
                train_err = model.error_rate(x_train[:n_tr], y_train[:n_tr])
            else:
                test_err = train_err = float("nan")
            for k, v in (("epoch", epoch + 1), ("test_error", test_err), ("train_error", train_err),
                         ("reconstruction", float(np.mean(recon))), ("energy_J", energy),
                         ("programming_time_s", prog_time), ("pulses", pulses),
                         ("seconds", time.perf_counter() - t0)):
                metrics[k].append(v)
            writer.metrics(epoch + 1, **{k: v[-1] for k, v in metrics.items() if k != "epoch"})
            save_checkpoint(writer, chip, policy, rng, metrics, epoch)
            print(f"epoch {epoch + 1}: test error {test_err * 100:.2f}%, train error {train_err * 100:.2f}%, "
                  f"{pulses} pulses, programming energy {energy:.3g} J (device units), "
                  f"{metrics['seconds'][-1]:.1f} s", flush=True)
    plots(out, h5, chip, tile, model, policy, metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"wrote {h5} and plots in {out}")


def _pack(prefix, arrays):
    """Checkpoint names are flat: 'chip/g/w' is stored as 'chip..g..w'."""
    return {"..".join([prefix, *k.split("/")]): v for k, v in arrays.items()}


def _unpack(state, prefix):
    return {k[len(prefix) + 2:].replace("..", "/"): v for k, v in state.items() if k.startswith(prefix + "..")}


def save_checkpoint(writer, chip, policy, rng, metrics, epoch):
    state = chip.state_dict()
    arrays = _pack("chip", state["arrays"])
    pstate = policy.state_dict()
    arrays.update(_pack("policy", {k: v for k, v in pstate.items() if isinstance(v, np.ndarray)}))
    meta = {"epoch": epoch, "chip_rng": state["rng"], "counters": state["counters"], "data_rng": rng.bit_generator.state,
            "metrics": metrics, "policy": {k: v for k, v in pstate.items() if not isinstance(v, np.ndarray)}}
    writer.checkpoint(arrays, json.loads(json.dumps(meta, default=_jsonable)))


def _jsonable(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(type(x))


def plots(out, h5, chip, tile, model, policy, metrics):
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.array(metrics["epoch"])
    for key, style, label in (("test_error", "o-", "test"), ("train_error", "s--", "train")):
        err = np.array(metrics[key], dtype=float)
        ok = np.isfinite(err)            # epochs without an evaluation are skipped
        ax.plot(epochs[ok], err[ok] * 100, style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.legend()
    ax.set_title("DRBM trained through pulses")
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=110)
    plt.close(fig)

    with History(h5) as hist:
        counts, edges = hist.histograms(tile)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if len(counts):
            im = ax.imshow(np.asarray(counts).T, aspect="auto", origin="lower", cmap="magma",
                           extent=[0, len(counts), edges[0], edges[-1]])
            fig.colorbar(im, ax=ax, label="devices")
        ax.set_xlabel("programming event")
        ax.set_ylabel("conductance (S)")
        ax.set_title(f"tile {tile}: conductance histogram through training")
        fig.tight_layout()
        fig.savefig(out / "conductances.png", dpi=110)
        plt.close(fig)

    # hidden features: weights measured as an instrument would (row by row at v_read)
    g = chip.measure_conductance(tile)
    w = g[:, 0::2] - g[:, 1::2]
    n_show = min(64, model.n_hidden)
    side = int(np.ceil(np.sqrt(n_show)))
    fig, axes = plt.subplots(side, side, figsize=(side, side))
    for k, a in enumerate(np.ravel(axes)):
        a.axis("off")
        if k < n_show and model.n_pixels == 784:
            a.imshow(w[:784, k].reshape(28, 28), cmap="RdBu_r")
    fig.suptitle("hidden units' input weights (measured G+ - G-)")
    fig.savefig(out / "features.png", dpi=110)
    plt.close(fig)

    if isinstance(policy, RProp):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.hist(policy.widths.ravel() / policy.width0, bins=60)
        ax.set_xlabel("RProp pulse width / initial width")
        ax.set_ylabel("devices")
        fig.tight_layout()
        fig.savefig(out / "pulse_widths.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
