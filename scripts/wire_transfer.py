"""A trained software net placed on the P-1h chip, ideal wires against 1 ohm wire segments.

    python scripts/wire_transfer.py runs/cep_software_s1_f32 --test 500 \
        --out results/wire_transfer/cep_s1.json

Training the 784-512-10 network through 1 ohm wires takes days per epoch here
(every read is a nodal solve of the 785 x 1026 tile, every row-by-row write
~1,600 of them; RESULTS.md). This measures what the wires do to a trained
network's inference instead. The weights of a tied ``scripts/software_ep.py`` run
are put on ``netlists/ep_p1h_ideal.net`` and on ``netlists/ep_p1h_wires.net`` (the
same chip with 1 ohm segments; ``--wired`` picks another, such as
``netlists/ep_p1h_wires_lowg.net`` with ten times lower conductances) as
differential pairs around each pair's own initial common mode,
G+- = g_mid +- w / (2 R_f v_read), or (``--g-floor``) with
the lower device of each pair at a floor, which draws the least line current for
the same weights. The conductances are set directly, as a perfect write-verify
would leave them, so that what is measured is the wires' effect on the reads,
not programming error. Then the first ``--test`` test images are settled for the
run's T steps on both chips and in software. Reported: each one's test error on
those images, how often the chips' answers agree with the software's, the largest
output difference, and the wired chip's settle time per image.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import circuits  # noqa: E402
import software_ep  # noqa: E402
from learning import ep_software as sw  # noqa: E402
from learning.data import load_mnist  # noqa: E402
from learning.ep import EPConfig, EquilibriumNetwork  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = {"ideal wires": ROOT / "netlists" / "ep_p1h_ideal.net", "1 ohm wires": ROOT / "netlists" / "ep_p1h_wires.net"}


def place_weights(chip, weights: list, g_floor: float | None = None):
    """Set each tile's pairs to ``weights`` (one per tile, in the chip's tile order).

    ``g_floor`` None: around each pair's own common mode, G+- = g_mid +- w / (2 k)
    (k = R_f v_read). A value, in S: the lower device of each pair at ``g_floor`` and
    the upper at g_floor + |w| / k, which draws the least current for the same weights.
    """
    state = chip.state_dict()
    for t, w in zip(chip.tiles, weights):
        g = state["arrays"][f"g/{t}"]
        if g[:, 0::2].shape != w.shape:
            raise ValueError(f"tile {t} holds {g[:, 0::2].shape} pairs; the weights are {w.shape}")
        k = chip.groups[chip.tile_groups(t)[1]].params.r_feedback * chip.settings.v_read
        w = np.asarray(w, dtype=float)
        if g_floor is None:
            mid, half = (g[:, 0::2] + g[:, 1::2]) / 2, w / (2 * k)
            if np.any(mid - np.abs(half) <= 0):
                raise ValueError(f"tile {t}: weights up to {np.abs(w).max():.3g} need pair conductances below 0 "
                                 f"around the common mode (|w| <= {2 * k * mid.min():.3g})")
            g[:, 0::2], g[:, 1::2] = mid + half, mid - half
        else:
            g[:, 0::2], g[:, 1::2] = g_floor + np.maximum(w, 0) / k, g_floor + np.maximum(-w, 0) / k
    chip.load_state_dict(state)


def transfer(run: Path, x, labels, netlists=NETLISTS, g_floor: float | None = None) -> dict:
    """Errors and agreements of the run's net in software and on each chip of ``netlists``."""
    args = software_ep.run_args(run)
    net, _, _ = software_ep.build(args)
    software_ep.load_weights(run / "checkpoint.npz", net)
    if net.back is not None:
        raise SystemExit(f"{run} trains untied weights; the P-1h chip's tiles are bidirectional (tied)")
    st, _ = sw.settle(net, x.astype(net.dtype), args.T)
    soft = np.argmax(st.a[-1], axis=1)
    out = {"run": str(run), "images": len(x), "T": args.T, "g_floor": g_floor,
           "netlists": {name: str(path) for name, path in netlists.items()},
           "software_error": float(np.mean(soft != labels))}
    for name, path in netlists.items():
        chip = circuits.load(path)
        place_weights(chip, [w.astype(float) for w in net.W], g_floor)
        ep = EquilibriumNetwork(chip)
        t0 = time.perf_counter()
        a_out = ep.free_outputs(x, EPConfig(T=args.T))
        seconds = time.perf_counter() - t0
        pred = np.argmax(a_out, axis=1)
        out[name] = {"error": float(np.mean(pred != labels)), "agrees_with_software": float(np.mean(pred == soft)),
                     "largest_output_difference": float(np.abs(a_out - st.a[-1]).max()),
                     "seconds_per_image": seconds / len(x)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a tied 784-512-10 run of scripts/software_ep.py")
    ap.add_argument("--test", type=int, default=500, help="test images (the first ones)")
    ap.add_argument("--g-floor", type=float, default=None,
                    help="put each pair's lower device at this conductance, S, and the upper at floor + |w| / k "
                         "(default: around each pair's initial common mode)")
    ap.add_argument("--wired", type=Path, default=NETLISTS["1 ohm wires"],
                    help="the wired chip's netlist (default: %(default)s; netlists/ep_p1h_wires_lowg.net is the "
                         "same chip with ten times lower conductances)")
    ap.add_argument("--out", type=Path, default=None, help="write the result here (.json)")
    args = ap.parse_args(argv)
    if args.g_floor is not None and not args.g_floor > 0:
        raise SystemExit(f"--g-floor {args.g_floor} is outside the allowed range (0, inf) S")
    if not args.wired.is_file():
        raise SystemExit(f"--wired {args.wired}: no such netlist")
    x, labels = load_mnist("test")
    netlists = {**NETLISTS, "1 ohm wires": args.wired}
    r = transfer(args.run, x[:args.test], labels[:args.test], netlists, g_floor=args.g_floor)
    placement = "around the initial common mode" if args.g_floor is None else f"from a floor of {args.g_floor:g} S"
    print(f"{r['images']} test images, T = {r['T']}, pairs {placement}: software {100 * r['software_error']:.2f} %")
    for name in netlists:
        c = r[name]
        print(f"  {name}: {100 * c['error']:.2f} % (agrees with software on {100 * c['agrees_with_software']:.1f} %, "
              f"largest output difference {c['largest_output_difference']:.3g}, {c['seconds_per_image']:.3f} s per image)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
