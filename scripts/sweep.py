"""Pulse-width sweeps of the DRBM on Dask: width × device setting × update policy × chains × trials.

Every task trains one DRBM through pulses, as scripts/train.py does, and returns its test
error. A ``dask.distributed.LocalCluster`` runs the tasks on this machine by default; with
``--scheduler tcp://host:8786`` the same sweep runs on a real cluster (every worker needs
this package installed). The sweep writes ``results.csv``, ``results.md`` (median and
quartiles per setting) and ``sweep.png`` (``results_partial.csv`` grows run by run while it
works, so an interrupted sweep keeps what it measured): test error against dt/dt_max, median with the
interquartile range, one curve per setting (the thesis' Fig. 2.3/2.5 style).

    python scripts/sweep.py netlists/drbm_mnist.net --widths 1e-4 1e-3 1e-2 --betas 0.005 3 \\
        --trials 3 --epochs 30 --train 40000 --test 10000 --out runs/sweep

Widths are given as fractions of the device's dt_max. ``--betas`` overrides the device
model's non-linearity (beta_p = beta_d = beta, with C re-derived from dt_max, as in the thesis).
"""
from __future__ import annotations

import os

# Before numpy loads OpenBLAS, which reads this once: its idle threads then sleep at once
# instead of spinning for 2^28 cycles after each product, on the cores the numba kernels
# need between products (a DRBM mini-batch: 24-36 ms spinning, 14-17 ms not; BENCHMARKS.md).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse
import csv
import dataclasses
import itertools
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402


def run_trial(netlist_path, *, beta, width_frac, policy, chains, trial, epochs, n_train, n_test, batch,
              scoring="free-energy"):
    """Train one DRBM and return its final errors (runs in a Dask worker)."""
    import circuits
    from circuits.build import build_chip
    from learning.data import binarise, minibatches, thesis_split
    from learning.rbm import DRBM
    from learning.updates import Cst, RProp

    net = circuits.read_netlist(netlist_path)
    net = override_device(net, beta=beta, width_frac=width_frac)
    chip = build_chip(net, seed=1000 + trial)
    tile = chip.tiles[0]
    model = DRBM(chip, tile)
    width = chip.pulse_limits[1]
    pol = Cst(width, limits=chip.pulse_limits) if policy == "cst" else \
        RProp(chip.tile_shape(tile), width, limits=chip.pulse_limits)
    split = thesis_split()
    x, y = binarise(split.train_images[:n_train]), split.train_labels[:n_train]
    rng = np.random.default_rng([trial, 7])
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in minibatches(len(x), batch, rng):
            model.train_batch(model.visible_vector(x[idx], y[idx]), pol, chains=chains)
    test = model.error_rate(binarise(split.test_images[:n_test]), split.test_labels[:n_test], method=scoring)
    return dict(beta=beta, width_frac=width_frac, policy=policy, chains=chains, trial=trial, epochs=epochs,
                n_train=n_train, n_test=n_test, scoring=scoring, test_error=test, seconds=time.perf_counter() - t0,
                dropped_pulses=pol.n_dropped)


def override_device(net, *, beta, width_frac):
    """The netlist with every exponential device at ``beta`` and drivers pulsing width_frac * dt_max."""
    models = {}
    dt_max = None
    for name, card in net.models.items():
        if card.type == "exponential":
            params = dict(card.params, beta_p=beta, beta_d=beta, preset="none")
            card = dataclasses.replace(card, params=params)
            dt_max = params["dt_max"]
        models[name] = card
    if dt_max is None:
        raise SystemExit("the sweep needs a netlist with an exponential device model")
    program = net.program
    params = dict(program.params if program else {}, dt_min=0.0, dt_max=width_frac * dt_max)
    program = dataclasses.replace(program, params=params) if program else None
    return dataclasses.replace(net, models=models, program=program)


def summarise(rows):
    keyf = lambda r: (r["beta"], r["policy"], r["chains"], r["width_frac"])  # noqa: E731
    out = []
    for key, grp in itertools.groupby(sorted(rows, key=keyf), key=keyf):
        errs = np.array([r["test_error"] for r in grp])
        q1, med, q3 = np.percentile(errs, [25, 50, 75])
        out.append(dict(zip(("beta", "policy", "chains", "width_frac"), key), median=med, q1=q1, q3=q3, n=len(errs)))
    return out


def plot(summary, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    setting = lambda s: (s["beta"], s["policy"], s["chains"])  # noqa: E731
    for key, grp in itertools.groupby(sorted(summary, key=setting), key=setting):
        grp = sorted(grp, key=lambda s: s["width_frac"])
        w = np.array([s["width_frac"] for s in grp])
        med = np.array([s["median"] for s in grp]) * 100
        lo = np.array([s["q1"] for s in grp]) * 100
        hi = np.array([s["q3"] for s in grp]) * 100
        line, = ax.plot(w, med, "o-", label=f"β={key[0]:g}, {key[1]}, {key[2]} chain{'s' * (key[2] > 1)}")
        ax.fill_between(w, lo, hi, color=line.get_color(), alpha=0.2)
    for level in (10, 20):                  # the thesis' usable-range thresholds
        ax.axhline(level, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("Δt / Δt_max")
    ax.set_ylabel("test error (%)")
    ax.legend(fontsize=8)
    ax.set_title("DRBM test error against pulse width (median, quartiles)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None, client=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("netlist", nargs="?", help="a DRBM netlist with an exponential device model")
    ap.add_argument("--widths", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2],
                    help="pulse widths as fractions of the device's dt_max")
    ap.add_argument("--betas", type=float, nargs="+", default=[0.005])
    ap.add_argument("--policies", nargs="+", choices=("cst", "rprop"), default=["cst"])
    ap.add_argument("--chains", type=int, nargs="+", default=[1])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--train", type=int, default=40000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--scoring", choices=("free-energy", "gibbs"), default="free-energy",
                    help="test error by lowest free energy (the thesis code's scoring; deterministic, one read "
                         "per label) or by 40 x 2 Gibbs chains (the thesis text's; ~10x the cost)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--from-csv", default=None,
                    help="run nothing: rebuild the table and plot in --out from a results(_partial).csv")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_csv:
        return write_outputs(read_rows(args.from_csv), out)
    if args.netlist is None:
        ap.error("give a netlist (or --from-csv)")
    from dask.distributed import Client, LocalCluster, as_completed
    own = client is None
    if own:
        # one thread per worker process for numba and BLAS: their thread pools spin-wait, and
        # two pools per core slow each task down many times over
        single = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        client = Client(args.scheduler) if args.scheduler else \
            Client(LocalCluster(n_workers=args.workers, threads_per_worker=1, env=single))
    try:
        # trial-major order: workers take tasks roughly as submitted, so a sweep stopped early has
        # covered every setting with fewer trials rather than a few settings with all of them
        tasks = [dict(beta=b, width_frac=w, policy=p, chains=c, trial=t, epochs=args.epochs, n_train=args.train,
                      n_test=args.test, batch=args.batch, scoring=args.scoring)
                 for t, b, w, p, c in itertools.product(range(args.trials), args.betas, args.widths, args.policies,
                                                        args.chains)]
        futures = [client.submit(run_trial, str(Path(args.netlist).resolve()), pure=False, **kw) for kw in tasks]
        rows = []
        # every finished run is appended at once, so an interrupted sweep keeps what it measured
        with open(out / "results_partial.csv", "w", newline="") as partial:
            writer = None
            for fut in tqdm(as_completed(futures), total=len(futures), desc="sweep", unit="run"):
                rows.append(fut.result())
                if writer is None:
                    writer = csv.DictWriter(partial, fieldnames=list(rows[0]))
                    writer.writeheader()
                writer.writerow(rows[-1])
                partial.flush()
    finally:
        if own:
            client.close()
    return write_outputs(rows, out)


def write_outputs(rows, out: Path):
    """results.csv, results.md (medians, quartiles and usable ranges) and sweep.png from the runs' rows."""
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: (r["beta"], r["policy"], r["chains"], r["width_frac"], r["trial"])))
    summary = summarise(rows)
    lines = ["| β | policy | chains | Δt/Δt_max | test error median | quartiles | trials |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {s['beta']:g} | {s['policy']} | {s['chains']} | {s['width_frac']:g} | {s['median'] * 100:.2f}% | "
              f"{s['q1'] * 100:.2f}–{s['q3'] * 100:.2f}% | {s['n']} |" for s in summary]
    lines += ["", "Usable range (the thesis' measure): the widths swept whose median test error is below "
              "the threshold.", "", "| β | policy | chains | < 10 % | < 20 % |", "|---|---|---|---|---|"]
    for key, rng10, rng20 in usable_ranges(summary):
        lines.append(f"| {key[0]:g} | {key[1]} | {key[2]} | {rng10} | {rng20} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(summary, out / "sweep.png")
    print("\n".join(lines))
    return summary


def usable_ranges(summary):
    """Per setting, the smallest and largest swept width with median error below 10 % and below 20 %."""
    setting = lambda s: (s["beta"], s["policy"], s["chains"])  # noqa: E731
    for key, grp in itertools.groupby(sorted(summary, key=setting), key=setting):
        grp = list(grp)

        def span(limit):
            ok = [s["width_frac"] for s in grp if s["median"] < limit]
            return f"[{min(ok):g}, {max(ok):g}]" if ok else "none"
        yield key, span(0.10), span(0.20)


def read_rows(path):
    """Rows of a results(_partial).csv, typed as run_trial returns them."""
    types = dict(beta=float, width_frac=float, chains=int, trial=int, epochs=int, n_train=int, n_test=int,
                 test_error=float, seconds=float, dropped_pulses=int)
    with open(path, newline="") as f:
        return [{k: types.get(k, str)(v) for k, v in r.items()} for r in csv.DictReader(f)]


if __name__ == "__main__":
    main()
