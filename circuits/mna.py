"""DC operating point of a SPICE :class:`~circuits.spice.Deck` by modified nodal analysis.

Unknowns are the node voltages (plus one internal node per diode with series
resistance) and the branch currents of voltage sources and VCVSs. Diodes are
linearised SPICE-style (companion model) and solved by Newton-Raphson with
logarithmic junction-voltage limiting; each linear step is written as a
correction ``x + J^-1 r`` so that the last iterations also act as iterative
refinement and the KCL residual ends near machine precision.

The diode equations and constants replicate ngspice 39 with default options
(TEMP = TNOM = 27 C, GMIN = 1e-12 S across every junction, its reverse-bias
approximation), so results agree with ngspice to rounding when ngspice is run
with tight tolerances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.sparse.linalg import splu

from crossbar.errors import CircuitError, ConvergenceError, FloatingNodeError, ParameterError

__all__ = ["OperatingPoint", "NewtonSettings", "solve_operating_point", "junction_current",
           "BOLTZMANN", "ELEMENTARY_CHARGE", "NOMINAL_TEMPERATURE", "THERMAL_VOLTAGE",
           "DEFAULT_GMIN"]

# ngspice 39 is compiled with the CODATA 2014 constants. The CODATA 2018 values
# (k/q = 8.617333262e-5 V/K) differ by 3.4e-7 relative, which moves a forward
# diode voltage by the same relative amount -- far outside our 1e-9 goal.
BOLTZMANN = 1.38064852e-23          # J/K
ELEMENTARY_CHARGE = 1.6021766208e-19  # C
NOMINAL_TEMPERATURE = 300.15        # K; SPICE's default TEMP = TNOM = 27 C
THERMAL_VOLTAGE = BOLTZMANN * NOMINAL_TEMPERATURE / ELEMENTARY_CHARGE  # V
DEFAULT_GMIN = 1e-12                # S, SPICE's GMIN across every junction

_EXP_LIMIT = 700.0  # exp() overflows just above 709


@dataclass(frozen=True)
class NewtonSettings:
    """Tolerances of the Newton-Raphson operating-point solve.

    An iteration is accepted when no junction voltage was limited, every node
    satisfies KCL to ``kcl_reltol`` of the sum of the magnitudes of the
    currents meeting there (plus ``kcl_abstol``), and the last update is below
    ``reltol`` relative (plus ``vntol`` volts / ``abstol`` amperes) or has
    stopped shrinking (rounding floor).

    Parameters
    ----------
    reltol : float
        Relative change of each unknown between iterations.
    vntol : float
        Absolute floor on node-voltage changes, V.
    abstol : float
        Absolute floor on branch-current changes, A.
    kcl_reltol : float
        Relative KCL residual per node.
    kcl_abstol : float
        Absolute KCL residual floor, A.
    max_iterations : int
        Newton iterations before falling back to source stepping.
    """

    reltol: float = 1e-12
    vntol: float = 1e-15
    abstol: float = 1e-18
    kcl_reltol: float = 1e-12
    kcl_abstol: float = 1e-18
    max_iterations: int = 100

    def __post_init__(self):
        for name in ("reltol", "vntol", "abstol", "kcl_reltol", "kcl_abstol"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ParameterError(f"NewtonSettings.{name} must be finite and >= 0, "
                                     f"got {value!r}")
        if int(self.max_iterations) < 2:
            raise ParameterError(f"NewtonSettings.max_iterations must be >= 2, "
                                 f"got {self.max_iterations!r}")


# --------------------------------------------------------------------------
# diode physics

def junction_current(vd, csat, vte, gmin=DEFAULT_GMIN):
    """Junction current and conductance, SPICE level-1 DC model (no breakdown).

    Forward and mild reverse bias (``vd >= -3 vte``) use Shockley's law
    ``csat (exp(vd/vte) - 1)``; deeper reverse bias uses SPICE's smooth
    approximation ``-csat (1 + (3 vte / (e vd))^3)`` (value and slope match at
    the joint), as ngspice does. ``gmin`` is a conductance in parallel.

    Parameters
    ----------
    vd, csat, vte : array_like
        Junction voltage (V), area-scaled saturation current (A) and
        ``N * Vt`` (V); broadcast together.
    gmin : float
        Parallel conductance, S.

    Returns
    -------
    current, conductance : ndarray
        Current from anode to cathode (A) and its derivative (S).
    """
    vd, csat, vte = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (vd, csat, vte)))
    shape = vd.shape
    vd, csat, vte = (np.ravel(a) for a in (vd, csat, vte))
    cd = np.empty(vd.shape)
    gd = np.empty(vd.shape)
    fwd = vd >= -3.0 * vte
    ev = np.exp(np.minimum(vd[fwd] / vte[fwd], _EXP_LIMIT))
    cd[fwd] = csat[fwd] * (ev - 1.0)
    gd[fwd] = csat[fwd] * ev / vte[fwd]
    rev = ~fwd
    arg = (3.0 * vte[rev] / (math.e * vd[rev])) ** 3
    cd[rev] = -csat[rev] * (1.0 + arg)
    gd[rev] = csat[rev] * 3.0 * arg / vd[rev]
    return (cd + gmin * vd).reshape(shape), (gd + gmin).reshape(shape)


def _critical_voltage(csat, vte):
    # Above this voltage the exponential is steep enough that SPICE limits
    # Newton steps (the point of maximum curvature of I(V)).
    return vte * np.log(vte / (math.sqrt(2.0) * csat))


def _limit_junction(v_new, v_old, vte, vcrit):
    """SPICE-style junction voltage limiting (pnjlim), vectorised.

    A forward step above ``vcrit`` larger than ``2 vte`` is replaced by the
    voltage at which the exponential's tangent from ``v_old`` would carry the
    requested current change, i.e. ``v_old + vte ln(1 + dv/vte)``; from a
    non-positive start it is ``vte ln(v_new/vte)``. Large reverse jumps are
    clipped too, which only helps convergence. Returns the limited voltages
    and a mask of those that were changed.
    """
    out = v_new.copy()
    big = (v_new > vcrit) & (np.abs(v_new - v_old) > 2.0 * vte)
    from_fwd = big & (v_old > 0)
    arg = 1.0 + (v_new - v_old) / vte
    ok = from_fwd & (arg > 0)
    out[ok] = v_old[ok] + vte[ok] * np.log(arg[ok])
    out[from_fwd & ~(arg > 0)] = vcrit[from_fwd & ~(arg > 0)]
    from_rev = big & ~(v_old > 0)
    out[from_rev] = vte[from_rev] * np.log(v_new[from_rev] / vte[from_rev])
    # Reverse side: allow at most about one volt beyond the previous value.
    floor = np.where(v_old > 0, -v_old - 1.0, 2.0 * v_old - 1.0)
    deep = ~big & (v_new < 0) & (v_new < floor)
    out[deep] = floor[deep]
    return out, big | deep


def _series_junction_voltage(vak, csat, vte, gs, gmin):
    """Junction voltage of a diode with series conductance ``gs`` (S) and
    terminal voltage ``vak``: the root of ``I_j(vj) = (vak - vj) gs``.

    Used to rebuild the internal node of results that do not report it
    (ngspice). The left side minus the right is increasing in ``vj`` so the
    root is unique; it lies between 0 and ``vak``.
    """
    if vak == 0.0:
        return 0.0

    def f(vj):
        return float(junction_current(vj, csat, vte, gmin)[0]) - (vak - vj) * gs

    if vak > 0:
        # The junction cannot carry more than vak*gs, which caps vj well
        # below exp overflow.
        hi = min(vak, vte * math.log1p(vak * gs / csat))
        lo = 0.0
    else:
        lo, hi = vak, 0.0
    if f(hi) <= 0.0:
        return hi
    return brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


# --------------------------------------------------------------------------
# topology checks

def _check_topology(deck) -> None:
    """Reject circuits without a unique DC solution before building matrices.

    A node must reach ground through elements that conduct at DC (R, D, V, the
    output of E); current sources and E inputs do not count. Voltage-defining
    elements (V, E) must not form a loop.
    """
    from .spice import GROUND, CurrentSource
    graph = nx.Graph()
    graph.add_node(GROUND)
    for el in deck.elements:
        nodes = [n.lower() for n in el.nodes]
        graph.add_nodes_from(nodes)
        if not isinstance(el, CurrentSource):
            graph.add_edge(nodes[0], nodes[1])
    floating = sorted(set(graph.nodes) - nx.node_connected_component(graph, GROUND))
    if floating:
        shown = ", ".join(floating[:10]) + (f" (and {len(floating) - 10} more)"
                                            if len(floating) > 10 else "")
        raise FloatingNodeError(f"{deck.path}: node(s) {shown} have no DC path to ground "
                                "(only current sources or VCVS inputs connect them)", floating)

    # Union-find over voltage-defining branches: an edge between nodes already
    # joined closes a loop, whose members are the tree path plus that edge.
    tree = nx.Graph()
    for el in deck.elements:
        if el.letter not in "VE":
            continue
        a, b = el.npos.lower(), el.nneg.lower()
        if a == b or (a in tree and b in tree and nx.has_path(tree, a, b)):
            loop = [el.name]
            if a != b:
                path = nx.shortest_path(tree, a, b)
                loop = [tree.edges[u, v]["name"] for u, v in zip(path, path[1:])] + loop
            raise CircuitError(f"{deck.path}: voltage sources/VCVS outputs form a loop: "
                               f"{', '.join(loop)} (their currents are undetermined)")
        tree.add_edge(a, b, name=el.name)


# --------------------------------------------------------------------------
# assembled system

class _System:
    """MNA matrices of a deck: ``A x + stamp(i_diode) = s * b``."""

    def __init__(self, deck, gmin: float):
        from .spice import GROUND, CurrentSource, Diode, Resistor, VCVS, VoltageSource
        self.deck = deck
        self.node_names = deck.nodes()
        index = {n: i for i, n in enumerate(self.node_names)}
        index[GROUND] = -1
        n_ext = len(self.node_names)

        diodes = [el for el in deck.elements if isinstance(el, Diode)]
        models = deck.models
        self.diode_names = [d.name.lower() for d in diodes]
        csat, vte, gs = [], [], []
        for d in diodes:
            m = models[d.model.lower()]
            csat.append(m.IS * d.area)
            vte.append(m.N * THERMAL_VOLTAGE)
            gs.append(d.area / m.RS if m.RS > 0 else 0.0)
        self.csat = np.array(csat, dtype=float)
        self.vte = np.array(vte, dtype=float)
        self.gs = np.array(gs, dtype=float)
        self.vcrit = _critical_voltage(self.csat, self.vte) if diodes else np.zeros(0)
        self.gmin = gmin

        # One internal node per diode with series resistance, after the
        # external nodes; the junction sits between it and the cathode.
        anode = np.array([index[d.anode.lower()] for d in diodes], dtype=np.int64)
        self.cathode = np.array([index[d.cathode.lower()] for d in diodes], dtype=np.int64)
        has_rs = self.gs > 0
        self.internal = np.full(len(diodes), -1, dtype=np.int64)
        self.internal[has_rs] = n_ext + np.arange(int(has_rs.sum()))
        self.anode = anode
        self.junction_pos = np.where(has_rs, self.internal, anode)
        self.n_nodes = n_ext + int(has_rs.sum())

        branches = [el for el in deck.elements if isinstance(el, (VoltageSource, VCVS))]
        self.branch_names = [el.name.lower() for el in branches]
        self.size = self.n_nodes + len(branches)

        rows, cols, vals = [], [], []
        b = np.zeros(self.size)

        def put(r, c, v):
            if r >= 0 and c >= 0:
                rows.append(r)
                cols.append(c)
                vals.append(v)

        def conductance(p, q, g):
            put(p, p, g)
            put(q, q, g)
            put(p, q, -g)
            put(q, p, -g)

        for el in deck.elements:
            if isinstance(el, Resistor):
                conductance(index[el.npos.lower()], index[el.nneg.lower()], 1.0 / el.resistance)
            elif isinstance(el, CurrentSource):
                # Rows are "current leaving the node": the source draws
                # `current` out of npos and pushes it into nneg.
                p, q = index[el.npos.lower()], index[el.nneg.lower()]
                if p >= 0:
                    b[p] -= el.current
                if q >= 0:
                    b[q] += el.current
        for k, el in enumerate(branches):
            j = self.n_nodes + k
            p, q = index[el.npos.lower()], index[el.nneg.lower()]
            put(p, j, 1.0)      # branch current leaves npos into the source
            put(q, j, -1.0)
            put(j, p, 1.0)      # v(npos) - v(nneg) ...
            put(j, q, -1.0)
            if isinstance(el, VoltageSource):
                b[j] = el.voltage
            else:
                put(j, index[el.cpos.lower()], -el.gain)
                put(j, index[el.cneg.lower()], el.gain)
        for i in np.flatnonzero(has_rs):
            conductance(int(anode[i]), int(self.internal[i]), float(self.gs[i]))

        self.b = b
        self.A = sp.csc_matrix((np.array(vals, dtype=float),
                                (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
                               shape=(self.size, self.size))
        self.A_abs = abs(self.A)

        # Junction conductance stamps: positions fixed, values per iteration.
        p, q = self.junction_pos, self.cathode
        r4 = np.concatenate([p, q, p, q])
        c4 = np.concatenate([p, q, q, p])
        self._sign4 = np.concatenate([np.ones(len(p)), np.ones(len(p)), -np.ones(len(p)),
                                      -np.ones(len(p))])
        self._keep4 = (r4 >= 0) & (c4 >= 0)
        self._r4, self._c4 = r4[self._keep4], c4[self._keep4]

    # ---- pieces of the iteration ---------------------------------------
    def junction_voltages(self, x):
        xg = np.append(x, 0.0)  # index -1 reads ground
        return xg[self.junction_pos] - xg[self.cathode]

    def stamp_currents(self, cd):
        """Node vector of junction currents leaving the anode side."""
        out = np.zeros(self.size)
        p, q = self.junction_pos, self.cathode
        mp, mq = p >= 0, q >= 0
        out += np.bincount(p[mp], weights=cd[mp], minlength=self.size)
        out -= np.bincount(q[mq], weights=cd[mq], minlength=self.size)
        return out

    def jacobian(self, gd):
        if len(gd) == 0:
            return self.A
        vals = (np.tile(gd, 4) * self._sign4)[self._keep4]
        G = sp.csc_matrix((vals, (self._r4, self._c4)), shape=(self.size, self.size))
        return (self.A + G).tocsc()

    def residual(self, x, scale):
        """KCL residual ``A x - s b + stamp(i_d)`` at ``x`` and, per row, the
        sum of the magnitudes of the terms it adds up (what rounding is
        relative to). Returns ``(None, None)`` if a junction voltage is beyond
        the exponential's range."""
        vd = self.junction_voltages(x)
        if np.any(vd / self.vte > _EXP_LIMIT):
            return None, None
        cd, _ = junction_current(vd, self.csat, self.vte, self.gmin)
        r = self.A @ x - scale * self.b + self.stamp_currents(cd)
        mag = self.A_abs @ np.abs(x) + np.abs(scale * self.b)
        p, q = self.junction_pos, self.cathode
        mp, mq = p >= 0, q >= 0
        mag += np.bincount(p[mp], weights=np.abs(cd[mp]), minlength=self.size)
        mag += np.bincount(q[mq], weights=np.abs(cd[mq]), minlength=self.size)
        return r, mag

    def factor(self, J):
        try:
            lu = splu(J.tocsc())
        except RuntimeError as err:
            raise CircuitError(self._singular_message(str(err))) from None
        return lu

    def _singular_message(self, detail: str) -> str:
        suspects = [el.name for el in self.deck.elements if el.letter in "VE"]
        hint = (f"; voltage-defining elements: {', '.join(suspects[:10])}"
                + (" ..." if len(suspects) > 10 else "")) if suspects else ""
        return f"{self.deck.path}: singular MNA matrix ({detail}){hint}"


def _newton(system: _System, settings: NewtonSettings, scale: float, x0, vd0, fresh: bool,
            max_iterations: int):
    """Newton-Raphson at source scale ``scale`` from ``x0`` (junctions at ``vd0``).

    ``fresh`` means ``x0`` is not a solution estimate yet: the first device
    evaluation uses ``vd0`` as is (SPICE's junction initialisation).
    Returns ``(x, vd, iterations)`` or ``None`` when it did not converge.
    """
    n = system.n_nodes
    x = x0.copy()
    vd = vd0.copy()
    nonlinear = len(vd) > 0
    lu = None
    prev_step = math.inf
    for it in range(1, max_iterations + 1):
        if fresh and it == 1:
            limited = True
        elif nonlinear:
            vd, mask = _limit_junction(system.junction_voltages(x), vd, system.vte, system.vcrit)
            limited = bool(mask.any())
        else:
            limited = False
        cd, gd = junction_current(vd, system.csat, system.vte, system.gmin)
        if lu is None or nonlinear:
            lu = system.factor(system.jacobian(gd))
        # Correction form: r is the residual of the linearised system at x,
        # so near convergence the solve refines x instead of recomputing it.
        lin = cd + gd * (system.junction_voltages(x) - vd)
        r = scale * system.b - system.A @ x - system.stamp_currents(lin)
        dx = lu.solve(r)
        if not np.all(np.isfinite(dx)):
            raise CircuitError(system._singular_message("non-finite solution"))
        x_new = x + dx
        step = float(np.max(np.abs(dx))) if dx.size else 0.0
        if it > 1 and not limited:
            tol = np.empty_like(x)
            tol[:n] = settings.vntol
            tol[n:] = settings.abstol
            tol += settings.reltol * np.maximum(np.abs(x), np.abs(x_new))
            # Rounding floor of the linear solve, relative to the largest
            # unknown of each kind, so well-solved tiny values don't stall.
            if n:
                tol[:n] += 8 * np.finfo(float).eps * np.max(np.abs(x_new[:n]))
            if x_new.size > n:
                tol[n:] += 8 * np.finfo(float).eps * np.max(np.abs(x_new[n:]))
            small = bool(np.all(np.abs(dx) <= tol))
            stalled = step >= 0.5 * prev_step
            if small or stalled:
                res, mag = system.residual(x_new, scale)
                if res is not None and np.all(
                        np.abs(res) <= settings.kcl_reltol * mag + settings.kcl_abstol):
                    return x_new, system.junction_voltages(x_new), it
        prev_step = step if not limited else math.inf
        x = x_new
    return None


def solve_operating_point(deck, settings: NewtonSettings | None = None) -> "OperatingPoint":
    """DC operating point of ``deck`` (see the module docstring).

    Newton-Raphson from SPICE's junction initialisation; if that does not
    converge in ``settings.max_iterations``, source stepping (all independent
    sources ramped from 0) with adaptive steps.

    Raises
    ------
    FloatingNodeError
        A node has no DC path to ground (message names nodes and deck path).
    CircuitError
        A loop of voltage sources / VCVS outputs, or a singular matrix.
    ConvergenceError
        Neither Newton nor source stepping converged.
    ParameterError
        ``.options temp``/``tnom`` other than 27 C, or a bad ``gmin``.
    """
    settings = settings or NewtonSettings()
    options = deck.options
    for name in ("temp", "tnom"):
        if name in options and options[name] != 27.0:
            raise ParameterError(f"{deck.path}: .options {name}={options[name]!r} is not supported "
                                 "by the memx solver (only the SPICE default 27 C)")
    gmin = options.get("gmin", DEFAULT_GMIN)
    if not isinstance(gmin, float) or not (math.isfinite(gmin) and gmin >= 0):
        raise ParameterError(f"{deck.path}: .options gmin must be a number >= 0 S, got {gmin!r}")
    _check_topology(deck)
    system = _System(deck, gmin)

    x0 = np.zeros(system.size)
    result = _newton(system, settings, 1.0, x0, system.vcrit.copy(), True,
                     settings.max_iterations)
    if result is None:
        x, iterations = _source_stepping(system, settings)
        iterations += settings.max_iterations
    else:
        x, _, iterations = result
    n_ext = len(system.node_names)
    voltages = dict(zip(system.node_names, x[:n_ext].tolist()))
    branch = dict(zip(system.branch_names, x[system.n_nodes:].tolist()))
    internal = {name: float(x[i]) for name, i in zip(system.diode_names, system.internal) if i >= 0}
    return OperatingPoint(deck, voltages, branch, internal, solver="memx", iterations=iterations)


def _source_stepping(system: _System, settings: NewtonSettings):
    """Ramp all sources from 0 to full value, halving the step on failure."""
    x = np.zeros(system.size)
    vd = np.zeros(len(system.vte))
    scale, step, total = 0.0, 0.1, 0
    while scale < 1.0:
        target = min(1.0, scale + step)
        out = _newton(system, settings, target, x, vd, False, settings.max_iterations)
        total += settings.max_iterations if out is None else out[2]
        if out is None:
            step /= 2
            if step < 1e-6:
                res, _ = system.residual(x, scale)
                raise ConvergenceError(
                    f"{system.deck.path}: DC operating point did not converge (Newton and source "
                    f"stepping stalled at {scale:.3g} of the source values)",
                    residual=float(np.max(np.abs(res))) if res is not None else float("nan"),
                    iterations=total)
            continue
        x, vd, _ = out
        scale = target
        step = min(2 * step, 0.5)
    return x, total


# --------------------------------------------------------------------------
# result

@dataclass
class OperatingPoint:
    """A DC operating point: node voltages and element currents.

    Attributes
    ----------
    deck : Deck
        The circuit solved.
    voltages : dict[str, float]
        Node voltage (V) by lower-case node name; ground is not listed.
    branch_currents : dict[str, float]
        Current (A) of each V and E element, into its ``+`` node (SPICE's
        ``vname#branch``).
    internal_voltages : dict[str, float]
        Voltage of the internal node of each diode with series resistance,
        by lower-case diode name (rebuilt from the terminal voltages when the
        solver did not report it).
    solver : str
        ``"memx"`` or ``"ngspice"``.
    iterations : int
        Newton iterations used (0 when unknown).
    currents : dict[str, float]
        Current of every element, entering its first node and leaving by the
        second (R: ``(v+ - v-)/R``; V, E: branch current; I: its value;
        D: anode to cathode).
    """

    deck: object
    voltages: dict
    branch_currents: dict
    internal_voltages: dict = field(default_factory=dict)
    solver: str = "memx"
    iterations: int = 0
    currents: dict = field(init=False)

    def __post_init__(self):
        from .spice import GROUND
        self._ground = GROUND
        self._rebuild_internal_nodes()
        self.currents = self._element_currents()

    # ---- lookups -------------------------------------------------------
    def voltage(self, node: str) -> float:
        """Voltage of ``node`` (case-insensitive) in V; ground (``0``/``gnd``) is 0."""
        key = str(node).lower()
        if key in ("0", "gnd"):
            return 0.0
        try:
            return self.voltages[key]
        except KeyError:
            raise ParameterError(f"{self.deck.path}: no node named {node!r}") from None

    def current(self, name: str) -> float:
        """Current of element ``name`` in A, entering its first node.

        For a V or E element this is SPICE's branch current: positive when it
        flows into the ``+`` terminal, so a source delivering power has a
        negative current (ngspice's ``vname#branch``).
        """
        try:
            return self.currents[str(name).lower()]
        except KeyError:
            raise ParameterError(f"{self.deck.path}: no element named {name!r}") from None

    # ---- checks --------------------------------------------------------
    def _v(self, node: str) -> float:
        return 0.0 if node == self._ground else self.voltages[node.lower()]

    def _rebuild_internal_nodes(self):
        from .spice import Diode
        models = self.deck.models
        gmin = self.deck.options.get("gmin", DEFAULT_GMIN)
        for el in self.deck.elements:
            if not isinstance(el, Diode):
                continue
            m = models[el.model.lower()]
            if m.RS > 0 and el.name.lower() not in self.internal_voltages:
                vak = self._v(el.anode) - self._v(el.cathode)
                vj = _series_junction_voltage(vak, m.IS * el.area, m.N * THERMAL_VOLTAGE,
                                              el.area / m.RS, gmin)
                self.internal_voltages[el.name.lower()] = self._v(el.cathode) + vj

    def _diode(self, el):
        """(junction current, current through RS) of diode ``el``."""
        m = self.deck.models[el.model.lower()]
        gmin = self.deck.options.get("gmin", DEFAULT_GMIN)
        va, vk = self._v(el.anode), self._v(el.cathode)
        vj_pos = self.internal_voltages.get(el.name.lower(), va)
        ij = float(junction_current(vj_pos - vk, m.IS * el.area, m.N * THERMAL_VOLTAGE, gmin)[0])
        irs = (va - vj_pos) * el.area / m.RS if m.RS > 0 else ij
        return ij, irs

    def _element_currents(self) -> dict:
        out = {}
        for el in self.deck.elements:
            key = el.name.lower()
            if el.letter == "R":
                out[key] = (self._v(el.npos) - self._v(el.nneg)) / el.resistance
            elif el.letter in "VE":
                out[key] = self.branch_currents[key]
            elif el.letter == "I":
                out[key] = el.current
            else:
                # The junction current, not (va - vint)/RS: equal at the
                # solution, but the difference of two close voltages loses
                # all its digits for the tiny currents of a blocking diode.
                out[key] = self._diode(el)[0]
        return out

    def _kcl(self):
        """Net current leaving each node and the sum of the magnitudes of
        the terms it is made of (a resistor counts ``(|v+| + |v-|)/R``, the
        rounding scale of a current computed from two node voltages)."""
        net: dict[str, float] = {n: 0.0 for n in self.voltages}
        mag: dict[str, float] = {n: 0.0 for n in self.voltages}
        for el in self.deck.elements:
            key = el.name.lower()
            i = self.currents[key]
            a, b = el.nodes[0].lower(), el.nodes[1].lower()
            size = abs(i)
            if el.letter == "R":
                size = (abs(self._v(el.npos)) + abs(self._v(el.nneg))) / el.resistance
            if el.letter == "D" and key in self.internal_voltages:
                ij, irs = self._diode(el)
                inner = f"{key}#internal"
                net[inner] = ij - irs    # RS current arrives, junction current leaves
                m = self.deck.models[el.model.lower()]
                size = (abs(self._v(el.anode)) + abs(self.internal_voltages[key])) * el.area / m.RS
                mag[inner] = abs(ij) + size
                i = irs
            for node, sign in ((a, 1.0), (b, -1.0)):
                if node in net:
                    net[node] += sign * i
                    mag[node] += size
        return net, mag

    def kcl_residuals(self) -> dict:
        """Net current (A) leaving each node, by node name; diode internal
        nodes appear as ``<diode>#internal``. Zero for an exact solution."""
        return self._kcl()[0]

    def kcl_residual(self, relative: bool = False) -> float:
        """Largest KCL imbalance over all nodes.

        Absolute (A) by default; with ``relative=True`` each node's imbalance
        is divided by the sum of the magnitudes of the currents meeting there
        (rounding makes ~1e-16 the floor of that measure).
        """
        net, mag = self._kcl()
        if relative:
            return max((abs(net[n]) / mag[n] for n in net if mag[n] > 0), default=0.0)
        return max((abs(v) for v in net.values()), default=0.0)

    def power_balance(self) -> float:
        """Power delivered by V, I and E elements minus power dissipated in
        resistors and diodes (incl. their series resistance), W. ~0."""
        delivered = dissipated = 0.0
        for el in self.deck.elements:
            v = self._v(el.nodes[0]) - self._v(el.nodes[1])
            p = v * self.currents[el.name.lower()]   # power absorbed
            if el.letter in "VIE":
                delivered -= p
            else:
                dissipated += p
        return delivered - dissipated

    def power_scale(self) -> float:
        """Sum of the magnitudes of all element powers, W (to judge
        :meth:`power_balance` against)."""
        return sum(abs((self._v(el.nodes[0]) - self._v(el.nodes[1]))
                       * self.currents[el.name.lower()]) for el in self.deck.elements)
