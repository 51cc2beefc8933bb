"""Everything around the arrays: SPICE interop, sensing and neuron circuits, the chip."""
