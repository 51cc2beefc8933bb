"""Everything around the arrays: SPICE interop, sensing and neuron circuits, the chip."""

from . import spice  # noqa: E402,F401  (SPICE interop: circuits.spice.read_deck, ...)

# The chip and what a learning rule may send it: the public interface of the hardware.
from crossbar.schedules import OuterProductWrite, RowByRowWrite, WriteVerify  # noqa: E402,F401
from crossbar.waveforms import WaveformWrite  # noqa: E402,F401

from .chip import NUDGE_PLACES, Chip, ChipError, ProgramSettings  # noqa: E402,F401
from .converters import ADC, DAC  # noqa: E402,F401
from .neurons import NeuronGroup, NeuronParams  # noqa: E402,F401
from .resistive_network import DiodeClamp, DRNOperatingPoint, DRNSolver, ResistiveNetwork  # noqa: E402,F401

# The netlist file format (circuits/netlist/): text -> Netlist (pure data with positions).
from .netlist import NetlistError, parse_netlist, read_netlist  # noqa: E402,F401
from .build import build_chip, load  # noqa: E402,F401
