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

from .cells import memristor_voltage
from .devices import UpdateStats
from .errors import ParameterError
from .terminals import INF


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


def _driver_conductance(r, n):
    r = np.broadcast_to(np.asarray(r, dtype=float), (n,))
    with np.errstate(divide="ignore"):
        return np.where(r == 0, INF, 1.0 / np.where(r == 0, 1.0, r))


def device_voltages(tile, row_v, col_v, floating_rows=(), floating_cols=()):
    """Voltage across each memristor when rows and (physical) columns are driven.

    Returns ``(v_device (M, N_phys), solution)``.
    """
    M, Np = tile.g.shape
    row_v = np.asarray(row_v, dtype=float)
    col_v = np.asarray(col_v, dtype=float)
    if row_v.shape != (M,) or col_v.shape != (Np,):
        raise ParameterError(f"row_v must have shape ({M},) and col_v ({Np},); got {row_v.shape} and {col_v.shape}")
    row_g = _driver_conductance(tile.wires.r_row_driver, M)
    col_g = _driver_conductance(tile.wires.r_col_driver, Np)
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
    row_v = np.zeros(M)
    col_v = np.zeros(N)
    if scheme == "V/2":
        row_v[row] = v_write / 2
        col_v[col] = -v_write / 2
    elif scheme == "V/3":
        row_v[:] = v_write / 3
        col_v[:] = 2 * v_write / 3
        row_v[row] = v_write
        col_v[col] = 0.0
    else:
        raise ParameterError(f"scheme = {scheme!r}; allowed: 'V/2', 'V/3'")
    return row_v, col_v
