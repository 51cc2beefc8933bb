"""How far apart are a tile's forward and transposed reads? (EP needs them to be transposes.)

For a 128 x 64 differential tile (thesis-like conductances, 1 uS..100 uS) the effective
weight matrices of the forward read (rows driven, columns sensed) and of the transposed
read (columns driven, rows sensed) are measured column by column, with 1 ohm wire segments
and several driver resistances; sensing is an ideal virtual ground. Reported: the relative
difference ||W_fwd - W_bwd^T|| / ||W_fwd|| and the relative change of W_fwd from the ideal
(G+ - G-) that the wires cause.

    python scripts/reciprocity.py
"""
from __future__ import annotations

import numpy as np

from crossbar.tile import Tile, Wires


def effective(tile):
    M, N = tile.shape
    fwd = tile.read_rows(np.eye(M)).outputs            # (M, N): response of column j to row i
    bwd = tile.read_cols(np.eye(N)).outputs            # (N, M): response of row i to column j
    return fwd, bwd.T


def main():
    rng = np.random.default_rng(0)
    gp, gm = rng.uniform(1e-6, 1e-4, (2, 128, 64))
    ideal = gp - gm
    print("| wire segment | row driver | column driver | fwd vs bwd^T | fwd vs ideal G+ - G- |")
    print("|---|---|---|---|---|")
    for r_seg, r_row, r_col in ((1.0, 0.0, 0.0), (1.0, 100.0, 100.0), (1.0, 100.0, 0.0), (1.0, 1e3, 0.0)):
        tile = Tile.from_pairs(gp, gm, wires=Wires(r_row_segment=r_seg, r_col_segment=r_seg,
                                                   r_row_driver=r_row, r_col_driver=r_col))
        fwd, bwdT = effective(tile)
        asym = np.linalg.norm(fwd - bwdT) / np.linalg.norm(fwd)
        drift = np.linalg.norm(fwd - ideal) / np.linalg.norm(ideal)
        print(f"| {r_seg:g} Ω | {r_row:g} Ω | {r_col:g} Ω | {asym:.2e} | {drift:.2e} |")


if __name__ == "__main__":
    main()
