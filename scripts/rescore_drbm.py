"""Score trained DRBM runs both ways: 40 x 2 Gibbs chains and lowest free energy.

The thesis' text classifies with clamped Gibbs chains (40 chains x 2 steps); its code
(ernoult/mem-RBM, ``gradient_DRBM2.m``, the ``'det'`` branch used for its tables) picks the
label of lowest free energy. ``scripts/train.py`` reports both for runs made since the
free-energy scoring existed; this script scores runs made before, from the last checkpoint
in their history: the chip is rebuilt from the netlist text and seed stored in the history,
its conductances are restored, and the test images are scored through chip reads.

    python scripts/rescore_drbm.py runs/d2d_shared runs/d2d_shared_s1 --test 10000
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from circuits import build_chip, parse_netlist  # noqa: E402
from circuits.history import History, read_checkpoint  # noqa: E402
from learning.rbm import DRBM  # noqa: E402
from train import _binary_mnist, _unpack  # noqa: E402


def rescore(run: Path, n_test: int, chains: int) -> dict:
    h5 = run / "run.h5"
    with History(h5) as hist:
        prov = hist.provenance
    ckpt = read_checkpoint(h5)
    if ckpt is None:
        sys.exit(f"{h5} holds no checkpoint")
    state, meta = ckpt
    chip = build_chip(parse_netlist(prov["netlist"], str(h5)), seed=prov["seed"])
    chip.load_state_dict({"arrays": _unpack(state, "chip"), "rng": meta["chip_rng"], "counters": meta["counters"]})
    model = DRBM(chip, chip.tiles[0])
    _, _, x, y = _binary_mnist(argparse.Namespace(train=0, test=n_test), model.n_pixels)
    return {"run": str(run), "epochs": meta["epoch"] + 1,
            "test_error_gibbs": model.error_rate(x, y, chains=chains),
            "test_error_free_energy": model.error_rate(x, y, method="free-energy")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="output folders of scripts/train.py DRBM runs")
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--chains", type=int, default=40)
    args = ap.parse_args(argv)
    rows = []
    for run in args.runs:
        rows.append(rescore(run, args.test, args.chains))
        r = rows[-1]
        print(f"{r['run']}: {r['epochs']} epochs, Gibbs {r['test_error_gibbs'] * 100:.2f}%, "
              f"free energy {r['test_error_free_energy'] * 100:.2f}%", flush=True)
    return rows


if __name__ == "__main__":
    main()
