"""Time-sampled voltage waveforms on every row and column at once: the devices decide what changes.

A :class:`WaveformWrite` drives each row i with a waveform r_i(t) and each
column j with c_j(t), sampled every ``dt`` seconds and held between samples
(zero-order hold, as a DAC-driven line driver does). With ideal wires the
memristor at (i, j) sees v_ij(t) = r_i(t) - c_j(t), less whatever its access
device takes; with resistive wires the circuit is solved. The device model's
own ``apply`` then integrates its conductance over the samples, so a device
moves only while its voltage is beyond v_set or v_reset: with spike waveforms
that are each sub-threshold, only their overlaps write. This is how
memristive STDP works (pre spike on the row, post spike on the column; see
:mod:`learning.stdp`): the conductance change is physics, not a computed number.

Differential pairs. A weight is G+ - G-, and the two devices of a pair share
their row. Giving the G- column the inverted column waveform does *not* make
G- mirror G+: it sees r + c, not -(r - c). In fact no pair of column waveforms
can do it at one instant. G+ rising and G- falling together need
v+ - v- = c- - c+ > v_set - v_reset, while a column waveform that is harmless
on its own (row at 0 V) must keep -c inside (v_reset, v_set), which bounds
c- - c+ by v_set - v_reset. So when the schedule gives *logical* columns
(N, S) for a pair tile, the write runs in two phases of S samples each:

1. G+ phase: rows r(t), G+ columns c(t), G- columns held at 0 V;
2. G- phase: rows -r(t), G- columns -c(t), G+ columns held at 0 V,

so every G- device sees exactly -(r - c), the negated voltage of its G+
partner. Whatever a waveform does to G+, it does the opposite to G-: a
potentiating overlap raises the weight twice over, and a depressing one
lowers it. The only cost is twice the time. Meanwhile the idle device of each
pair sees its row waveform alone, which a well-designed spike keeps below
threshold; if it does not, the device moves and is reported as ``disturbed``.
Schedules with *physical* columns (N_phys, S) run as given, in one phase.

Resistive wires are solved once per constant-drive segment (consecutive
samples with identical drivers), quasi-statically at the conductances of the
segment start, as :mod:`crossbar.program` does per phase. Every such segment
costs one circuit solve (``n_solves``), including segments in which nothing
switches, because the energy is taken from the solve.

Cycle-to-cycle noise is drawn once per switching *event*: a run of
consecutive supra-threshold samples of one polarity on one device. The draw
falls on the first sample of the event; later samples of the event update
noise-free. So the noise does not depend on how finely the waveform is
sampled, and an event is one "programmed update" in the thesis' sense.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import ACCESS_NONE, cell_current, is_linear, linear_conductance, memristor_voltage
from .checks import check_finite_array, check_positive
from .devices import UpdateStats
from .errors import ParameterError
# program.py dispatches WaveformWrite to this module from inside ``program()``
# (a call-time import), so importing it here at module level makes no cycle.
from .program import ProgramReport, _ideal_drive, device_voltages

METHODS = ("auto", "rounds", "segments")
_BLOCK = 1 << 22
"""Most device-voltage values (devices x segments) held at once by the rounds path."""


@dataclass(frozen=True)
class WaveformWrite:
    """Sampled voltage waveforms applied to every row and column of a tile at once.

    Parameters
    ----------
    row_waveforms : array (M, S), V
        Row driver voltage at each of the S samples.
    col_waveforms : array (N, S) or (N_phys, S), V
        Column driver voltages: one per logical column (a differential pair
        is then written in two phases, see the module docstring) or one per
        physical column (applied as given, in one phase).
    dt : float, s
        Sample period; each sample is held for ``dt``.
    """

    row_waveforms: np.ndarray
    col_waveforms: np.ndarray
    dt: float

    def __post_init__(self):
        rows = check_finite_array("row_waveforms", self.row_waveforms)
        cols = check_finite_array("col_waveforms", self.col_waveforms)
        for name, a in (("row_waveforms", rows), ("col_waveforms", cols)):
            if a.ndim != 2 or a.shape[1] < 1:
                raise ParameterError(f"{name} must be a 2-D array (lines, samples) with at least one "
                                     f"sample; got shape {a.shape}")
        if rows.shape[1] != cols.shape[1]:
            raise ParameterError(f"row_waveforms has {rows.shape[1]} samples and col_waveforms "
                                 f"{cols.shape[1]}; they must have the same number")
        check_positive("dt", self.dt, unit="s")
        object.__setattr__(self, "row_waveforms", rows)
        object.__setattr__(self, "col_waveforms", cols)
        object.__setattr__(self, "dt", float(self.dt))

    @property
    def n_samples(self) -> int:
        return self.row_waveforms.shape[1]

    @property
    def duration(self) -> float:
        """Length of the waveforms, s (one phase)."""
        return self.n_samples * self.dt


@dataclass
class WaveformReport(ProgramReport):
    """A :class:`~crossbar.program.ProgramReport` with what only waveforms have.

    ``pulses`` counts the switching events of each device (SET plus RESET);
    ``disturbed`` marks devices that switched while their own row or column
    was at 0 V, i.e. from one line's waveform alone rather than an overlap.
    ``time`` is the length of all phases; ``n_phases`` is 2 for a pair tile
    given logical columns.
    """

    set_events: np.ndarray = None
    """(M, N_phys) int: runs of samples beyond v_set (potentiating events)."""
    reset_events: np.ndarray = None
    """(M, N_phys) int: runs of samples beyond v_reset (depressing events)."""
    supra_time: np.ndarray = None
    """(M, N_phys) float, s: total time each device spent beyond a threshold."""
    n_segments: int = 0
    """Constant-drive segments the waveforms were split into (all phases)."""


def apply_waveforms(tile, device, arrays, schedule: WaveformWrite, rng=None, backend="numba", *,
                    method="auto") -> WaveformReport:
    """Apply a :class:`WaveformWrite` to a tile and update its devices in place.

    Parameters
    ----------
    tile : crossbar.tile.Tile
    device : crossbar.devices.DeviceModel
    arrays : DeviceArrays or None
        Per-device parameters from ``device.sample``.
    schedule : WaveformWrite
    rng : numpy.random.Generator or None
        Cycle-to-cycle noise (one draw per switching event).
    backend : "numba" or "numpy"
        Device-update backend.
    method : "auto", "rounds" or "segments"
        ``segments`` walks the constant-drive segments in time order.
        ``rounds`` needs ideal drive and passive linear cells, where a
        device's voltage does not depend on any conductance: it applies each
        device's k-th switching segment to all devices at once, so the number
        of device updates is the largest number of switching segments of any
        one device, not the number of segments. Device by device it runs the
        same sequence of updates, so the noise-free result is the same.
        ``auto`` takes ``rounds`` where it applies.

    Energy. ``segments`` integrates ``sum(i v) dt`` over the segments at the
    conductances of each segment start (with resistive wires, from each
    solve). ``rounds`` uses the conductances the tile had when the phase
    began, as :mod:`crossbar.program` does for an all-at-once write; the
    difference is of the order of the relative conductance change of the
    write itself.
    """
    if not isinstance(schedule, WaveformWrite):
        raise ParameterError(f"schedule must be a WaveformWrite; got {type(schedule).__name__}")
    if method not in METHODS:
        raise ParameterError(f"method = {method!r}; allowed: {', '.join(METHODS)}")
    fast = _ideal_drive(tile) and is_linear(tile.access, tile.iv) and tile.access.code == ACCESS_NONE
    if method == "rounds" and not fast:
        raise ParameterError("method = 'rounds' needs ideal wires and drivers and passive linear cells; "
                             "use 'segments' or 'auto'")
    M, Np = tile.g.shape
    report = WaveformReport(time=0.0, energy=0.0, pulses=np.zeros((M, Np), np.int64),
                            disturbed=np.zeros((M, Np), bool), n_phases=0, n_solves=0, n_clipped=0,
                            set_events=np.zeros((M, Np), np.int64),
                            reset_events=np.zeros((M, Np), np.int64), supra_time=np.zeros((M, Np)))
    stats = UpdateStats()
    run = _phase_rounds if fast and method != "segments" else _phase_segments
    for rows, cols in _phases(tile, schedule):
        run(tile, device, arrays, rows, cols, schedule.dt, rng, backend, report, stats)
        report.n_phases += 1
        report.time += schedule.duration
    report.pulses = report.set_events + report.reset_events
    report.n_clipped = stats.n_clipped
    return report


# ---------------------------------------------------------------------- phases and segments

def _phases(tile, schedule):
    """(row waveforms (M, S), physical column waveforms (N_phys, S)) of each phase."""
    M, Np = tile.g.shape
    rows, cols = schedule.row_waveforms, schedule.col_waveforms
    if rows.shape[0] != M:
        raise ParameterError(f"row_waveforms has {rows.shape[0]} rows; the tile has {M}")
    if cols.shape[0] == Np:
        yield rows, cols
        return
    if not (tile.pairs and cols.shape[0] == tile.cols):
        allowed = f"{tile.cols} (logical) or {Np} (physical)" if tile.pairs else f"{Np}"
        raise ParameterError(f"col_waveforms has {cols.shape[0]} columns; the tile takes {allowed}")
    plus = np.zeros((Np, cols.shape[1]))
    plus[0::2] = cols                 # G+ phase: G- columns grounded
    minus = np.zeros((Np, cols.shape[1]))
    minus[1::2] = -cols               # G- phase: rows and G- columns inverted, G+ grounded
    yield rows, plus
    yield -rows, minus


def _segments(rows, cols, dt):
    """Split the samples into runs of identical drive: (row levels (M, K), col levels (Np, K), durations (K,))."""
    S = rows.shape[1]
    change = np.any(rows[:, 1:] != rows[:, :-1], axis=0) | np.any(cols[:, 1:] != cols[:, :-1], axis=0)
    starts = np.r_[0, np.flatnonzero(change) + 1]
    stops = np.r_[starts[1:], S]
    return rows[:, starts], cols[:, starts], (stops - starts) * dt


def _may_switch(tile, device, r, c):
    """(K,) segments in which some device could be beyond a threshold.

    With ideal drive a cell sees exactly r_i - c_j and the memristor at most
    that (an access device in series takes a share of the same sign). With
    resistive wires every node lies between the lowest and highest driver
    voltage (maximum principle of a resistive network), so no device sees
    more than that span.
    """
    if _ideal_drive(tile):
        hi, lo = r.max(axis=0) - c.min(axis=0), r.min(axis=0) - c.max(axis=0)
    else:
        hi = np.maximum(r.max(axis=0), c.max(axis=0)) - np.minimum(r.min(axis=0), c.min(axis=0))
        lo = -hi
    return (hi > device.v_set) | (lo < device.v_reset)


def _record(report, up, down, new_up, new_down, dur, r, c):
    """Count the events of one segment (or round) and mark devices switched by one line alone."""
    report.set_events += new_up
    report.reset_events += new_down
    supra = up | down
    report.supra_time += np.where(supra, dur, 0.0)
    report.disturbed |= supra & ((r == 0) | (c == 0))


def _update(tile, device, arrays, v, dur, first, rng, backend, stats):
    """One device update: noise only where an event starts (``first``), noise-free elsewhere."""
    if rng is not None and device.eps_intra > 0 and np.any(first):
        start = np.where(first, v, 0.0)      # 0 V is inside the thresholds: those devices stay put
        tile.g[...] = device.apply(tile.g, start, dur, arrays, rng, backend=backend, stats=stats)
        v = np.where(first, 0.0, v)
        if not np.any(v):
            return
    tile.g[...] = device.apply(tile.g, v, dur, arrays, None, backend=backend, stats=stats)


# ---------------------------------------------------------------------- segment by segment

def _phase_segments(tile, device, arrays, rows, cols, dt, rng, backend, report, stats):
    """General path: walk the constant-drive segments in time order."""
    R, C, durs = _segments(rows, cols, dt)
    report.n_segments += durs.size
    active = _may_switch(tile, device, R, C)
    ideal = _ideal_drive(tile)
    linear = is_linear(tile.access, tile.iv)
    prev_up = prev_down = np.zeros(tile.g.shape, bool)
    for k in range(durs.size):
        r, c, dur = R[:, k], C[:, k], durs[k]
        if ideal:
            if not active[k] and linear:
                report.energy += dur * _linear_power(linear_conductance(tile.g, tile.access), r, c)
                prev_up = prev_down = np.zeros(tile.g.shape, bool)
                continue
            v_cell = r[:, None] - c[None, :]
            i, _ = cell_current(v_cell, tile.g, tile.access, tile.iv)
            report.energy += dur * float(np.sum(i * v_cell))
            v_dev = memristor_voltage(i, tile.g, tile.iv)
        else:
            v_dev, sol = device_voltages(tile, r, c)
            report.n_solves += 1
            report.energy += dur * float(sol.power_balance()["p_sources"][0])
        up, down = v_dev > device.v_set, v_dev < device.v_reset
        new_up, new_down = up & ~prev_up, down & ~prev_down
        _record(report, up, down, new_up, new_down, dur, r[:, None], c[None, :])
        if np.any(up | down):
            _update(tile, device, arrays, v_dev, dur, new_up | new_down, rng, backend, stats)
        prev_up, prev_down = up, down


def _linear_power(G, r, c):
    """Power of linear cells with ideal drive: sum_ij G_ij (r_i - c_j)^2, W."""
    return float((r ** 2) @ G.sum(axis=1) - 2.0 * r @ (G @ c) + (c ** 2) @ G.sum(axis=0))


# ---------------------------------------------------------------------- rounds (ideal passive cells)

def _phase_rounds(tile, device, arrays, rows, cols, dt, rng, backend, report, stats):
    """Ideal drive, passive linear cells: v_ij = r_i - c_j whatever the conductances.

    Only the segments where some device may switch are expanded to device
    voltages, in blocks of at most ``_BLOCK`` values. Within a block, round k
    applies every device's k-th switching segment at once.
    """
    R, C, durs = _segments(rows, cols, dt)
    report.n_segments += durs.size
    G = tile.g
    # energy at the phase's starting conductances: sum_k dur_k sum_ij G_ij (r_ik - c_jk)^2
    report.energy += float((R ** 2 @ durs) @ G.sum(axis=1) + (C ** 2 @ durs) @ G.sum(axis=0)
                           - 2.0 * np.sum(G * ((R * durs) @ C.T)))
    seg = np.flatnonzero(_may_switch(tile, device, R, C))
    M, Np = G.shape
    n_dev = M * Np
    prev_up = prev_down = np.zeros(n_dev, bool)
    prev_seg = -2
    per_block = max(1, _BLOCK // n_dev)
    for b0 in range(0, seg.size, per_block):
        ks = seg[b0:b0 + per_block]
        v = (R[:, None, ks] - C[None, :, ks]).reshape(n_dev, ks.size)     # (devices, segments)
        up, down = v > device.v_set, v < device.v_reset
        # an event starts where a device was not beyond the same threshold in the segment just before
        adjacent = np.r_[ks[0] == prev_seg + 1, ks[1:] == ks[:-1] + 1]
        before_up = np.c_[prev_up, up[:, :-1]] & adjacent
        before_down = np.c_[prev_down, down[:, :-1]] & adjacent
        new_up, new_down = up & ~before_up, down & ~before_down
        supra = up | down
        r_lvl = np.broadcast_to(R[:, None, ks], (M, Np, ks.size)).reshape(n_dev, ks.size)
        c_lvl = np.broadcast_to(C[None, :, ks], (M, Np, ks.size)).reshape(n_dev, ks.size)
        report.set_events += new_up.sum(axis=1).reshape(M, Np)
        report.reset_events += new_down.sum(axis=1).reshape(M, Np)
        report.supra_time += (supra * durs[ks]).sum(axis=1).reshape(M, Np)
        report.disturbed |= np.any(supra & ((r_lvl == 0) | (c_lvl == 0)), axis=1).reshape(M, Np)
        dev, col = np.nonzero(supra)          # sorted by device, then by segment: time order per device
        if dev.size:
            first_of_dev = np.r_[True, dev[1:] != dev[:-1]]
            starts = np.flatnonzero(first_of_dev)
            rank = np.arange(dev.size) - np.repeat(starts, np.diff(np.r_[starts, dev.size]))
            for k in range(int(rank.max()) + 1):
                sel = rank == k
                d, s = dev[sel], col[sel]
                vk = np.zeros(n_dev)
                tk = np.zeros(n_dev)
                fk = np.zeros(n_dev, bool)
                vk[d] = v[d, s]
                tk[d] = durs[ks[s]]
                fk[d] = new_up[d, s] | new_down[d, s]
                _update(tile, device, arrays, vk.reshape(M, Np), tk.reshape(M, Np), fk.reshape(M, Np),
                        rng, backend, stats)
        prev_up, prev_down, prev_seg = up[:, -1], down[:, -1], ks[-1]
