"""Demo of the physical core: build a crossbar, read it through resistive wires,
program a pattern into it with V/2 pulses computed through the circuit, and plot.

    python scripts/demo.py --out runs/demo

Later issues replace this with hardware-in-the-loop training (scripts/train.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from crossbar.devices import ExponentialDevice  # noqa: E402
from crossbar.program import apply_pulse, half_select  # noqa: E402
from crossbar.tile import Tile, Wires  # noqa: E402


def pattern(n):
    """A ring and a cross: the conductance pattern to write (True = high)."""
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(x, y)
    return (np.abs(r - 0.35 * n) < 0.08 * n) | (np.abs(x) < 0.06 * n) | (np.abs(y) < 0.06 * n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo", help="output folder")
    ap.add_argument("--size", type=int, default=32, help="rows = columns of the tile")
    ap.add_argument("--r-wire", type=float, default=2.0, help="wire resistance per segment, ohm")
    ap.add_argument("--v-write", type=float, default=1.6, help="full-select write voltage, V")
    ap.add_argument("--pulses", type=int, default=12, help="SET pulses per row")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    n = args.size
    device = ExponentialDevice(beta_p=3.0, beta_d=3.0, eps_intra=2e-3, eps_inter=0.2)
    arrays = device.sample((n, n), rng)
    wires = Wires(r_row_segment=args.r_wire, r_col_segment=args.r_wire, r_row_driver=10.0, r_col_driver=10.0)
    tile = Tile(np.full((n, n), device.g_min), wires=wires)
    target = pattern(n)

    # program row by row: the row at +V/2, the columns to SET at -V/2, every other line at 0 V
    g_before = tile.g.copy()
    v_half = []
    energy = 0.0
    for i in tqdm(range(n), desc="programming rows", unit="row"):
        cols = np.flatnonzero(target[i])
        if cols.size == 0:
            continue
        row_v, col_v = half_select(n, n, i, cols, args.v_write)
        for _ in range(args.pulses):
            rep = apply_pulse(tile, device, arrays, row_v, col_v, device.dt_max / 20, rng)
            energy += rep.energy
        sel = np.zeros((n, n), bool)
        sel[i, cols] = True
        v_half.append(rep.v_device[~sel & ((np.arange(n)[:, None] == i) | target[i][None, :])])
    v_half = np.concatenate(v_half)
    moved_off_target = np.count_nonzero((tile.g != g_before) & ~target)

    # read: one input vector per row (a unit read voltage), with ideal and with resistive wires
    v_read = 0.2
    ideal = Tile(tile.g.copy())
    eye = np.eye(n) * v_read
    g_eff_ideal = ideal.read_rows(eye).outputs / v_read
    read = tile.read_rows(eye)
    g_eff_wired = read.outputs / v_read
    kcl = read.solution.kcl_residual()["relative"]
    ir_loss = 1 - g_eff_wired.sum() / g_eff_ideal.sum()

    fig, ax = plt.subplots(2, 2, figsize=(10, 8.5))
    for a, data, title in ((ax[0, 0], tile.g * 1e6, "programmed conductance G (µS)"),
                           (ax[0, 1], g_eff_wired * 1e6, f"read through {args.r_wire:g} Ω wires (µS)")):
        im = a.imshow(data, cmap="viridis")
        a.set_title(title)
        fig.colorbar(im, ax=a)
    im = ax[1, 0].imshow((g_eff_wired - g_eff_ideal) / g_eff_ideal.max() * 100, cmap="magma")
    ax[1, 0].set_title("IR drop: read error (% of max G)")
    fig.colorbar(im, ax=ax[1, 0])
    ax[1, 1].hist(v_half, bins=40, color="tab:blue")
    ax[1, 1].axvline(device.v_set, color="tab:red", ls="--", label=f"SET threshold {device.v_set:g} V")
    ax[1, 1].set_xlabel("voltage across half-selected devices (V)")
    ax[1, 1].set_title(f"V/2 half-select: {moved_off_target} off-target devices moved")
    ax[1, 1].legend()
    fig.suptitle(f"{n}×{n} passive crossbar, exponential devices (β = 3), V_write = {args.v_write:g} V")
    fig.tight_layout()
    png = out / "demo.png"
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")
    print(f"programming energy {energy * 1e9:.3f} nJ; half-selected devices saw at most {v_half.max():.3f} V "
          f"(threshold {device.v_set:g} V); off-target devices moved: {moved_off_target}")
    print(f"read through wires loses {ir_loss * 100:.2f}% of the ideal column current; KCL residual {kcl:.1e}")


if __name__ == "__main__":
    main()
