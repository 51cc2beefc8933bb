"""Plain-numpy twins of the kernels in :mod:`crossbar.devices.kernels`.

Readable reference implementations with the same signatures; tests check that
the two agree. Per-device inputs (``v``, ``dt``, ``rate_p``, ``rate_d``) are
flat arrays of length n or 1 (a single value shared by all devices).
"""
from __future__ import annotations

import functools

import numpy as np


def directions(v, dt, v_set: float, v_reset: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the devices a pulse potentiates and depresses.

    Strict inequalities: at exactly v_set or v_reset nothing happens, and a
    pulse of zero width is no pulse.
    """
    active = dt > 0
    return active & (v > v_set), active & (v < v_reset)


def count_switched(n: int, v, dt, v_set: float, v_reset: float) -> int:
    """Number of the n devices that a pulse (v, dt) switches."""
    up, down = directions(np.broadcast_to(v, (n,)), np.broadcast_to(dt, (n,)), v_set, v_reset)
    return int(np.count_nonzero(up | down))


def pulse(step, g, v, dt, rate_p, rate_d, g_min, g_max, v_set, v_reset, shape_p, shape_d,
          rate_scale):
    """Noise-free, unclamped conductances after one pulse, and the switched mask.

    ``g`` is flat (n,); other per-device inputs have length n or 1 (or are
    scalars). ``step`` is the model's exact increase of the normalised distance
    u from the bound the pulse leaves (see :mod:`crossbar.devices.base`).
    """
    n = g.size
    v, dt, rate_p, rate_d = (np.broadcast_to(a, (n,)) for a in (v, dt, rate_p, rate_d))
    up, down = directions(v, dt, v_set, v_reset)
    dg = g_max - g_min
    new = g.copy()
    new[up] = g[up] + step((g[up] - g_min) / dg, rate_p[up] * rate_scale, dt[up],
                           v[up] / v_set, shape_p) * dg
    new[down] = g[down] - step((g_max - g[down]) / dg, rate_d[down] * rate_scale, dt[down],
                               v[down] / v_reset, shape_d) * dg
    return new, up | down


def update(step, g, v, dt, rate_p, rate_d, z, sigma, out, g_min, g_max, v_set, v_reset,
           shape_p, shape_d, rate_scale):
    """One pulse on every device: closed form, then noise, then counted clamp.

    Parameters
    ----------
    step : callable
        The model's ``_step``.
    g : ndarray, shape (n,)
        Conductances before the pulse (S).
    v, dt, rate_p, rate_d : ndarray, shape (n,) or (1,)
        Voltage (V), pulse width (s) and per-device rate constants.
    z : ndarray, shape (n_switched,) or (0,)
        Standard normal draws, one per switched device in C order; empty for
        no noise.
    sigma : float
        Noise std (S): the noise added to a switched device is ``sigma * z``.
    out : ndarray, shape (n,)
        Written with the conductances after the pulse; may be ``g``.
    g_min, g_max, v_set, v_reset, shape_p, shape_d, rate_scale : float
        :meth:`DeviceModel.kernel_constants`.

    Returns
    -------
    (n_switched, n_clipped) : tuple of int
    """
    new, switched = pulse(step, g, v, dt, rate_p, rate_d, g_min, g_max, v_set, v_reset,
                          shape_p, shape_d, rate_scale)
    moved = new[switched]
    if z.size:
        moved += sigma * z
    n_clipped = np.count_nonzero((moved < g_min) | (moved > g_max))
    new[switched] = np.clip(moved, g_min, g_max)
    out[...] = new
    return int(moved.size), int(n_clipped)


def update_kernel(step):
    """The twin of :func:`crossbar.devices.kernels.update_kernel`: ``update`` bound to ``step``."""
    return functools.partial(update, step)
