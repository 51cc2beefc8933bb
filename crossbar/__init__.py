"""Physics of memristive crossbar arrays: devices, tiles and their circuit solve."""
from .errors import (CircuitError, ConvergenceError, CrossbarError, FloatingNodeError,
                     ParameterError)

__all__ = ["CrossbarError", "ParameterError", "CircuitError", "FloatingNodeError",
           "ConvergenceError"]
