"""What every card accepts: parameter names, kinds, units, defaults and ranges.

This table is the single source of the netlist format reference: the reader
checks against it and ``netlists/README.md`` carries its
:func:`markdown_tables` (a test keeps them equal; ``python -m
circuits.netlist`` rewrites them). Defaults of parameters that map 1:1
onto a dataclass of :mod:`crossbar` are read from that dataclass, so they
cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any

from crossbar.cells import Selector, SinhIV, Transistor
from crossbar.devices import ExponentialDevice, SoftBoundsDevice, ThresholdDevice
from crossbar.terminals import LoadResistor

from ..converters import ADC, DAC
from ..neurons import ACTIVATIONS, ROLES, NeuronParams

FLOAT, INT, BOOL, ENUM, MODEL, FLOAT_OR_ENUM = (
    "float", "int", "bool", "enum", "model", "float or keyword")
INF = math.inf


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()
"""Default of a parameter that must be given."""


def format_number(x) -> str:
    """Shortest exact text of a number: ``3``, ``0.1``, ``1e-06``, ``inf``."""
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e16:
        return str(int(x)) if x or math.copysign(1, x) > 0 else "-0.0"
    return repr(x)


@dataclass(frozen=True)
class Param:
    """One ``key=value`` parameter of a card.

    ``kind`` is one of ``float``, ``int``, ``bool`` (written 0 or 1), ``enum``
    (one of ``choices``), ``model`` (the name of a model whose type is in
    ``models``, or one of the keywords in ``choices``; ``none`` stands for
    None) and ``float or keyword`` (a number, or one of ``choices``).
    Numbers must lie in ``[low, high]`` (a bound is strict if ``*_open``);
    ``inf`` is accepted only where ``inf_ok``. ``only_if = (name, values)``:
    the parameter may be given only while parameter ``name`` (earlier in the
    table) has one of ``values``; otherwise it keeps its default.
    """

    name: str
    kind: str
    doc: str
    unit: str = ""
    default: Any = REQUIRED
    low: float = -INF
    high: float = INF
    low_open: bool = False
    high_open: bool = False
    inf_ok: bool = False
    choices: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    only_if: tuple[str, tuple[str, ...]] | None = None
    allowed_text: str | None = None
    default_text: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def range_text(self, unit: bool = True) -> str:
        """``[0, inf) ohm``: the allowed interval, with the unit."""
        lo = "(" if self.low_open or self.low == -INF else "["
        hi = "]" if (self.inf_ok if self.high == INF else not self.high_open) else ")"
        text = f"{lo}{format_number(self.low)}, {format_number(self.high)}{hi}"
        return f"{text} {self.unit}" if self.unit and unit else text

    def in_range(self, x: float) -> bool:
        if math.isinf(x) and not (self.inf_ok and x > 0):
            return False
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below

    def describe_allowed(self) -> str:
        """What the README's "allowed" column says."""
        if self.allowed_text:
            return self.allowed_text
        words = ", ".join(f"`{c}`" for c in self.choices)
        if self.kind == BOOL:
            return "0 or 1"
        if self.kind == ENUM:
            return words
        if self.kind == MODEL:
            what = f"the name of a model of type {', '.join(self.models)}"
            return f"{words} or {what}" if words else what
        if self.kind == INT:
            return f"integer in {self.range_text(False)}"
        if self.low == -INF and self.high == INF and not self.inf_ok:
            return "any finite value"
        if self.kind == FLOAT_OR_ENUM:
            return f"{words} or {self.range_text(False)}"
        return self.range_text(False)

    def describe_default(self) -> str:
        if self.default_text:
            return self.default_text
        if self.required:
            return "required"
        if self.default is None:
            return "`none`"
        if isinstance(self.default, str):
            return f"`{self.default}`"
        return format_number(self.default)


@dataclass(frozen=True)
class Element:
    """A kind of card: its syntax, its parameters and what they map onto.

    ``ordered`` lists ``(low, high, strict)`` pairs of parameters that must
    satisfy ``low < high`` (``strict``) or ``low <= high``; ``cls`` is the
    :mod:`crossbar` dataclass built from the parameters (its own checks run too).
    """

    syntax: str
    summary: str
    params: dict[str, Param]
    cls: type | None = None
    ordered: tuple[tuple[str, str, bool], ...] = ()
    note: str = ""


def _defaults(cls) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


def _table(*params: Param) -> dict[str, Param]:
    return {p.name: p for p in params}


def _fields(cls, *specs: tuple) -> dict[str, Param]:
    """Parameters named after the fields of dataclass ``cls``, with its defaults.

    Each spec is ``(name, kind, unit, doc, range keywords)``.
    """
    defaults = _defaults(cls)
    return _table(*(Param(name, kind, doc, unit, defaults[name], **rng)
                    for name, kind, unit, doc, rng in specs))


POS = dict(low=0.0, low_open=True)
NONNEG = dict(low=0.0)
ANY = {}
FRACTION = dict(low=0.0, high=1.0)

_DEVICE_COMMON = (
    ("g_min", FLOAT, "S", "lowest conductance, the fully RESET state", NONNEG),
    ("g_max", FLOAT, "S", "highest conductance, the fully SET state",
     dict(POS, allowed_text="> g_min")),
    ("v_set", FLOAT, "V", "SET threshold: only a device voltage above it potentiates", POS),
    ("v_reset", FLOAT, "V", "RESET threshold: only a device voltage below it depresses",
     dict(high=0.0, high_open=True)),
    ("dt_max", FLOAT, "s", "pulse width taking a nominal device from g_min to g_max", POS),
    ("eps_intra", FLOAT, "", "cycle-to-cycle noise: std of each switching step, "
     "as a fraction of g_max - g_min", FRACTION),
    ("eps_inter", FLOAT, "", "device-to-device spread: std/mean of the per-device rates",
     dict(low=0.0, high=10.0)),
    ("eps_inter_pairs", ENUM, "", "the two devices of a differential pair draw their rates "
     "independently, or share the pair's (as the thesis' code does)",
     dict(choices=("independent", "shared"))),
    ("init_std", FLOAT, "", "std of the initial conductances, as a fraction of the midpoint",
     FRACTION),
    ("init_mean", FLOAT, "S", "mean of the initial conductances (default: the midpoint); "
     "g_min leaves half the devices RESET", NONNEG),
)
_BETA = dict(low=0.0, high=100.0)
_THESIS_BETA = inspect.signature(ExponentialDevice.thesis).parameters["beta"].default


def _thesis_note() -> str:
    preset, plain = ExponentialDevice.thesis(), ExponentialDevice()
    changed = [f"{f.name}={format_number(getattr(preset, f.name))}"
               for f in dataclasses.fields(ExponentialDevice)
               if getattr(preset, f.name) != getattr(plain, f.name)
               and f.name not in ("beta_p", "beta_d")]
    return ("With `preset=thesis` the model is `ExponentialDevice.thesis(beta)`, the thesis' "
            "normalised setting (conductances in units of g_max, pulse widths in units of "
            f"dt_max): the defaults become {', '.join(changed)}, with beta_p = beta_d = beta; "
            "parameters given explicitly override them.")


def _model(mtype: str, cls, summary: str, *specs: tuple, extra: dict | None = None,
           note: str = "") -> Element:
    """A ``.model`` type whose parameters are the fields of ``cls`` (``extra`` first)."""
    return Element(f".model <name> {mtype}", f"{summary} ({cls.__name__})",
                   (extra or {}) | _fields(cls, *specs), cls=cls, note=note)


MODEL_TYPES: dict[str, Element] = {m.syntax.split()[-1]: m for m in (
    _model("exponential", ExponentialDevice, "the thesis' exponential device", *_DEVICE_COMMON,
           ("beta_p", FLOAT, "", "potentiation non-linearity (0 = linear)", _BETA),
           ("beta_d", FLOAT, "", "depression non-linearity (0 = linear)", _BETA),
           extra=_table(Param("preset", ENUM, "start from a preset instead of the plain defaults",
                              default="none", choices=("none", "thesis")),
                        Param("beta", FLOAT, "non-linearity of both directions in the thesis "
                              "preset", default=_THESIS_BETA, only_if=("preset", ("thesis",)),
                              **_BETA)),
           note=_thesis_note()),
    _model("threshold", ThresholdDevice, "a VTEAM-style threshold device", *_DEVICE_COMMON,
           ("alpha_set", FLOAT, "", "SET exponent of the overdrive v/v_set - 1", POS),
           ("alpha_reset", FLOAT, "", "RESET exponent of the overdrive v/v_reset - 1", POS),
           ("v_write_set", FLOAT, "V", "SET voltage at which one dt_max pulse is a full swing",
            dict(POS, allowed_text="> v_set")),
           ("v_write_reset", FLOAT, "V", "RESET voltage at which one dt_max pulse is a full "
            "swing", dict(high=0.0, high_open=True, allowed_text="< v_reset"))),
    _model("softbounds", SoftBoundsDevice, "a linear (gamma = 0) to soft-bounded device",
           *_DEVICE_COMMON,
           ("gamma", FLOAT, "", "soft-bound strength: the rate near the far bound is "
            "(1 - gamma) times the rate near the near one",
            dict(low=0.0, high=1.0, high_open=True))),
    _model("transistor", Transistor, "1T1R access transistor, on during reads",
           ("r_on", FLOAT, "ohm", "on-state channel resistance", POS)),
    _model("selector", Selector, "1S1R diode selector, SPICE level-1 junctions",
           ("i_s", FLOAT, "A", "saturation current", POS),
           ("n", FLOAT, "", "emission coefficient (ideality factor)", dict(POS, high=100.0)),
           ("bipolar", BOOL, "", "1: two antiparallel diodes; 0: one diode, anode on the row "
            "side", ANY),
           ("gmin", FLOAT, "S", "conductance in parallel with each junction", NONNEG)),
    _model("sinh", SinhIV, "non-linear device I-V, i = g v0 sinh(v/v0)",
           ("v0", FLOAT, "V", "voltage scale of the non-linearity", POS)),
    _model("dac", DAC, "a DAC driving a group's lines: 2^bits levels from v_min to v_max for "
           "activities 0 to 1",
           ("bits", INT, "", "resolution", dict(low=1, high=32)),
           ("v_min", FLOAT, "V", "output for code 0", ANY),
           ("v_max", FLOAT, "V", "output for the full-scale code", dict(allowed_text="> v_min"))),
    _model("adc", ADC, "an ADC quantising what the group's sense circuit outputs: 2^bits "
           "levels from lo to hi, in the unit of that output",
           ("bits", INT, "", "resolution", dict(low=1, high=32)),
           ("lo", FLOAT, "", "bottom of the input range", ANY),
           ("hi", FLOAT, "", "top of the input range", dict(allowed_text="> lo"))),
)}
DEVICE_TYPES = ("exponential", "threshold", "softbounds")
ACCESS_TYPES = ("transistor", "selector")
IV_TYPES = ("sinh",)

_NEURON = _defaults(NeuronParams)


def _neuron(name: str, kind: str, unit: str, doc: str, **kw) -> Param:
    return Param(name, kind, doc, unit, _NEURON[name], **kw)


GROUP = Element(
    "N<name> size=<int>", "a group of neurons (NeuronParams): one line each, plus an always-on "
    "bias line if bias=1",
    _table(
        Param("size", INT, "number of neurons", low=1),
        _neuron("role", ENUM, "", "what the group does in the chip", choices=ROLES),
        _neuron("activation", ENUM, "", "transfer function of the neuron circuit",
                choices=ACTIVATIONS),
        _neuron("bias", BOOL, "", "1: the group drives one extra always-on line, a bias input "
                "to the tiles whose rows it drives"),
        _neuron("r_feedback", FLOAT, "ohm", "feedback resistance of the transimpedance stage",
                **POS),
        _neuron("gain", FLOAT, "", "open-loop op-amp gain (inf: ideal)", inf_ok=True, **POS),
        _neuron("v_rail_pos", FLOAT, "V", "positive op-amp output rail",
                allowed_text="> v_rail_neg"),
        _neuron("v_rail_neg", FLOAT, "V", "negative op-amp output rail"),
        _neuron("v_offset", FLOAT, "V", "op-amp output offset"),
        _neuron("slope", FLOAT, "1/V", "slope of the sigmoid circuit: its argument is "
                "slope (u - v_mid)", **POS),
        _neuron("v_mid", FLOAT, "V", "centre of the sigmoid, or the comparator threshold"),
        _neuron("noise", FLOAT, "V", "rms noise at the comparator input (logistic): a "
                "stochastic neuron fires with probability sigmoid((u - v_mid) pi / (noise "
                "sqrt 3)); must be > 0", only_if=("activation", ("stochastic",)), **NONNEG),
        _neuron("tau", FLOAT, "s", "leaky-integrator time constant (0: static neurons)", **NONNEG),
        _neuron("gain_std", FLOAT, "", "neuron-to-neuron spread of the transimpedance gain "
                "(relative)", **FRACTION),
        _neuron("offset_std", FLOAT, "V", "neuron-to-neuron spread of the offset", **NONNEG),
        _neuron("slope_std", FLOAT, "", "neuron-to-neuron spread of the slope (relative)",
                **FRACTION),
        _neuron("dac", MODEL, "", "DAC driving the group's lines (input groups)",
                choices=("none",), models=("dac",)),
        _neuron("adc", MODEL, "", "ADC digitising what is measured of the group",
                choices=("none",), models=("adc",)),
    ), cls=NeuronParams)

TILE = Element(
    "X<name> <row group> <column group> model=<device model>",
    "a crossbar tile: the row group drives its rows, its columns feed the column group",
    _table(
        Param("model", MODEL, "device model of every crosspoint", models=DEVICE_TYPES),
        Param("rows", INT, "number of rows", low=1,
              default=None, default_text="row group size, +1 if the row group has bias=1"),
        Param("cols", INT, "number of logical columns (a differential pair counts once)",
              low=1, default=None, default_text="column group size, +1 if the column group has bias=1"),
        Param("pairs", BOOL, "1: each logical column is a differential pair G+ - G-",
              default=False),
        Param("r_row", FLOAT, "row wire resistance per segment (r_row = r_col = 0: ideal wires)",
              "ohm", 0.0, **NONNEG),
        Param("r_col", FLOAT, "column wire resistance per segment", "ohm", 0.0, **NONNEG),
        Param("r_driver_row", FLOAT, "output resistance of each row driver", "ohm", 0.0,
              **NONNEG),
        Param("r_driver_col", FLOAT, "output resistance of each column driver", "ohm", 0.0,
              **NONNEG),
        Param("sense", ENUM, "what ends the sensed lines: virtual ground, the column group's "
              "TIA, or a load resistor", default="vg", choices=("vg", "tia", "load")),
        Param("r_load", FLOAT, "load resistance of sense=load", "ohm",
              _defaults(LoadResistor)["r_load"], only_if=("sense", ("load",)), **POS),
        Param("access", MODEL, "access device of each cell (passive: 0T1R)", default="passive",
              choices=("passive",), models=ACCESS_TYPES),
        Param("iv", MODEL, "I-V law of the devices", default="linear", choices=("linear",),
              models=IV_TYPES),
        Param("bidirectional", BOOL, "1: the tile is also read transposed (columns driven, "
              "rows sensed)", default=False),
        Param("g_init", FLOAT_OR_ENUM, "initial conductances: the device model's "
              "initial_conductance (thesis), g_min, g_max, or one value", "S", "thesis",
              choices=("thesis", "min", "max"),
              allowed_text="`thesis`, `min`, `max` or a value in [g_min, g_max] S", **NONNEG),
    ))

# The defaults of circuits.chip.ProgramSettings (not imported: the chip reads netlists;
# tests/test_netlist_schema.py checks that they agree).
PROGRAM = Element(
    ".program key=value ...", "the programming drivers, shared by every tile (at most one "
    "card; without it, these defaults)",
    _table(
        Param("scheme", ENUM, "how unselected lines are biased while a cell is written (V/2: "
              "selected row +V/2, selected column -V/2, others 0; V/3: others at V/3 and 2V/3); "
              "what is written (outer product, row by row, write-verify) is the rule's schedule",
              default="v/2", choices=("v/2", "v/3")),
        Param("v_write", FLOAT, "full-select write voltage", "V", 1.6, **POS),
        Param("v_read", FLOAT, "read voltage: an activity of 1 drives a line at v_read", "V", 0.2,
              **POS),
        Param("dt_min", FLOAT, "shortest pulse width the drivers make", "s", 0.0, **NONNEG),
        Param("dt_max", FLOAT, "longest pulse width the drivers make", "s", INF, inf_ok=True,
              allowed_text=">= dt_min, inf allowed", **POS),
        Param("max_pulses", INT, "write-verify: most pulses per device", default=100, low=1),
        Param("verify_tol", FLOAT, "write-verify: relative tolerance", "", 0.02,
              low=0.0, high=1.0, low_open=True),
        Param("read_noise", FLOAT, "relative rms noise of a conductance measurement", "", 0.0,
              **FRACTION),
    ),
    ordered=(("dt_min", "dt_max", False),))

# A deep resistive network (circuits.resistive_network) instead of a chip of neuron groups
# and tiles: the netlist then holds device models, this card and optionally .program.
DRN = Element(
    ".drn key=value ...", "a deep resistive network (Kendall 2020, Scellier 2024): input "
    "voltage sources, crossbars of single devices, diode-clamped hidden nodes, bidirectional "
    "amplifiers, linear outputs (instead of N and X cards; at most one card)",
    _table(
        Param("inputs", INT, "input sources (e.g. 1568: the pixels and their inverted copies)", low=1),
        Param("hidden", INT, "nodes of the first hidden layer", low=1),
        Param("hidden2", INT, "nodes of a second hidden layer (0: none)", default=0, low=0),
        Param("outputs", INT, "output nodes", low=1),
        Param("model", MODEL, "device model of every crossbar", models=DEVICE_TYPES),
        Param("gain_in", FLOAT, "amplifier gain of the input rows (Scellier's input_gain)", "", 1.0,
              low=0.0, high=1e6, low_open=True),
        Param("gain_hid", FLOAT, "amplifier gain of each hidden layer's rows", "", 1.0,
              low=0.0, high=1e6, low_open=True),
        Param("diodes", ENUM, "both clamping diodes on every hidden node, or split: half the "
              "nodes rectified from below, half from above", default="both", choices=("both", "split")),
        Param("v_bias", FLOAT, "bias source of the clamping diodes", "V", 0.0, low=0.0, high=1e3),
        Param("i_sat", FLOAT, "diode saturation current", "A", 1e-14, low=0.0, high=1.0, low_open=True),
        Param("n", FLOAT, "diode emission coefficient", "", 1.0, low=0.0, high=100.0, low_open=True),
        Param("output_diodes", BOOL, "clamp the output nodes too", default=False),
        Param("bias_pos", FLOAT, "voltage of the positive bias line of every crossbar", "V", 1.0),
        Param("bias_neg", FLOAT, "voltage of the negative bias line of every crossbar", "V", -1.0),
    ))

ELEMENTS: dict[str, Element] = {"N": GROUP, "X": TILE, ".program": PROGRAM, ".drn": DRN}

MODEL_KEYWORDS = frozenset(c for el in (GROUP, TILE) for p in el.params.values()
                           if p.kind == MODEL for c in p.choices)
"""Words a model parameter reads as keywords; no model may be named after them."""


# ---------------------------------------------------------------------------- docs

def _markdown(element: Element) -> str:
    rows = [f"### `{element.syntax}`", "", element.summary[0].upper() + element.summary[1:]
            + ".", "", "| parameter | unit | default | allowed | meaning |",
            "|---|---|---|---|---|"]
    for p in element.params.values():
        doc = p.doc
        if p.only_if:
            doc += f" (only with {p.only_if[0]}={'/'.join(p.only_if[1])})"
        rows.append(f"| `{p.name}` | {p.unit} | {p.describe_default()} | "
                    f"{p.describe_allowed()} | {doc} |")
    if element.note:
        rows += ["", element.note]
    return "\n".join(rows)


TABLES_BEGIN = "<!-- BEGIN TABLES generated by circuits.netlist.schema.markdown_tables() -->"
TABLES_END = "<!-- END TABLES -->"


def markdown_tables() -> str:
    """The parameter tables of ``netlists/README.md`` (between the markers)."""
    parts = [_markdown(el) for el in (*ELEMENTS.values(), *MODEL_TYPES.values())]
    return "\n\n".join(parts) + "\n"


def update_readme(path) -> bool:
    """Replace the tables between the markers of README ``path``; True if it changed."""
    from pathlib import Path
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(TABLES_BEGIN, 1)
    _, tail = rest.split(TABLES_END, 1)
    new = f"{head}{TABLES_BEGIN}\n{markdown_tables()}{TABLES_END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
