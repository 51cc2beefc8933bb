"""Conductance models of memristive devices, updated pulse by pulse.

Each model is a frozen dataclass of SI parameters with the same interface:

* ``model.sample(shape, rng)``: device-to-device parameters, drawn once;
* ``model.initial_conductance(shape, rng)``: starting conductances;
* ``model.apply(g, v, duration, arrays, rng)``: one pulse on every device
  (numba kernel or numpy twin), with cycle-to-cycle noise and counted clamping;
* ``model.closed_form(g, v, duration)`` and ``model.dgdt(g, v)``: the noise-free
  physics of one nominal device.

Models: :class:`ExponentialDevice` (the thesis model), :class:`ThresholdDevice`
(VTEAM style) and :class:`SoftBoundsDevice` (linear to soft bounds).
"""
from .base import DeviceArrays, DeviceModel, UpdateStats
from .exponential import ExponentialArrays, ExponentialDevice
from .softbounds import SoftBoundsArrays, SoftBoundsDevice
from .threshold import ThresholdArrays, ThresholdDevice

__all__ = ["DeviceModel", "DeviceArrays", "UpdateStats", "ExponentialDevice",
           "ExponentialArrays", "ThresholdDevice", "ThresholdArrays", "SoftBoundsDevice",
           "SoftBoundsArrays"]
