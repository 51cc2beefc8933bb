"""Everything around the arrays: SPICE interop, sensing and neuron circuits, the chip."""

from . import spice  # noqa: E402,F401  (SPICE interop: circuits.spice.read_deck, ...)
