"""The result of a tile solve: every node voltage and branch current, and physics checks."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Solution:
    """Node voltages and branch currents of a crossbar tile, for K right-hand sides.

    All arrays have a leading batch axis K. Node naming (also used by the SPICE
    export): row-wire node (i, j) is ``r{i}_{j}``, column-wire node ``c{i}_{j}``.
    With ideal wires every node of a line has the same voltage and the arrays
    are broadcast views.

    Attributes
    ----------
    v_row, v_col : (K, M, N) V
        Row- and column-wire node voltages at each crosspoint.
    i_cell : (K, M, N) A
        Current through each cell, from its row node to its column node.
    i_row_end : (K, M) A
        Current entering each row line from its terminal.
    i_col_end : (K, N) A
        Current leaving each column line into its terminal.
    g_row, g_col : (M, N) S or None
        Packed line conductances (see :mod:`crossbar.linesolve`); None for ideal wires.
    row_end_v, col_end_v : (K, M), (K, N) V
        Voltages of the Norton sources at the line ends (NaN where floating).
    row_end_g, col_end_g : (M,), (N,) S
        Conductance between each Norton source and the first/last crosspoint node
        (inf: held exactly; 0: floating).
    cell_law : callable
        ``v_cell -> i_cell``, used to compute ``i_cell`` lazily.
    iterations : int
        Conjugate-gradient iterations (summed over Newton steps); 0 for direct paths.
    newton_steps : int
    """

    v_row: np.ndarray
    v_col: np.ndarray
    i_cell_: np.ndarray | None
    i_row_end: np.ndarray
    i_col_end: np.ndarray
    row_end_v: np.ndarray
    col_end_v: np.ndarray
    row_end_g: np.ndarray
    col_end_g: np.ndarray
    g_row: np.ndarray | None = None
    g_col: np.ndarray | None = None
    iterations: int = 0
    newton_steps: int = 0
    cell_law: object = None
    info: dict = field(default_factory=dict)

    @property
    def i_cell(self) -> np.ndarray:
        """(K, M, N) A, computed on first use when the solve did not need it (ideal wires)."""
        if self.i_cell_ is None:
            self.i_cell_ = self.cell_law(self.v_row - self.v_col)
        return self.i_cell_

    @property
    def shape(self):
        return self.v_row.shape

    # ---------------------------------------------------------------- branch currents
    def i_row_segment(self) -> np.ndarray:
        """(K, M, N) current in row segment j flowing towards larger j.

        Segment 0 joins the terminal to crosspoint 0, so ``[..., 0] == i_row_end``.
        With ideal wires the current is obtained from KCL along the line.
        """
        if self.g_row is None:
            # the current entering crosspoint j from the left: end current minus the cells before j
            before = np.cumsum(self.i_cell, axis=2) - self.i_cell
            return self.i_row_end[:, :, None] - before
        out = np.empty(self.shape)
        out[:, :, 0] = self.i_row_end
        out[:, :, 1:] = self.g_row[:, 1:] * (self.v_row[:, :, :-1] - self.v_row[:, :, 1:])
        return out

    def i_col_segment(self) -> np.ndarray:
        """(K, M, N) current in the column segment below crosspoint (i, j), flowing down.

        The segment below row M-1 joins the line to its terminal, so
        ``[:, M-1, :] == i_col_end``.
        """
        if self.g_col is None:
            # KCL down the line; the last segment carries the measured end current, so
            # kcl_residual compares it with the sum of the cell currents
            out = np.cumsum(self.i_cell, axis=1)
            out[:, -1, :] = self.i_col_end
            return out
        out = np.empty(self.shape)
        out[:, :-1, :] = self.g_col[:-1] * (self.v_col[:, :-1, :] - self.v_col[:, 1:, :])
        out[:, -1, :] = self.i_col_end
        return out

    # ---------------------------------------------------------------- physics checks
    def kcl_residual(self) -> dict:
        """Largest current imbalance over all nodes (A) and relative to the largest branch current."""
        ir = self.i_row_segment()
        ic = self.i_col_segment()
        nxt = np.zeros_like(ir)
        nxt[:, :, :-1] = ir[:, :, 1:]
        res_row = ir - nxt - self.i_cell
        above = np.zeros_like(ic)
        above[:, 1:, :] = ic[:, :-1, :]
        res_col = above + self.i_cell - ic
        worst = max(np.abs(res_row).max(initial=0.0), np.abs(res_col).max(initial=0.0))
        scale = max(np.abs(ir).max(initial=0.0), np.abs(ic).max(initial=0.0),
                    np.abs(self.i_cell).max(initial=0.0), 1e-300)
        return {"max_abs": float(worst), "relative": float(worst / scale)}

    def power_balance(self) -> dict:
        """Power delivered by the terminal sources against power dissipated in the tile.

        Dissipation is counted in the cells (``i v``), the wire segments and the
        series resistance of the terminations. Returns W per right-hand side.
        """
        vr = np.nan_to_num(self.row_end_v)
        vc = np.nan_to_num(self.col_end_v)
        p_src = (vr * self.i_row_end).sum(axis=1) - (vc * self.i_col_end).sum(axis=1)
        v_cell = self.v_row - self.v_col
        p_cells = (self.i_cell * v_cell).sum(axis=(1, 2))
        p_ends = np.zeros_like(p_src)
        for i_end, g in ((self.i_row_end, self.row_end_g), (self.i_col_end, self.col_end_g)):
            ok = np.isfinite(g) & (g > 0)
            p_ends += (i_end[:, ok] ** 2 / g[ok]).sum(axis=1)
        p_wires = np.zeros_like(p_src)
        if self.g_row is not None:
            p_wires += (self.g_row[:, 1:] * (self.v_row[:, :, 1:] - self.v_row[:, :, :-1]) ** 2).sum(axis=(1, 2))
            p_wires += (self.g_col[:-1] * (self.v_col[:, 1:] - self.v_col[:, :-1]) ** 2).sum(axis=(1, 2))
        p_diss = p_cells + p_ends + p_wires
        scale = np.maximum(np.abs(p_src), 1e-300)
        return {"p_sources": p_src, "p_cells": p_cells, "p_wires": p_wires, "p_terminations": p_ends,
                "p_dissipated": p_diss, "relative_error": np.abs(p_src - p_diss) / scale}
