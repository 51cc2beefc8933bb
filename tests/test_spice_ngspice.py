"""Cross-checks of our operating point against ngspice.

These tests need ngspice on PATH. They are never skipped silently: without
ngspice they fail with instructions, unless MEMX_ALLOW_NO_NGSPICE=1 is set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuits.ngspice import TIGHT_OPTIONS, NgspiceError, read_rawfile
from circuits.spice import Deck, parse_deck, read_deck, run_ngspice
from crossbar.errors import FloatingNodeError

pytestmark = pytest.mark.spice

DATA = Path(__file__).parent / "data" / "spice"


@pytest.fixture(autouse=True, scope="module")
def _require_ngspice(ngspice):
    """Every test here needs ngspice (the shared fixture fails loudly without it)."""


# ---- helpers ---------------------------------------------------------------

def assert_agree(ours, ref, rtol):
    """Every node voltage and element current agrees to ``rtol``.

    Relative to the value itself, with a floor of ``1e-3 rtol`` of the
    largest value for quantities that are ~0 by cancellation. A resistor
    current is judged against ``(|v+| + |v-|)/R``: it is a difference of two
    node voltages and carries their rounding.
    """
    assert set(ours.voltages) == set(ref.voltages)
    vmax = max((abs(v) for v in ref.voltages.values()), default=0.0)
    worst = 0.0
    for node, v in ref.voltages.items():
        err = abs(ours.voltages[node] - v) / (abs(v) + 1e-3 * vmax)
        worst = max(worst, err)
        assert err <= rtol, f"v({node}): ours {ours.voltages[node]!r} ngspice {v!r}"
    imax = max(abs(i) for i in ref.currents.values())
    for el in ours.deck.elements:
        key = el.name.lower()
        a, b = ours.currents[key], ref.currents[key]
        scale = abs(b)
        if el.letter == "R":
            scale += (abs(ref.voltage(el.npos)) + abs(ref.voltage(el.nneg))) / el.resistance
        err = abs(a - b) / (scale + 1e-6 * imax)
        worst = max(worst, err)
        assert err <= rtol, f"i({el.name}): ours {a!r} ngspice {b!r}"
    return worst


def random_deck(seed, n_nodes=40, n_extra=80, n_v=3, n_i=3, n_d=0, n_e=0):
    """Connected random network: a random spanning tree of resistors plus
    extra resistors, sources, diodes (half with RS) and VCVS stages."""
    rng = np.random.default_rng(seed)
    deck = Deck(f"random network {seed}")
    nodes = ["0"] + [f"n{i}" for i in range(1, n_nodes)]
    for i in range(1, n_nodes):
        deck.add_resistor(f"Rt{i}", nodes[i], nodes[int(rng.integers(0, i))],
                          float(10 ** rng.uniform(0, 5)))
    for k in range(n_extra):
        a, b = rng.choice(n_nodes, 2, replace=False)
        deck.add_resistor(f"R{k}", nodes[a], nodes[b], float(10 ** rng.uniform(0, 5)))
    for k in range(n_v):   # distinct + nodes to ground: no source loops
        deck.add_vsource(f"V{k}", nodes[1 + k], "0", float(rng.uniform(-5, 5)))
    for k in range(n_i):
        a, b = rng.choice(n_nodes, 2, replace=False)
        deck.add_isource(f"I{k}", nodes[a], nodes[b], float(rng.uniform(-2e-3, 2e-3)))
    if n_d:
        deck.add_model("dplain", IS=1e-14, N=1.0)
        deck.add_model("drs", IS=float(rng.uniform(1e-13, 1e-11)), N=1.6, RS=25.0)
    for k in range(n_d):
        a, b = rng.choice(n_nodes, 2, replace=False)
        deck.add_diode(f"D{k}", nodes[a], nodes[b], "drs" if k % 2 else "dplain",
                       float(rng.uniform(0.5, 2.0)))
    for k in range(n_e):
        # Each VCVS drives its own node through a resistor back into the net.
        c, d = rng.choice(n_nodes, 2, replace=False)
        deck.add_vcvs(f"E{k}", f"eo{k}", "0", nodes[c], nodes[d], float(rng.uniform(-2, 2)))
        deck.add_resistor(f"Re{k}", f"eo{k}", nodes[int(rng.integers(1, n_nodes))],
                          float(10 ** rng.uniform(2, 4)))
    return deck


def crossbar(n, rwire=1.5, selector=False, seed=0):
    rng = np.random.default_rng(seed)
    deck = Deck(f"{n}x{n} crossbar")
    if selector:
        deck.add_model("sel", IS=1e-12, N=1.2, RS=100.0)
    for i in range(n):
        deck.add_vsource(f"Vr{i}", f"in{i}", "0", float(rng.uniform(0, 1)))
        deck.add_vsource(f"Vc{i}", f"t{i}", "0", 0.0)
    for i in range(n):
        for j in range(n):
            deck.add_resistor(f"Rwr{i}_{j}", f"in{i}" if j == 0 else f"r{i}_{j - 1}",
                              f"r{i}_{j}", rwire)
            deck.add_resistor(f"Rwc{i}_{j}", f"t{j}" if i == 0 else f"c{i - 1}_{j}",
                              f"c{i}_{j}", rwire)
            top = f"r{i}_{j}"
            if selector:
                deck.add_diode(f"D{i}_{j}", top, f"m{i}_{j}", "sel")
                top = f"m{i}_{j}"
            deck.add_resistor(f"Rm{i}_{j}", top, f"c{i}_{j}", float(rng.uniform(1e4, 1e5)))
    return deck


# ---- agreement ---------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_random_resistor_networks(seed):
    deck = random_deck(seed)
    assert_agree(deck.operating_point(), run_ngspice(deck), rtol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_with_diodes_and_vcvs(seed):
    deck = random_deck(100 + seed, n_nodes=30, n_extra=40, n_d=12, n_e=2)
    ours, ref = deck.operating_point(), run_ngspice(deck)
    assert_agree(ours, ref, rtol=1e-6)
    # ngspice's own answer satisfies our KCL check (diode internal nodes rebuilt).
    assert ref.kcl_residual(relative=True) < 1e-9


def test_diode_with_series_resistance_and_area():
    deck = parse_deck("rs\n.model d D(IS=2e-14 N=1.3 RS=40)\nV1 in 0 3\nR1 in a 200\n"
                      "D1 a 0 d area=2.5\nD2 a b d\nR2 b 0 1k\nE1 o 0 a b 4\nRo o 0 500\n")
    worst = assert_agree(deck.operating_point(), run_ngspice(deck), rtol=1e-6)
    assert worst < 1e-9   # measured ~1e-13: same equations, same constants


def test_crossbar_with_wire_resistance():
    deck = crossbar(16)                               # 16x16: 544 nodes
    assert_agree(deck.operating_point(), run_ngspice(deck), rtol=1e-9)


def test_crossbar_with_selector_diodes():
    deck = crossbar(4, selector=True)
    assert_agree(deck.operating_point(), run_ngspice(deck), rtol=1e-6)


@pytest.mark.parametrize("name", ["divider.cir", "syntax_tour.cir"])
def test_decks_from_files(name):
    deck = read_deck(DATA / name)
    assert_agree(deck.operating_point(), run_ngspice(deck), rtol=1e-9)


def test_branch_current_sign_matches_ngspice():
    deck = read_deck(DATA / "divider.cir")
    ref = run_ngspice(deck)
    assert ref.current("V1") == pytest.approx(-2.5e-3, rel=1e-12)
    assert ref.solver == "ngspice"
    assert ref.power_balance() == pytest.approx(0.0, abs=1e-15)


# ---- runner behaviour ----------------------------------------------------------

def test_tight_options_override_the_deck(tmp_path):
    deck = parse_deck("t\n.options reltol=1e-3 gmin=1e-12\nV1 a 0 1\nR1 a 0 1k\n")
    run_ngspice(deck, keep_dir=tmp_path)
    text = (tmp_path / "deck.cir").read_text()
    for key, value in TIGHT_OPTIONS.items():
        assert f"{key}={value!r}" in text
    assert "reltol=0.001" not in text and "gmin=1e-12" in text
    voltages, currents = read_rawfile(tmp_path / "op.raw")
    assert voltages == {"a": 1.0} and currents == {"v1": pytest.approx(-1e-3, rel=1e-14)}


def test_ngspice_failure_carries_its_stderr():
    # A loop of voltage sources, past our own check, makes ngspice fail.
    deck = parse_deck("t\nV1 a 0 1\nV2 a 0 2\nR1 a 0 1k\n")
    with pytest.raises(NgspiceError, match="(?s)ngspice failed.*singular matrix"):
        run_ngspice(deck, check_topology=False)


def test_floating_node_checked_before_running():
    with pytest.raises(FloatingNodeError, match="b, c"):
        run_ngspice(parse_deck("t\nV1 a 0 1\nR1 a 0 1\nR2 b c 1\n"))
