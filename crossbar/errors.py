"""One exception hierarchy for the whole package.

Every error derives from :class:`CrossbarError` and from the built-in class a
caller would naturally catch (``ValueError`` for bad input, ``RuntimeError``
for a solver that did not converge), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class CrossbarError(Exception):
    """Base class of every error raised by this package."""


class ParameterError(CrossbarError, ValueError):
    """A parameter is missing, of the wrong shape, or outside its range.

    The message always names the parameter and, where there is one, the
    allowed range.
    """


class CircuitError(CrossbarError, ValueError):
    """The circuit is ill-posed: it has no unique DC solution."""


class FloatingNodeError(CircuitError):
    """A node has no conductive path to any source or ground.

    ``nodes`` holds the names of (some of) the floating nodes.
    """

    def __init__(self, message: str, nodes=()):
        super().__init__(message)
        self.nodes = tuple(nodes)


class ConvergenceError(CrossbarError, RuntimeError):
    """An iterative solve stopped before reaching its tolerance."""

    def __init__(self, message: str, residual: float = float("nan"), iterations: int = -1):
        super().__init__(message)
        self.residual = residual
        self.iterations = iterations
