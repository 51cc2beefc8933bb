"""The Chip: crossbar tiles and neuron groups wired together, seen through an instrument's interface.

A learning rule talks to a chip the way it would talk to a lab instrument:

- :meth:`Chip.read` applies inputs to a tile and returns what its sense
  circuits measure (pre-activation voltages, op-amp rails and ADC included);
- :meth:`Chip.propagate` also runs the destination group's activation circuit;
- :meth:`Chip.settle` lets the neuron circuits relax with some groups clamped
  and others nudged (the two phases of equilibrium propagation);
- :meth:`Chip.pulse` sends a programming schedule to a tile;
- :meth:`Chip.measure_conductance` reads devices one row at a time at the read
  voltage, with read noise, the only way a rule ever learns a conductance.

Structure. Neuron groups are the nodes of a networkx multigraph and tiles its
edges, from the group that drives the tile's rows to the group that senses its
columns. A bidirectional tile is also read transposed: its columns driven by
the column group, its rows sensed by the row group. A group with a bias line
adds one always-on line on its side of every tile it touches (an extra row, or
an extra column); the sensed current of a bias line is not a neuron's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from crossbar.errors import CrossbarError, ParameterError
from crossbar.program import measure_row, program
from crossbar.terminals import LoadResistor, OpAmpInput
from crossbar.write_kernels import width_range

from .neurons import NeuronGroup

NUDGE_PLACES = ("current", "activity")
"""Where :meth:`Chip.settle` adds an output nudge: a current before the activation, or a summing
stage after it."""
SOLVE_BYTES_PER_NODE = 32
"""Working memory of a wired read per circuit node and sample (measured: ~23 B on the 785 x 1026
tile of netlists/ep_p1h_wires.net, 50 samples at once); sizes :meth:`Chip.batch_limit`."""


class ChipError(CrossbarError, ValueError):
    """The chip's structure is inconsistent (a dangling group, a size mismatch...).

    ``subject`` names the tile or group the error is about (None if none), so a
    chip built from a netlist can point at that card.
    """

    def __init__(self, message: str, subject: str | None = None):
        super().__init__(message)
        self.subject = subject


@dataclass(frozen=True)
class ProgramSettings:
    """The programming drivers shared by the chip's tiles."""

    scheme: str = "V/2"
    """Half-select scheme: V/2 or V/3."""
    v_write: float = 1.6
    """Full-select write voltage, V."""
    v_read: float = 0.2
    """Read voltage: an activity of 1 drives a line at v_read, V."""
    dt_min: float = 0.0
    """Shortest pulse the drivers can make, s."""
    dt_max: float = math.inf
    """Longest pulse, s."""
    max_pulses: int = 100
    """Write-verify: most pulses per device."""
    verify_tol: float = 0.02
    """Write-verify: relative tolerance."""
    read_noise: float = 0.0
    """Relative rms noise of a conductance measurement."""


@dataclass
class ChipTile:
    """A tile placed on the chip: the array, its device model and where it is wired."""

    name: str
    tile: object
    device: object
    arrays: object
    rows: str
    cols: str
    bidirectional: bool = False
    sense: str = "vg"
    """How sensed lines end: ``vg``/``tia`` (the destination group's op-amp input) or ``load``."""
    r_load: float = 1e3
    """Load resistance for ``sense = load``, ohm."""


@dataclass
class Counters:
    """Events the chip counted: nothing clamped or clipped goes unrecorded."""

    reads: int = 0
    pulse_events: int = 0
    dac_clipped: int = 0
    rail_saturated: int = 0
    adc_clipped: int = 0
    device_clipped: int = 0


@dataclass
class SettleResult:
    """Activities and integrator states of every group after a settle."""

    activities: dict
    """What a rule observes: the free groups' activities, through their ADCs."""
    states: dict
    steps: int
    trace: list = field(default_factory=list)
    held: dict = field(default_factory=dict)
    """The analog activities the free groups' output stages drive at the end (before any ADC);
    pass ``hold=`` this to continue the settle exactly where it stopped."""


class Chip:
    """Tiles and neuron groups, validated as a graph. Build from a netlist
    (:func:`circuits.load`) or in code."""

    def __init__(self, groups: dict, tiles: dict, *, settings: ProgramSettings = ProgramSettings(),
                 rng: np.random.Generator | None = None, seed: int | None = None, source: str | None = None):
        self.groups: dict[str, NeuronGroup] = dict(groups)
        self._tiles: dict[str, ChipTile] = dict(tiles)
        self.settings = settings
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.seed = seed
        self.source = source
        self.counters = Counters()
        self.history = None
        self.graph = nx.MultiDiGraph()
        for name, g in self.groups.items():
            self.graph.add_node(name, size=g.size, role=g.params.role)
        for name, t in self._tiles.items():
            for end in (t.rows, t.cols):
                if end not in self.groups:
                    raise ChipError(f"tile {name}: unknown neuron group {end!r}", subject=name)
            self.graph.add_edge(t.rows, t.cols, key=name, bidirectional=t.bidirectional)
        self._validate()

    # ------------------------------------------------------------------ structure
    def _validate(self):
        for g in nx.isolates(self.graph):
            raise ChipError(f"neuron group {g} is dangling: no tile connects it", subject=g)
        for name, t in self._tiles.items():
            M, N = t.tile.shape
            rows, cols = self.groups[t.rows], self.groups[t.cols]
            if M != rows.lines:
                raise ChipError(f"tile {name} has {M} rows but group {t.rows} drives {rows.lines} lines "
                                f"({rows.size} neurons{' + bias' if rows.params.bias else ''})", subject=name)
            if N != cols.lines:
                raise ChipError(f"tile {name} has {N} columns but group {t.cols} drives {cols.lines} lines "
                                f"({cols.size} neurons{' + bias' if cols.params.bias else ''})", subject=name)

    @property
    def tiles(self) -> tuple[str, ...]:
        """Names of the tiles."""
        return tuple(self._tiles)

    def tile_groups(self, tile: str) -> tuple[str, str]:
        """(row group, column group) of a tile."""
        t = self._get(tile)
        return t.rows, t.cols

    def is_bidirectional(self, tile: str) -> bool:
        """Whether the tile is also read transposed (columns driving rows)."""
        return self._get(tile).bidirectional

    def tile_shape(self, tile: str) -> tuple[int, int]:
        """Logical (rows, columns) of a tile: the shape of its weight matrix, bias row included."""
        return self._get(tile).tile.shape

    def batch_limit(self, budget_bytes: float = 2e9) -> int | None:
        """The most samples one settle or read should take at once, or None for no limit.

        With ideal wires a read is a matrix product and a batch costs little memory.
        With wire resistance every read is a nodal solve of two nodes per crosspoint,
        for every sample of the batch at once: a thousand images on a 785 x 1026 tile
        need ~23 GB. The limit keeps the largest wired tile's solve within ``budget_bytes``.
        """
        nodes = [2 * t.tile.g.size for t in self._tiles.values() if not t.tile.wires.ideal]
        if not nodes:
            return None
        return max(1, int(budget_bytes // (SOLVE_BYTES_PER_NODE * max(nodes))))

    def images_per_batch(self, wanted: int, rows_per_image: int = 1) -> int:
        """``wanted`` images per batch, or fewer so that ``images x rows_per_image`` read rows
        (chains, one row per label) stay within :meth:`batch_limit`; at least one image."""
        limit = self.batch_limit()
        if limit is None:
            return wanted
        return max(1, min(wanted, limit // rows_per_image))

    def _get(self, tile) -> ChipTile:
        try:
            return self._tiles[tile]
        except KeyError:
            raise ChipError(f"no tile named {tile!r}; tiles: {', '.join(self._tiles)}") from None

    # ------------------------------------------------------------------ reads
    def _drive(self, group: NeuronGroup, x):
        """Line voltages (K, lines) for activities ``x`` of a driving group (bias line appended)."""
        x = np.asarray(x, dtype=float)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != group.size:
            raise ParameterError(f"inputs for group {group.name} must have shape (K, {group.size}); got {x.shape}")
        if group.params.dac is not None:
            v, n = group.params.dac(x)
            self.counters.dac_clipped += n
        else:
            v = x * self.settings.v_read
        if group.params.bias:
            v = np.concatenate([v, np.full((v.shape[0], 1), self.settings.v_read)], axis=1)
        return v

    def _route(self, tile: str, direction: str):
        """(placed tile, driving group, sensing group) of a read."""
        t = self._get(tile)
        if direction == "forward":
            return t, self.groups[t.rows], self.groups[t.cols]
        if direction == "backward":
            if not t.bidirectional:
                raise ChipError(f"tile {tile} is not bidirectional: it cannot be read transposed")
            return t, self.groups[t.cols], self.groups[t.rows]
        raise ParameterError(f"direction = {direction!r}; allowed: 'forward', 'backward'")

    @staticmethod
    def _sense(t: ChipTile, dst: NeuronGroup):
        if t.sense == "load":   # a load resistor: the neuron stage sees its voltage, i.e. i = v / R_load
            return LoadResistor(t.r_load)
        return OpAmpInput(dst.params.r_feedback, dst.params.gain)

    def _currents(self, tile: str, x, direction: str):
        """Sensed currents into the destination group (K, size) and that group."""
        t, src, dst = self._route(tile, direction)
        v = self._drive(src, x)
        sense = self._sense(t, dst)
        read_lines = t.tile.read_rows if direction == "forward" else t.tile.read_cols
        # A wired read solves every sample's nodes at once and keeps them all; a large batch
        # (a whole test set through one layer) would not fit, so it is read in parts. Callers
        # that read the same batch again and again (a settle) size it by images_per_batch, so
        # each read stays one solve and warm-starts from the last.
        step = max(1, len(v) if t.tile.wires.ideal else (self.batch_limit() or len(v)))
        starts = range(0, len(v), step) if len(v) else [0]     # an empty batch is still one (empty) read
        parts = [read_lines(v[k:k + step], sense=sense).outputs for k in starts]
        outputs = parts[0] if len(parts) == 1 else np.concatenate(parts)   # no copy in a settle's hot loop
        self.counters.reads += v.shape[0]
        i = outputs[:, :dst.size]   # the destination's own bias line is sensed too: not a neuron
        if t.sense == "load":
            i = i / t.r_load
        return i, dst

    def to_spice(self, tile: str, x, *, direction: str = "forward"):
        """The circuit of one read (the first input vector of ``x``) as a plain SPICE deck.

        Drivers, wires, cells and sense inputs are all in it, so ngspice can
        check :meth:`read` (see ``circuits.spice.run_ngspice``).
        """
        from .tile_spice import tile_deck
        t, src, dst = self._route(tile, direction)
        v = self._drive(src, x)[:1]
        row_g, row_v, col_g, col_v = t.tile.terminations(direction, v, sense=self._sense(t, dst))
        return tile_deck(t.tile, row_g, row_v[0], col_g, col_v[0], title=f"{tile} {direction} read")

    def read(self, tile: str, x, *, direction: str = "forward"):
        """Drive a tile with activities ``x`` (K, n_src) and measure the destination neurons.

        Returns the pre-activation voltages (K, n_dst) as the sense circuits deliver
        them: clipped at the op-amp rails and digitised by the group's ADC if it has one.
        """
        i, dst = self._currents(tile, x, direction)
        u, n_sat = dst.preactivation(i)
        self.counters.rail_saturated += n_sat
        return self._digitise(dst, u)

    def propagate(self, tile: str, x, *, direction: str = "forward", with_preactivation: bool = False):
        """Like :meth:`read`, then the destination group's activation circuit (stochastic ones fire).

        ``with_preactivation``: also return what :meth:`read` would have, from the same
        read (a sense circuit that both fires and is digitised), as ``(activity, u)``.
        """
        i, dst = self._currents(tile, x, direction)
        u, n_sat = dst.preactivation(i)
        self.counters.rail_saturated += n_sat
        y = self._digitise(dst, dst.activate(u, self.rng))
        return (y, self._digitise(dst, u)) if with_preactivation else y

    def _digitise(self, group, y):
        if group.params.adc is None:
            return y
        q, n = group.params.adc(y)
        self.counters.adc_clipped += n
        return q

    # ------------------------------------------------------------------ settle
    def settle(self, clamp: dict, *, steps: int, mode: str = "discrete", dt: float | None = None,
               nudge: dict | None = None, nudge_at: str = "current", init: dict | None = None,
               hold: dict | None = None, trace: bool = False) -> SettleResult:
        """Let the free neuron groups relax with ``clamp`` groups held at given activities.

        Every free group integrates the currents of all tiles it senses: forward
        reads of the tiles whose columns it owns, and transposed reads of the
        bidirectional tiles whose rows it owns (the symmetric coupling of an
        energy-based network).

        Parameters
        ----------
        clamp : {group: activities (K, n)}
            Groups held fixed (typically the inputs).
        steps : int
            Update steps.
        mode : "discrete" or "euler"
            ``discrete``: every free group jumps to its activation of the current
            pre-activation (the prototypical setting). ``euler``: leaky integrators,
            ``s += dt/tau (u - s)``, activity = activation(s).
        dt : float, s
            Euler step (``euler`` mode; default tau/10 of the fastest group).
        nudge : {group: (target (K, n), beta)}
            The nudged phase of EP: ``beta`` per unit of output error, where
            ``nudge_at`` says.
        nudge_at : "current" or "activity"
            ``current``: a current ``beta (target - activity) / R_t`` injected at
            the group's op-amp inputs (R_t: its nominal transimpedance), i.e.
            ``beta`` volts of pre-activation, before the rails and the activation.
            ``activity``: a summing stage after the activation circuit adds
            ``beta (target - a_prev)`` to the activity it drives (a_prev: the
            stage's output one step before, held), the thesis' prototypical
            nudge, which a saturated activation does not scale down. The summing
            stage is taken as ideal, with no rails of its own: for |beta| < 1 and
            targets in [0, 1] its output stays within [-c, 1 + c],
            c = |beta| / (1 - |beta|) (0.25 at the thesis' beta of 0.2).
        init : {group: states (K, n)}
            Starting integrator states (default 0).
        hold : {group: activities (K, n)}
            Starting analog activities of free groups (default: their activation
            of ``init``); a previous result's ``held`` continues it exactly.
        trace : bool
            Keep the activities of every step.
        """
        if mode not in ("discrete", "euler"):
            raise ParameterError(f"mode = {mode!r}; allowed: 'discrete', 'euler'")
        clamp = {g: np.atleast_2d(np.asarray(a, dtype=float)) for g, a in clamp.items()}
        for g in clamp:
            if g not in self.groups:
                raise ChipError(f"clamp: unknown neuron group {g!r}")
        K = next(iter(clamp.values())).shape[0]
        free = [g for g in self.groups if g not in clamp]
        if nudge_at not in NUDGE_PLACES:
            raise ParameterError(f"nudge_at = {nudge_at!r}; allowed: {', '.join(map(repr, NUDGE_PLACES))}")
        nudge = {g: (np.asarray(target, dtype=float), beta) for g, (target, beta) in (nudge or {}).items()}
        into_current = nudge if nudge_at == "current" else {}
        onto_activity = nudge if nudge_at == "activity" else {}
        states = {g: np.zeros((K, self.groups[g].size)) if not init or g not in init
                  else np.array(init[g], dtype=float) for g in free}
        hold = hold or {}
        act = {**clamp, **{g: np.array(hold[g], dtype=float) if g in hold
                           else self.groups[g].activate(states[g], self.rng) for g in free}}
        if mode == "euler":
            taus = [self.groups[g].params.tau for g in free if self.groups[g].params.tau > 0]
            if not taus:
                raise ChipError("euler settling needs at least one free group with tau > 0")
            dt = dt if dt is not None else min(taus) / 10
        # A tile driven by a clamped group delivers a constant current while the
        # clamp holds (its sense end is a virtual ground or load, whatever the
        # other lines do), so it is read once per settle rather than per step.
        fixed = {g: self._input_current(g, act, K, self._sources(g, only=set(clamp))) for g in free}
        varying = {g: self._sources(g, skip=set(clamp)) for g in free}   # the reads of every step
        history = []
        for _ in range(steps):
            u_all = {}
            for g in free:
                current = fixed[g] + self._input_current(g, act, K, varying[g])
                if g in into_current:   # injected at the op-amp input, so the rails clip it like any current
                    target, beta = into_current[g]
                    current = current + beta * (target - act[g]) / self.groups[g].transimpedance
                u, n_sat = self.groups[g].preactivation(current)
                self.counters.rail_saturated += n_sat
                u_all[g] = u
            for g in free:
                tau = self.groups[g].params.tau
                if mode == "discrete" or tau == 0:
                    states[g] = u_all[g]
                else:
                    states[g] = states[g] + dt / tau * (u_all[g] - states[g])
                new = self.groups[g].activate(states[g], self.rng)
                if g in onto_activity:   # the summing stage adds the nudge to the held previous output
                    target, beta = onto_activity[g]
                    new = new + beta * (target - act[g])
                act[g] = new
            if trace:
                history.append({g: act[g].copy() for g in free})
        return SettleResult(activities={g: self._digitise(self.groups[g], act[g]) for g in free},
                            states=states, steps=steps, trace=history, held={g: act[g] for g in free})

    def _sources(self, g, *, only=None, skip=()):
        """The reads group ``g`` senses, as (tile, driving group, direction): forward reads of the
        tiles whose columns it owns and transposed reads of the bidirectional tiles whose rows it
        owns, from the groups in ``only`` (default all) minus those in ``skip``."""
        reads = [(name, src, "forward") for src, _, name in self.graph.in_edges(g, keys=True)
                 if src not in skip and (only is None or src in only)]
        reads += [(name, dst, "backward") for _, dst, name, data in self.graph.out_edges(g, keys=True, data=True)
                  if data["bidirectional"] and dst not in skip and (only is None or dst in only)]
        return reads

    def _input_current(self, g, act, K, sources):
        """Sum of the currents group ``g`` senses through ``sources`` (from :meth:`_sources`)."""
        total = np.zeros((K, self.groups[g].size))
        for name, src, direction in sources:
            total += self._currents(name, act[src], direction)[0]
        return total

    # ------------------------------------------------------------------ programming
    @property
    def pulse_limits(self) -> tuple[float, float]:
        """Shortest and longest pulse width the drivers make, s."""
        return self.settings.dt_min, self.settings.dt_max

    def pulse(self, tile: str, schedule):
        """Send a programming schedule to a tile; returns a :class:`crossbar.program.ProgramReport`.

        Pulse widths must lie within :attr:`pulse_limits` (zero means no pulse).
        """
        t = self._get(tile)
        widths = getattr(schedule, "signed_widths", None)
        if widths is not None:
            shortest, longest = (schedule.width_range() if hasattr(schedule, "width_range")
                                 else width_range(widths())[1:])
            lo, hi = self.pulse_limits
            if longest > 0 and (shortest < lo or longest > hi):
                bad = shortest if shortest < lo else longest
                raise ParameterError(f"pulse width {bad:g} s is outside the drivers' range [{lo:g}, {hi:g}] s")
        report = program(t.tile, t.device, t.arrays, schedule, v_write=self.settings.v_write,
                         scheme=self.settings.scheme, rng=self.rng)
        self.counters.pulse_events += 1
        self.counters.device_clipped += report.n_clipped
        if self.history is not None:
            self.history.record(self.counters.pulse_events, tile, t.tile.g, pulses=report.pulses,
                                disturbed=report.disturbed, energy=report.energy, time=report.time)
        return report

    def measure_conductance(self, tile: str):
        """Apparent conductances (M, N_phys) of every device, read row by row at v_read.

        Each row is driven alone at ``v_read`` with the columns at virtual ground;
        the column currents over ``v_read`` are what an instrument sees (wire
        drops included), with relative read noise from the settings.
        """
        t = self._get(tile)
        g = np.stack([measure_row(t.tile, i, self.settings.v_read) for i in range(t.tile.rows)])
        if self.settings.read_noise:
            g = g * (1 + self.rng.normal(0.0, self.settings.read_noise, g.shape))
        return g

    # ------------------------------------------------------------------ state
    def attach(self, history):
        """Record every programming event to ``history`` (a circuits.history.HistoryWriter)."""
        self.history = history

    def record_to(self, path, *, record="all", stride: int = 1, mode: str = "w", rewind: bool = False,
                  **options):
        """Open an HDF5 history of this chip's tiles at ``path`` and attach it.

        ``record``: "all", a number of randomly chosen devices per tile, or a dict
        (see :class:`circuits.history.HistoryWriter`). The random choice uses its
        own generator derived from the chip's seed, so recording never changes a
        run. Provenance (netlist text, seed, version, git commit) is stored.
        Returns the writer (a context manager).
        """
        from .history import open_history
        writer = open_history(path, {name: t.tile.g.shape for name, t in self._tiles.items()},
                              {name: (t.device.g_min, t.device.g_max) for name, t in self._tiles.items()},
                              seed=self.seed, source=self.source, record=record, stride=stride, mode=mode,
                              rewind=rewind, **options)
        self.attach(writer)
        return writer

    def physical_shape(self, tile: str) -> tuple[int, int]:
        """Shape of the tile's device array (a differential pair counts twice)."""
        return self._get(tile).tile.g.shape

    def state_dict(self) -> dict:
        """Everything needed to resume: device states and the random generator."""
        state = {f"g/{name}": t.tile.g.copy() for name, t in self._tiles.items()}
        return {"arrays": state, "rng": self.rng.bit_generator.state, "counters": vars(self.counters).copy()}

    def load_state_dict(self, state: dict):
        for name, t in self._tiles.items():
            t.tile.g[...] = state["arrays"][f"g/{name}"]
        self.rng.bit_generator.state = state["rng"]
        self.counters = Counters(**state.get("counters", {}))
