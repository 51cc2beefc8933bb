"""A crossbar tile: the array of devices, its wires, access devices and line terminals.

Geometry. The tile has M rows and N logical columns. Rows are driven or sensed
at their left end, columns at their bottom end. Between a terminal and the
first crosspoint, and between neighbouring crosspoints, each line has one wire
segment. With ``pairs=True`` every logical column is a differential pair of
physical columns, interleaved (physical 2j holds G+, 2j+1 holds G-), so a
weight is ``G+ - G-``; reads subtract the pair's outputs and transposed reads
drive the pair with ``+v`` and ``-v``.

The conductance array is the device state. Only the hardware layer (device
programming in :mod:`crossbar.program`) changes it; learning rules see a tile
only through reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .cells import LinearIV, Passive, is_linear, linear_conductance
from .checks import check_range
from .errors import ParameterError
from .solution import Solution
from .solve import SolverOptions, solve_crossbar
from .terminals import TIA, LoadResistor, OpAmpInput, VirtualGround, driver_conductance


@dataclass(frozen=True)
class Wires:
    """Wire and driver resistances of a tile, in ohm.

    Segment resistances are scalars or arrays of the physical shape (M, N_phys):
    ``r_row_segment[i, j]`` leads into crosspoint (i, j) from the left (j = 0:
    from the row terminal); ``r_col_segment[i, j]`` leaves (i, j) downwards
    (i = M-1: to the column terminal). All zero means ideal wires.
    """

    r_row_segment: float | np.ndarray = 0.0
    """Row wire resistance per segment, ohm."""
    r_col_segment: float | np.ndarray = 0.0
    """Column wire resistance per segment, ohm."""
    r_row_driver: float | np.ndarray = 0.0
    """Output resistance of each row driver, ohm (scalar or (M,))."""
    r_col_driver: float | np.ndarray = 0.0
    """Output resistance of each column driver (transposed reads, programming), ohm."""

    def __post_init__(self):
        for name in ("r_row_segment", "r_col_segment", "r_row_driver", "r_col_driver"):
            check_range(name, getattr(self, name), 0.0, unit="ohm")

    @cached_property
    def ideal(self) -> bool:
        """No wire resistance (cached: reads ask on every call, and Wires is frozen)."""
        return not (np.any(self.r_row_segment) or np.any(self.r_col_segment))

    @cached_property
    def ideal_drivers(self) -> bool:
        """Row and column drivers of zero output resistance: driven line ends are held."""
        return not (np.any(self.r_row_driver) or np.any(self.r_col_driver))


@dataclass
class Read:
    """What the sense circuits measured, and the full circuit solution behind it.

    ``outputs`` has shape (K, n_lines): currents in A for a virtual ground
    (flowing out of the line into the sense input), voltages in V for a TIA
    (its output) or a load resistor. Differential pairs give the difference of
    their two lines. Floating lines give NaN. ``saturated`` counts the TIA
    outputs clipped at a rail. The array solve assumes every op-amp is in its
    linear range: a saturated op-amp's input leaving virtual ground is not fed
    back into the solve (its output is clipped and counted).
    """

    outputs: np.ndarray
    solution_: Solution | None = None
    saturated: int = 0
    solver: object = None
    """Computes the solution on first use (the fast path of :meth:`Tile.read_rows` skips it)."""

    @property
    def solution(self) -> Solution:
        """The full DC solution of the read (computed on demand when the read took the fast path)."""
        if self.solution_ is None:
            self.solution_ = self.solver()
        return self.solution_


@dataclass
class Tile:
    """An M×N crossbar tile.

    Parameters
    ----------
    g : ndarray (M, N_phys)
        Device conductances of the physical array, S.
    pairs : bool
        Physical columns form differential pairs (N_phys = 2 N).
    wires : Wires
    access : Passive | Transistor | Selector
    iv : LinearIV | SinhIV
    solver : SolverOptions
    """

    g: np.ndarray
    pairs: bool = False
    wires: Wires = field(default_factory=Wires)
    access: object = field(default_factory=Passive)
    iv: object = field(default_factory=LinearIV)
    solver: SolverOptions = field(default_factory=SolverOptions)
    backend: str = "numba"

    def __post_init__(self):
        self.g = np.array(self.g, dtype=float)
        if self.g.ndim != 2 or min(self.g.shape) < 1:
            raise ParameterError(f"g must be a 2-D array of conductances (M, N); got shape {self.g.shape}")
        if self.pairs and self.g.shape[1] % 2:
            raise ParameterError(f"pairs=True needs an even number of physical columns; got {self.g.shape[1]}")
        check_range("g", self.g, 0.0, unit="S")
        M, Np = self.g.shape
        for name in ("r_row_segment", "r_col_segment"):
            r = np.asarray(getattr(self.wires, name))
            if r.ndim and r.shape != (M, Np):
                raise ParameterError(f"wires.{name} must be a scalar or have shape {(M, Np)}; got {r.shape}")
        self._last: dict = {}
        self._scratch: dict = {}

    def scratch(self, name: str, dtype=float) -> np.ndarray:
        """A work array shaped like ``g``, kept between calls; its contents are undefined.

        A write of a large tile needs several arrays of its size. Fresh ones cost a page
        fault per 4 KiB on first touch (about as much as the device update itself on
        the 815,670 devices of the EP network), so the programming code reuses these.
        """
        key = (name, np.dtype(dtype))
        buf = self._scratch.get(key)
        if buf is None or buf.shape != self.g.shape:
            buf = self._scratch[key] = np.empty(self.g.shape, dtype)
        return buf

    @classmethod
    def from_pairs(cls, g_plus, g_minus, **kw) -> "Tile":
        """Build a differential tile from the (M, N) arrays of G+ and G-."""
        g_plus = np.asarray(g_plus, dtype=float)
        g_minus = np.asarray(g_minus, dtype=float)
        if g_plus.shape != g_minus.shape:
            raise ParameterError(f"g_plus {g_plus.shape} and g_minus {g_minus.shape} must have the same shape")
        g = np.empty((g_plus.shape[0], 2 * g_plus.shape[1]))
        g[:, 0::2] = g_plus
        g[:, 1::2] = g_minus
        return cls(g, pairs=True, **kw)

    # ---------------------------------------------------------------- shape
    @property
    def rows(self) -> int:
        return self.g.shape[0]

    @property
    def cols(self) -> int:
        """Logical columns (pairs count once)."""
        return self.g.shape[1] // 2 if self.pairs else self.g.shape[1]

    @property
    def shape(self):
        return self.rows, self.cols

    def weights(self) -> np.ndarray:
        """Logical weights in S: ``G+ - G-`` for pairs, else G. Hardware side only."""
        return self.g[:, 0::2] - self.g[:, 1::2] if self.pairs else self.g.copy()

    # ---------------------------------------------------------------- solves
    def solve(self, row_g_ext, row_v_ext, col_g_ext, col_v_ext, *, x0=None) -> Solution:
        """Low-level solve with explicit Norton terminations (see :mod:`crossbar.terminals`).

        Column arrays refer to physical columns.
        """
        return solve_crossbar(self.g, self.access, self.iv, self.wires.r_row_segment,
                              self.wires.r_col_segment, row_g_ext, row_v_ext, col_g_ext, col_v_ext,
                              x0=x0, options=self.solver, backend=self.backend)

    def read_rows(self, v, *, sense=VirtualGround(), floating_rows=(), floating_cols=(),
                  warm_start: bool = True) -> Read:
        """Forward read: drive the rows with ``v`` (K, M) volts and sense the columns.

        ``floating_rows`` are left undriven and ``floating_cols`` unsensed (both
        float, so sneak paths through them are part of the solve).
        """
        return self._read("forward", v, sense, floating_rows, floating_cols, warm_start)

    def read_cols(self, v, *, sense=VirtualGround(), floating_rows=(), floating_cols=(),
                  warm_start: bool = True) -> Read:
        """Transposed read: drive the (logical) columns with ``v`` (K, N) volts and sense the rows.

        Differential pairs are driven with ``+v`` on G+ and ``-v`` on G-, so
        the row currents are ``(G+ - G-) v``, the transpose of the forward read.
        """
        return self._read("backward", v, sense, floating_rows, floating_cols, warm_start)

    def terminations(self, direction, v, *, sense=VirtualGround(), floating_rows=(), floating_cols=()):
        """Norton terminations of a read: ``(row_g, row_v, col_g, col_v)`` for :meth:`solve`.

        ``direction`` is ``forward`` (rows driven with ``v`` (K, M), columns sensed)
        or ``backward`` (logical columns driven with ``v`` (K, N), rows sensed).
        Driven lines see their drivers, sensed lines the sense circuit's input;
        floating lines get conductance 0.
        """
        M, Np = self.g.shape
        float_rows = np.asarray(list(floating_rows), dtype=int)
        float_cols = self._physical_lines(floating_cols)
        if direction == "forward":
            v = self._drive(v, self.rows, "v")
            row_g = driver_conductance(self.wires.r_row_driver, M)
            row_g[float_rows] = 0.0
            col_g, col_v = sense.norton(Np)
            col_g = col_g.copy()
            col_g[float_cols] = 0.0
            return row_g, v, col_g, np.broadcast_to(col_v, (v.shape[0], Np)).copy()
        v = self._drive(v, self.cols, "v")
        if self.pairs:
            vp = np.empty((v.shape[0], Np))
            vp[:, 0::2] = v
            vp[:, 1::2] = -v
            v = vp
        col_g = driver_conductance(self.wires.r_col_driver, Np)
        col_g[float_cols] = 0.0
        row_g, row_v = sense.norton(M)
        row_g = row_g.copy()
        row_g[float_rows] = 0.0
        return row_g, np.broadcast_to(row_v, (v.shape[0], M)).copy(), col_g, v

    def _physical_lines(self, logical):
        logical = np.asarray(list(logical), dtype=int)
        if not self.pairs:
            return logical
        return np.concatenate([2 * logical, 2 * logical + 1])

    @staticmethod
    def _drive(v, n, name):
        v = np.asarray(v, dtype=float)
        v = v[None] if v.ndim == 1 else v
        if v.ndim != 2 or v.shape[1] != n:
            raise ParameterError(f"{name} must have shape (K, {n}) or ({n},); got {np.shape(v)}")
        return v

    def _read(self, direction, v, sense, floating_rows, floating_cols, warm_start):
        if not (len(floating_rows) or len(floating_cols)):
            fast = self._held_linear_read(direction, v, sense)
            if fast is not None:
                def solver():
                    return self.solve(*self.terminations(direction, v, sense=sense))
                return Read(outputs=fast, solver=solver)
        row_g, row_v, col_g, col_v = self.terminations(direction, v, sense=sense, floating_rows=floating_rows,
                                                       floating_cols=floating_cols)
        x0 = self._last.get(direction) if warm_start else None
        sol = self.solve(row_g, row_v, col_g, col_v, x0=x0)
        side = "col" if direction == "forward" else "row"
        i_out = sol.i_col_end if side == "col" else -sol.i_row_end  # into the sense input
        out, saturated = self._sense_output(sense, i_out, sol, side)
        floating_sense = self._physical_lines(floating_cols) if side == "col" else \
            np.asarray(list(floating_rows), dtype=int)
        out[:, floating_sense] = np.nan
        if self.pairs and side == "col":
            out = out[:, 0::2] - out[:, 1::2]
        self._last[direction] = sol   # the next read in this direction may start from it
        return Read(outputs=out, solution_=sol, saturated=saturated)

    def _held_linear_read(self, direction, v, sense):
        """Sensed currents straight from Ohm's law, or None when a circuit solve is needed.

        With ideal wires, linear cells and every line end held by an ideal source
        (drivers of zero resistance, ideal virtual grounds, no floating line) no
        node is free: each cell sees its row voltage minus its column voltage, and
        the sense current of a line is the sum of its cells' currents. This is
        what the ideal-wire solver computes too (tested equal), without building
        the terminations or the solution: for the small tiles of a settling loop
        that bookkeeping cost more than the product itself.
        """
        if not (self.wires.ideal and self.wires.ideal_drivers and is_linear(self.access, self.iv)
                and isinstance(sense, (VirtualGround, OpAmpInput))):
            return None
        sense_g, sense_v = sense.norton(1)
        if not np.isinf(sense_g[0]):
            return None                     # a finite-gain op-amp input is a free node
        v_sense = float(sense_v[0])
        G = linear_conductance(self.g, self.access)
        # A pair's sensed current is I+ - I- = sum_i v_i (G+ - G-): forming G+ - G- first
        # halves the product, which dominates large reads (same sums, rounded differently).
        D = G[:, 0::2] - G[:, 1::2] if self.pairs else G
        if direction == "forward":           # current out of each column (pair) into its sense input
            v = self._drive(v, self.rows, "v")
            out = v @ D
            if v_sense:
                out -= v_sense * D.sum(axis=0)
        else:                                # current out of each row into its sense input
            v = self._drive(v, self.cols, "v")
            out = v @ D.T                    # with pairs: G+ driven at +v, G- at -v
            if v_sense:
                out -= v_sense * G.sum(axis=1)
        # A non-finite drive or conductance makes some output non-finite, and so the sum: then
        # the full solve names the culprit. (A finite result whose sum overflows only takes
        # the slow path.) One reduction instead of an isfinite pass on the drive and the result.
        return out if math.isfinite(out.sum()) else None

    def _sense_output(self, sense, i_out, sol, side):
        """Measured outputs and the number of TIA outputs clipped at a rail."""
        if isinstance(sense, TIA):
            raw = self._tia_raw_output(sense, i_out, sol, side)
            clipped = np.clip(raw, sense.v_rail_neg, sense.v_rail_pos)
            return clipped, int(np.count_nonzero(clipped != raw))
        if isinstance(sense, LoadResistor):
            return np.asarray(i_out * sense.r_load, dtype=float), 0
        return np.array(i_out, dtype=float), 0

    def _tia_input_voltage(self, sense, i_out, sol, side):
        """Voltage at the op-amp's inverting input (the far side of the first segment)."""
        if side == "col":
            v_line = sol.v_col[:, -1, :]
            r_seg = np.broadcast_to(self.wires.r_col_segment, self.g.shape)[-1, :]
        else:
            v_line = sol.v_row[:, :, 0]
            r_seg = np.broadcast_to(self.wires.r_row_segment, self.g.shape)[:, 0]
        return v_line - i_out * r_seg

    def _tia_raw_output(self, sense, i_out, sol, side):
        """Op-amp output before the rails: ``A (v+ - v-)``, or ``v+ - R_f i`` when ideal."""
        if np.isinf(sense.gain):
            return sense.v_plus - sense.r_feedback * i_out
        v_in = self._tia_input_voltage(sense, i_out, sol, side)
        return sense.gain * (sense.v_plus - v_in)
