"""Programming pulses on a tile: the voltage each device really sees, and what it does to it.

A pulse drives every row through its driver and every column through its
driver, each with its own voltage, for a duration. The circuit solve (wire
resistance, access devices, sneak paths) gives the voltage across each
memristor, which alone decides whether and how far the device moves. So a
half-selected device under a V/2 scheme stays put only if the voltage that
actually reaches it stays inside its thresholds.

The solve uses the conductances at the start of the pulse (quasi-static): the
change of the voltage divider while a device switches within one pulse is not
followed. Use several shorter pulses where that matters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import ACCESS_NONE, cell_current, is_linear, linear_conductance, memristor_voltage
from .devices import UpdateStats
from .errors import ParameterError
from .schedules import OuterProductWrite, RowByRowWrite, WriteVerify
from .terminals import INF, driver_conductance
from .write_kernels import interleave_pairs as _interleave_pairs, v2_drive, v2_row_write_cost


@dataclass
class PulseReport:
    """What one programming pulse did.

    Attributes
    ----------
    duration : float, s
    energy : float, J
        Energy delivered by the drivers during the pulse (start-of-pulse power × duration).
    v_device : ndarray (M, N_phys), V
        Voltage across each memristor during the pulse.
    switched : ndarray of bool (M, N_phys)
        Devices that saw a supra-threshold voltage.
    n_clipped : int
        Conductances clamped into [g_min, g_max].
    """

    duration: float
    energy: float
    v_device: np.ndarray
    switched: np.ndarray
    n_clipped: int


def device_voltages(tile, row_v, col_v, floating_rows=(), floating_cols=()):
    """Voltage across each memristor when rows and (physical) columns are driven.

    Returns ``(v_device (M, N_phys), solution)``.
    """
    M, Np = tile.g.shape
    row_v = np.asarray(row_v, dtype=float)
    col_v = np.asarray(col_v, dtype=float)
    if row_v.shape != (M,) or col_v.shape != (Np,):
        raise ParameterError(f"row_v must have shape ({M},) and col_v ({Np},); got {row_v.shape} and {col_v.shape}")
    row_g = driver_conductance(tile.wires.r_row_driver, M)
    col_g = driver_conductance(tile.wires.r_col_driver, Np)
    row_g[list(floating_rows)] = 0.0
    col_g[list(floating_cols)] = 0.0
    sol = tile.solve(row_g, row_v[None], col_g, col_v[None])
    return memristor_voltage(sol.i_cell[0], tile.g, tile.iv), sol


def apply_pulse(tile, device, arrays, row_v, col_v, duration, rng=None, *,
                floating_rows=(), floating_cols=(), backend="numba") -> PulseReport:
    """Drive rows and columns for ``duration`` seconds and update the devices in place.

    Parameters
    ----------
    tile : crossbar.tile.Tile
    device : crossbar.devices.DeviceModel
    arrays : DeviceArrays or None
        Per-device parameters from ``device.sample``.
    row_v : (M,) V, col_v : (N_phys,) V
        Driver voltages. A device sees roughly ``row_v[i] - col_v[j]``, less
        whatever the wires, drivers and access device take.
    rng : numpy.random.Generator or None
        Cycle-to-cycle noise source.
    """
    if not np.isfinite(duration) or duration < 0:
        raise ParameterError(f"duration = {duration!r} s is outside the allowed range [0, inf) s")
    v_dev, sol = device_voltages(tile, row_v, col_v, floating_rows, floating_cols)
    stats = UpdateStats()
    tile.g[...] = device.apply(tile.g, v_dev, duration, arrays, rng, backend=backend, stats=stats)
    switched = (v_dev > device.v_set) | (v_dev < device.v_reset)
    energy = float(sol.power_balance()["p_sources"][0]) * duration
    return PulseReport(duration=duration, energy=energy, v_device=v_dev, switched=switched,
                       n_clipped=stats.n_clipped)


def half_select(M, N, row, col, v_write, scheme="V/2"):
    """Row and column driver voltages that write cell (row, col) with ``v_write``.

    ``V/2``: selected row +V/2, selected column -V/2, all other lines 0, so
    half-selected cells see V/2. ``V/3``: selected row V, selected column 0,
    other rows V/3, other columns 2V/3, so every unselected cell sees ±V/3.
    A negative ``v_write`` writes the opposite polarity (RESET).
    """
    row_sel, row_un, col_sel, col_un = bias_levels(v_write, scheme)
    row_v = np.full(M, row_un)
    col_v = np.full(N, col_un)
    row_v[row] = row_sel
    col_v[col] = col_sel
    return row_v, col_v


def bias_levels(v, scheme):
    """(selected row, unselected row, selected column, unselected column) voltages writing ``v``."""
    if scheme == "V/2":
        return v / 2, 0.0, -v / 2, 0.0
    if scheme == "V/3":
        return v, v / 3, 0.0, 2 * v / 3
    raise ParameterError(f"scheme = {scheme!r}; allowed: 'V/2', 'V/3'")


# ====================================================================== schedules

@dataclass
class ProgramReport:
    """What a schedule did to a tile.

    Attributes
    ----------
    time : float, s
        Programming time: the sum of the phase durations.
    energy : float, J
        Energy delivered by the drivers.
    pulses : ndarray of int (M, N_phys)
        Full-select pulses each device received (uint8 from a single row-by-row
        write, which sends at most one per device; int64 otherwise).
    disturbed : ndarray of bool (M, N_phys)
        Devices that moved while only half-selected (or not selected).
    n_phases : int
    n_solves : int
        Circuit solves needed (0 when the device voltages follow from ideal wires).
    n_clipped : int
        Conductances clamped into [g_min, g_max].
    n_unverified : int
        Write-verify only: devices still outside tolerance after ``max_pulses``.
    """

    time: float
    energy: float
    pulses: np.ndarray
    disturbed: np.ndarray
    n_phases: int
    n_solves: int
    n_clipped: int
    n_unverified: int = 0


def physical_widths(tile, signed, out=None):
    """Per-device signed widths (M, N_phys) from per-weight ones: a pair moves in opposite directions.

    ``out``: an array of the tile's physical shape to fill (e.g. ``tile.scratch("widths")``).
    """
    signed = np.asarray(signed, dtype=float)
    if signed.shape != tile.shape:
        raise ParameterError(f"schedule has shape {signed.shape}; tile {tile.shape} expects {tile.shape}")
    if out is None:
        out = np.empty(tile.g.shape)
    if not tile.pairs:
        out[...] = signed
        return out
    if signed.flags.c_contiguous:
        _interleave_pairs(signed, out)
        return out
    out[:, 0::2] = signed
    out[:, 1::2] = -signed
    return out


def _ideal_drive(tile):
    """True when line voltages equal the driver voltages (no wire or driver resistance)."""
    w = tile.wires
    return w.ideal and not np.any(w.r_row_driver) and not np.any(w.r_col_driver)


def _device_v(tile, v_cell):
    """Memristor voltage for a given cell voltage (array shaped like g), through the access device."""
    i, _ = cell_current(np.broadcast_to(v_cell, tile.g.shape), tile.g, tile.access, tile.iv)
    return memristor_voltage(i, tile.g, tile.iv), i * v_cell


def program(tile, device, arrays, schedule, *, v_write, scheme="V/2", rng=None, backend="numba") -> ProgramReport:
    """Apply a pulse schedule to a tile through its drivers, wires and access devices.

    Parameters
    ----------
    tile : Tile
    device : DeviceModel
    arrays : DeviceArrays or None
    schedule : OuterProductWrite | RowByRowWrite | WriteVerify
    v_write : float, V
        Full-select write voltage (> 0); SET pulses put +v_write across the
        selected cells, RESET pulses -v_write.
    scheme : "V/2" or "V/3"
        How unselected lines are biased.
    rng : numpy.random.Generator or None
        Cycle-to-cycle noise.
    """
    if not np.isfinite(v_write) or v_write <= 0:
        raise ParameterError(f"v_write = {v_write!r} V is outside the allowed range (0, inf) V")
    bias_levels(v_write, scheme)   # rejects an unknown scheme
    if isinstance(schedule, WriteVerify):
        return _write_verify(tile, device, arrays, schedule, v_write, scheme, rng, backend)
    from .waveforms import WaveformWrite, apply_waveforms   # here, not at the top: waveforms.py imports this module
    if isinstance(schedule, WaveformWrite):
        return apply_waveforms(tile, device, arrays, schedule, rng=rng, backend=backend)
    if not isinstance(schedule, (OuterProductWrite, RowByRowWrite)):
        raise ParameterError(f"unknown schedule {type(schedule).__name__}")
    P = physical_widths(tile, schedule.signed_widths(), out=tile.scratch("widths"))
    if (isinstance(schedule, RowByRowWrite) and scheme == "V/2" and is_linear(tile.access, tile.iv)
            and _ideal_drive(tile) and _no_disturb(tile, device, v_write, scheme)):
        return _row_write_v2_linear(tile, device, arrays, P, v_write, rng, backend)
    if isinstance(schedule, OuterProductWrite):
        phases = list(_outer_phases(tile, schedule, v_write, scheme))
    else:
        phases = list(_row_phases(P, v_write, scheme))
    return _run(tile, device, arrays, P, phases, v_write, scheme, rng, backend)


_FRACTION = {"V/2": 0.5, "V/3": 1.0 / 3.0}


def _run(tile, device, arrays, P, phases, v_write, scheme, rng, backend):
    if _ideal_drive(tile) and _no_disturb(tile, device, v_write, scheme):
        return _program_at_once(tile, device, arrays, P, phases, v_write, rng, backend)
    return _program_phase_by_phase(tile, device, arrays, phases, rng, backend)


def _no_disturb(tile, device, v_write, scheme):
    """True when every partially selected device stays inside its thresholds."""
    frac = _FRACTION[scheme]
    if is_linear(tile.access, tile.iv) and tile.access.code == ACCESS_NONE:
        return device.v_reset < -frac * v_write and frac * v_write < device.v_set
    for v in (frac * v_write, -frac * v_write):
        u, _ = _device_v(tile, v)
        if np.any(u > device.v_set) or np.any(u < device.v_reset):
            return False
    return True


def _outer_phases(tile, schedule, v_write, scheme):
    """The four phases of a parallel outer-product write: (SET, RESET) x (rows +, rows -).

    Each yields a :class:`_Phase`; ``widths[j]`` is how long column j holds its
    selected level.
    """
    M, Np = tile.g.shape
    rows = schedule.rows
    # a pair's G- column moves opposite to its G+ column
    cols = np.repeat(schedule.cols, 2) * np.tile([1, -1], tile.cols) if tile.pairs else schedule.cols
    width = schedule.width * schedule.count
    for polarity in (+1, -1):
        for r_sign in (+1, -1):
            sel_rows = rows == r_sign
            sel_cols = cols == polarity * r_sign
            if sel_rows.any() and sel_cols.any():
                yield _levels(sel_rows, np.where(sel_cols, width, 0.0), polarity, v_write, scheme)


def _row_phases(P, v_write, scheme):
    """Two phases per row (SET, RESET) writing per-device signed widths P (M, N_phys)."""
    M = P.shape[0]
    for i in range(M):
        for polarity in (+1, -1):
            w = np.where(polarity * P[i] > 0, np.abs(P[i]), 0.0)
            if w.any():
                sel_rows = np.zeros(M, bool)
                sel_rows[i] = True
                yield _levels(sel_rows, w, polarity, v_write, scheme)


@dataclass
class _Phase:
    """One programming phase: driver levels, and how long each column holds its selected level."""

    row_v: np.ndarray
    col_sel: float
    col_un: float
    widths: np.ndarray
    sel_rows: np.ndarray

    def selected(self):
        """(M, N_phys) devices fully selected during this phase."""
        return np.outer(self.sel_rows, self.widths > 0)


def _levels(sel_rows, widths, polarity, v_write, scheme):
    """Driver levels of one phase: selected lines share v_write, the rest sit at the half/third level."""
    row_sel, row_un, col_sel, col_un = bias_levels(polarity * v_write, scheme)
    return _Phase(np.where(sel_rows, row_sel, row_un), col_sel, col_un, widths, sel_rows)


def _program_at_once(tile, device, arrays, P, phases, v_write, rng, backend):
    """Ideal drivers and no disturb: every device moves once, by its own full-select pulse.

    Energy is integrated over the phases at the conductances the tile had when
    the schedule started (quasi-static; the phase-by-phase path follows each
    device's change instead, a difference of the order of the relative
    conductance change of one write).
    """
    stats = UpdateStats()
    if is_linear(tile.access, tile.iv):
        g_eff = linear_conductance(tile.g, tile.access)
        share = v_write if tile.access.code == ACCESS_NONE else v_write * g_eff / tile.g
        v_dev = np.sign(P) * share        # the memristor's part of +-v_write
        energy = _energy_linear(g_eff, phases)
    else:
        u_set, _ = _device_v(tile, v_write)
        u_reset, _ = _device_v(tile, -v_write)
        v_dev = np.where(P > 0, u_set, np.where(P < 0, u_reset, 0.0))
        energy = sum(_phase_energy_ideal(tile, tile.g, ph.row_v, ph.col_sel, ph.col_un, ph.widths)
                     for ph in phases)
    tile.g[...] = device.apply(tile.g, v_dev, np.abs(P), arrays, rng, backend=backend, stats=stats)
    time = float(sum(ph.widths.max() for ph in phases))
    return ProgramReport(time=time, energy=energy, pulses=(P != 0).astype(np.int64),
                         disturbed=np.zeros(P.shape, bool), n_phases=len(phases), n_solves=0,
                         n_clipped=stats.n_clipped)


def _row_write_v2_linear(tile, device, arrays, P, v_write, rng, backend):
    """Row-by-row V/2 write on linear cells with ideal drivers, without building the 2 M phases.

    In row i's SET phase (length T_i, its longest pulse) a selected cell sees V
    for its own width t_ij and V/2 for the rest of the phase; the row's other
    cells see V/2 throughout; the other cells of a selected column see V/2 for
    t_ij. So, with A = sum g t over the selected cells,
    E = V^2 A + (V/2)^2 (sum_i T_i rowsum_i(g) - A + sum_j t_j colsum_j(g) - A), and the
    same for RESET. Device voltages and energy use the start-of-write conductances.
    """
    stats = UpdateStats()
    g_eff = linear_conductance(tile.g, tile.access)
    energy, time, n_phases = v2_row_write_cost(P, g_eff, v_write, backend)
    if tile.access.code == ACCESS_NONE:
        v_dev, duration, pulses = v2_drive(P, v_write, backend, out=(tile.scratch("v"), tile.scratch("dt")))
    else:
        v_dev, duration, pulses = np.sign(P) * (v_write * g_eff / tile.g), np.abs(P), (P != 0).astype(np.int64)
    device.apply(tile.g, v_dev, duration, arrays, rng, backend=backend, stats=stats, out=tile.g)
    return ProgramReport(time=time, energy=float(energy), pulses=pulses,
                         disturbed=np.zeros(P.shape, bool), n_phases=n_phases, n_solves=0,
                         n_clipped=stats.n_clipped)


def _energy_linear(G, phases):
    """Energy of phases on linear cells with ideal drivers: sum over segments of dt sum G (r_i - c_j)^2.

    Expanded as ``r^2 . rowsum(G) - 2 r.G.c + c^2 . colsum(G)`` so each segment
    costs a product with the rows that are actually biased.
    """
    g_rows = G.sum(axis=1)
    g_cols = G.sum(axis=0)
    energy = 0.0
    for ph in phases:
        row_v = ph.row_v
        nz = np.flatnonzero(row_v)
        for dt, active in _segments(ph.widths):
            col_v = np.where(active, ph.col_sel, ph.col_un)
            cross = row_v[nz] @ (G[nz] @ col_v) if nz.size else 0.0
            energy += dt * (row_v ** 2 @ g_rows - 2.0 * cross + col_v ** 2 @ g_cols)
    return float(energy)


def _segments(widths):
    """Time segments of a phase: (duration, active columns) between successive column pulse ends."""
    ends = np.unique(widths[widths > 0])
    start = 0.0
    for end in ends:
        yield end - start, widths >= end
        start = end


def _phase_energy_ideal(tile, g, row_v, col_sel, col_un, widths):
    """Energy of one phase with ideal drivers: every cell's i v, integrated over the segments."""
    energy = 0.0
    for dt, active in _segments(widths):
        col_v = np.where(active, col_sel, col_un)
        v_cell = row_v[:, None] - col_v[None, :]
        i, _ = cell_current(v_cell, g, tile.access, tile.iv)
        energy += dt * float(np.sum(i * v_cell))
    return energy


def _program_phase_by_phase(tile, device, arrays, phases, rng, backend):
    """General path: each phase split at the column pulse ends, device voltages from the circuit."""
    stats = UpdateStats()
    M, Np = tile.g.shape
    pulses = np.zeros((M, Np), np.int64)
    disturbed = np.zeros((M, Np), bool)
    energy = 0.0
    time = 0.0
    n_solves = 0
    ideal = _ideal_drive(tile)
    for ph in phases:
        row_v = ph.row_v
        selected = ph.selected()
        pulses += selected
        for dt, active in _segments(ph.widths):
            col_v = np.where(active, ph.col_sel, ph.col_un)
            if ideal:
                v_cell = row_v[:, None] - col_v[None, :]
                i, _ = cell_current(v_cell, tile.g, tile.access, tile.iv)
                v_dev = memristor_voltage(i, tile.g, tile.iv)
                energy += dt * float(np.sum(i * v_cell))
            else:
                v_dev, sol = device_voltages(tile, row_v, col_v)
                energy += dt * float(sol.power_balance()["p_sources"][0])
                n_solves += 1
            before = tile.g.copy()
            tile.g[...] = device.apply(tile.g, v_dev, dt, arrays, rng, backend=backend, stats=stats)
            disturbed |= (tile.g != before) & ~(selected & active[None, :])
        time += ph.widths.max()
    return ProgramReport(time=time, energy=energy, pulses=pulses, disturbed=disturbed,
                         n_phases=len(phases), n_solves=n_solves, n_clipped=stats.n_clipped)


def _write_verify(tile, device, arrays, schedule, v_write, scheme, rng, backend):
    """Pulse each targeted device with single-device V/2 (or V/3) writes until within tolerance.

    The conductance is verified by a read of the device's row at a small read
    voltage through the circuit, as an instrument would.
    """
    M, Np = tile.g.shape
    targets = np.asarray(schedule.targets, dtype=float)
    if targets.shape != (M, Np):
        raise ParameterError(f"targets must have the physical shape {(M, Np)}; got {targets.shape}")
    total = ProgramReport(0.0, 0.0, np.zeros((M, Np), np.int64), np.zeros((M, Np), bool), 0, 0, 0)
    v_read = 0.1 * min(device.v_set, -device.v_reset)
    for i, j in np.argwhere(np.isfinite(targets)):
        for n in range(schedule.max_pulses + 1):
            g_meas = measure_row(tile, i, v_read)[j]
            err = (g_meas - targets[i, j]) / targets[i, j]
            if abs(err) <= schedule.tol:
                break
            if n == schedule.max_pulses:
                total.n_unverified += 1
                break
            widths = np.zeros((M, Np))
            widths[i, j] = -schedule.width if err > 0 else schedule.width
            phases = list(_row_phases(widths, v_write, scheme))
            _accumulate(total, _run(tile, device, arrays, widths, phases, v_write, scheme, rng, backend))
    return total


def _accumulate(total, rep):
    total.time += rep.time
    total.energy += rep.energy
    total.pulses += rep.pulses
    total.disturbed |= rep.disturbed
    total.n_phases += rep.n_phases
    total.n_solves += rep.n_solves
    total.n_clipped += rep.n_clipped


def measure_row(tile, row, v_read):
    """Conductances of one row's devices as an instrument measures them.

    Row ``row`` is driven at ``v_read``, every other row at 0 V, the columns held
    at virtual ground; the column currents divided by ``v_read`` are the
    apparent conductances (sneak and wire effects included).
    """
    M, Np = tile.g.shape
    row_v = np.zeros(M)
    row_v[row] = v_read
    row_g = driver_conductance(tile.wires.r_row_driver, M)
    sol = tile.solve(row_g, row_v[None], np.full(Np, INF), np.zeros((1, Np)))
    return sol.i_col_end[0] / v_read
