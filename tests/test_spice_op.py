"""Our MNA operating point against closed forms, and its error handling."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from circuits.mna import (DEFAULT_GMIN, THERMAL_VOLTAGE, NewtonSettings, junction_current,
                          solve_operating_point)
from circuits.spice import Deck, parse_deck, read_deck
from crossbar.errors import CircuitError, ConvergenceError, FloatingNodeError, ParameterError

DATA = Path(__file__).parent / "data" / "spice"
VT = THERMAL_VOLTAGE


def test_thermal_voltage_is_ngspice_39():
    # ngspice 39 uses CODATA 2014 k and q at TNOM = 27 C.
    assert VT == pytest.approx(1.38064852e-23 * 300.15 / 1.6021766208e-19, rel=1e-15)


def test_voltage_divider():
    op = read_deck(DATA / "divider.cir").operating_point()
    assert op.voltage("out") == pytest.approx(7.5, rel=1e-14)
    assert op.voltage("in") == 10.0
    # SPICE convention: the delivering source carries a negative current.
    assert op.current("V1") == pytest.approx(-10.0 / 4e3, rel=1e-14)
    assert op.current("R1") == pytest.approx(10.0 / 4e3, rel=1e-14)
    assert op.voltages == pytest.approx({"in": 10.0, "out": 7.5}, rel=1e-14)
    assert set(op.currents) == {"v1", "r1", "r2"}


def test_current_source_into_resistor():
    # "I1 0 n 2m": 2 mA flows from node 0 through the source into n.
    op = parse_deck("t\nI1 0 n 2m\nR1 n 0 1k\n").operating_point()
    assert op.voltage("n") == pytest.approx(2.0, rel=1e-14)
    assert op.current("I1") == 2e-3
    op = parse_deck("t\nI1 n 0 2m\nR1 n 0 1k\n").operating_point()
    assert op.voltage("n") == pytest.approx(-2.0, rel=1e-14)


def test_vcvs_amplifier_and_feedback():
    op = parse_deck("amp\nVin in 0 0.1\nE1 out 0 in 0 10\nRL out 0 1k\n").operating_point()
    assert op.voltage("out") == pytest.approx(1.0, rel=1e-14)
    assert op.current("E1") == pytest.approx(-1e-3, rel=1e-14)
    assert op.current("Vin") == 0.0
    # Non-inverting amplifier with finite gain A and divider beta.
    A, r1, r2, vin = 1e4, 9e3, 1e3, 0.2
    deck = Deck("non-inverting")
    deck.add_vsource("Vin", "in", "0", vin)
    deck.add_vcvs("E1", "out", "0", "in", "fb", A)
    deck.add_resistor("R1", "out", "fb", r1)
    deck.add_resistor("R2", "fb", "0", r2)
    beta = r2 / (r1 + r2)
    op = deck.operating_point()
    assert op.voltage("out") == pytest.approx(vin * A / (1 + A * beta), rel=1e-13)
    assert op.current("E1") == pytest.approx(-op.voltage("out") / (r1 + r2), rel=1e-13)


def _diode_branch(v, r, IS, N, RS=0.0, area=1.0, gmin=DEFAULT_GMIN):
    """Junction voltage of V -- R -- D -- ground, by a scalar root find."""
    csat, vte = IS * area, N * VT
    rs = RS / area

    def kcl(vj):
        i = float(junction_current(vj, csat, vte, gmin)[0])
        return (v - vj - i * rs) / r - i if RS else (v - vj) / r - i

    return brentq(kcl, -abs(v) - 1, abs(v) + 1 if v < 0 else min(v, 1.5), xtol=1e-16, rtol=1e-15)


@pytest.mark.parametrize("v, r, IS, N, RS, area", [
    (5.0, 1e3, 1e-14, 1.0, 0.0, 1.0),
    (0.3, 1e2, 1e-12, 1.8, 0.0, 1.0),
    (2.0, 50.0, 1e-14, 1.0, 20.0, 1.0),
    (2.0, 50.0, 1e-14, 1.2, 20.0, 3.0),
    (-3.0, 1e3, 1e-14, 1.0, 0.0, 1.0),     # reverse bias: SPICE's cubic approximation
    (-0.05, 1e3, 1e-9, 1.0, 10.0, 1.0),    # mild reverse, Shockley branch
])
def test_diode_resistor_against_root_find(v, r, IS, N, RS, area):
    deck = Deck("diode")
    deck.add_model("dm", IS=IS, N=N, RS=RS)
    deck.add_vsource("V1", "in", "0", v)
    deck.add_resistor("R1", "in", "a", r)
    deck.add_diode("D1", "a", "0", "dm", area)
    op = deck.operating_point()
    vj = _diode_branch(v, r, IS, N, RS, area)
    i = float(junction_current(vj, IS * area, N * VT)[0])
    assert op.current("D1") == pytest.approx(i, rel=1e-12)
    assert op.current("V1") == pytest.approx(-i, rel=1e-12)
    assert op.voltage("a") == pytest.approx(vj + i * RS / area, rel=1e-12, abs=1e-15)
    assert op.kcl_residual(relative=True) < 1e-14


def test_shockley_with_gmin_exactly():
    # Forward branch is IS (exp(v/Vt) - 1) + GMIN v; the reverse one joins smoothly.
    i, g = junction_current(0.6, 1e-14, VT)
    assert i == pytest.approx(1e-14 * (math.exp(0.6 / VT) - 1) + 1e-12 * 0.6, rel=1e-15)
    assert g == pytest.approx(1e-14 * math.exp(0.6 / VT) / VT + 1e-12, rel=1e-15)
    lo, hi = -3 * VT * (1 + 1e-12), -3 * VT * (1 - 1e-12)
    (i1, i2), (g1, g2) = junction_current(np.array([lo, hi]), 1e-14, VT)
    assert i1 == pytest.approx(i2, rel=1e-9) and g1 == pytest.approx(g2, rel=1e-9)


def test_gmin_option_is_honoured():
    text = "t\n.options gmin=0\n.model dm D\nV1 a 0 -1\nD1 a 0 dm\n"
    op = parse_deck(text).operating_point()
    a = 3 * VT / (math.e * -1.0)
    assert op.current("D1") == pytest.approx(-1e-14 * (1 + a ** 3), rel=1e-14)


def test_kcl_and_power_balance_on_a_mixed_circuit():
    deck = read_deck(DATA / "syntax_tour.cir")
    op = deck.operating_point()
    assert op.kcl_residual() < 1e-15
    assert op.kcl_residual(relative=True) < 1e-14
    assert abs(op.power_balance()) < 1e-13 * op.power_scale()
    residuals = op.kcl_residuals()
    assert "d1#internal" in residuals and set(deck.nodes()) <= set(residuals)
    # Diode D1 has RS: its internal node sits between anode and cathode.
    assert 0 < op.internal_voltages["d1"] < op.voltage("x")


def test_random_diode_networks_converge_to_rounding():
    rng = np.random.default_rng(3)
    for seed in range(5):
        deck = Deck(f"rnd {seed}")
        deck.add_model("d", IS=1e-14, N=1.0)
        deck.add_model("drs", IS=1e-12, N=1.5, RS=30.0)
        n = 25
        for i in range(1, n):
            deck.add_resistor(f"Rt{i}", f"n{i}", f"n{int(rng.integers(0, i))}" if i > 1 else "0",
                              float(10 ** rng.uniform(1, 4)))
        for k in range(15):
            a, b = rng.choice(n - 1, 2, replace=False) + 1
            deck.add_diode(f"D{k}", f"n{a}", f"n{b}", "drs" if k % 2 else "d")
        deck.add_vsource("V1", "n1", "0", float(rng.uniform(1, 5)))
        deck.add_isource("I1", "0", "n7", 1e-3)
        op = deck.operating_point()
        assert op.kcl_residual(relative=True) < 1e-13
        assert abs(op.power_balance()) < 1e-11 * op.power_scale()


def test_crossbar_scale_solve_is_fast():
    # 32 x 32 crossbar with wire resistance: ~2100 nodes, linear.
    n, rw = 32, 1.5
    rng = np.random.default_rng(0)
    deck = Deck("xbar")
    for i in range(n):
        deck.add_vsource(f"Vr{i}", f"in{i}", "0", float(rng.uniform(0, 1)))
        deck.add_vsource(f"Vc{i}", f"t{i}", "0", 0.0)
    for i in range(n):
        for j in range(n):
            left = f"in{i}" if j == 0 else f"r{i}_{j - 1}"
            up = f"t{j}" if i == 0 else f"c{i - 1}_{j}"
            deck.add_resistor(f"Rwr{i}_{j}", left, f"r{i}_{j}", rw)
            deck.add_resistor(f"Rwc{i}_{j}", up, f"c{i}_{j}", rw)
            deck.add_resistor(f"Rm{i}_{j}", f"r{i}_{j}", f"c{i}_{j}", float(rng.uniform(1e4, 1e5)))
    op = deck.operating_point()
    assert len(op.voltages) == 2 * n + 2 * n * n
    assert op.kcl_residual() < 1e-15
    assert op.kcl_residual(relative=True) < 1e-13
    assert abs(op.power_balance()) < 1e-12 * op.power_scale()


# ---- ill-posed circuits -----------------------------------------------------

def test_floating_node_is_named_with_the_file(tmp_path):
    path = tmp_path / "float.cir"
    path.write_text("floating\nV1 a 0 1\nR1 a 0 1k\nR2 b c 1k\n")
    with pytest.raises(FloatingNodeError) as info:
        read_deck(path).operating_point()
    assert info.value.nodes == ("b", "c")
    assert str(path) in str(info.value) and "b, c" in str(info.value)


def test_node_fed_only_by_a_current_source_is_floating():
    with pytest.raises(FloatingNodeError, match="node.s. x "):
        parse_deck("t\nI1 0 x 1m\nV1 a 0 1\nR1 a 0 1\n").operating_point()


def test_vcvs_input_alone_is_not_a_dc_path():
    with pytest.raises(FloatingNodeError) as info:
        parse_deck("t\nE1 o 0 c 0 2\nR1 o 0 1k\n").operating_point()
    assert info.value.nodes == ("c",)


def test_zero_resistance_names_the_element():
    with pytest.raises(ParameterError, match="Rshort: resistance must be > 0"):
        Deck().add_resistor("Rshort", "a", "b", 0)


def test_voltage_source_loop_names_the_elements():
    with pytest.raises(CircuitError, match="loop: V1, V2") as info:
        parse_deck("t\nV1 a 0 1\nV2 a 0 1\nR1 a 0 1k\n").operating_point()
    assert not isinstance(info.value, FloatingNodeError)
    with pytest.raises(CircuitError, match="E1, V1, V3"):
        parse_deck("t\nV1 a 0 1\nE1 b a a 0 2\nV3 b 0 1\nR1 b 0 1\n").operating_point()
    with pytest.raises(CircuitError, match="loop: V9"):
        parse_deck("t\nV9 a a 1\nR1 a 0 1\n").operating_point()


def test_singular_matrix_is_a_circuit_error():
    # A VCVS that copies its own output (gain 1) leaves v(out) undetermined.
    with pytest.raises(CircuitError, match="singular"):
        parse_deck("t\nE1 out 0 out 0 1\nR1 out 0 1k\n").operating_point()


def test_unsupported_temperature_option():
    with pytest.raises(ParameterError, match="temp"):
        parse_deck("t\n.options temp=50\nV1 a 0 1\nR1 a 0 1\n").operating_point()
    parse_deck("t\n.options temp=27\nV1 a 0 1\nR1 a 0 1\n").operating_point()


def test_settings_validation_and_lookups():
    with pytest.raises(ParameterError):
        NewtonSettings(reltol=-1)
    op = solve_operating_point(parse_deck("t\nV1 a 0 1\nR1 a 0 1\n"), NewtonSettings(reltol=1e-10))
    with pytest.raises(ParameterError, match="no node named 'zz'"):
        op.voltage("zz")
    with pytest.raises(ParameterError, match="no element named 'R9'"):
        op.current("R9")


def test_hard_diode_start_uses_limiting():
    # A stiff forward diode straight across a big source: without junction
    # limiting the first Newton step would overflow exp().
    deck = parse_deck("t\n.model d D(IS=1e-16)\nV1 a 0 100\nR1 a b 0.1\nD1 b 0 d\n")
    op = deck.operating_point()
    vj = _diode_branch(100.0, 0.1, 1e-16, 1.0)
    assert op.voltage("b") == pytest.approx(vj, rel=1e-12)
    assert op.iterations < 100


def test_convergence_error_when_iterations_run_out():
    deck = parse_deck("t\n.model d D(IS=1e-16)\nV1 a 0 100\nR1 a b 0.1\nD1 b 0 d\n")
    with pytest.raises(ConvergenceError, match="did not converge") as info:
        deck.operating_point(max_iterations=2)
    assert info.value.iterations > 2
    assert isinstance(info.value, RuntimeError)


def test_source_stepping_fallback_reaches_the_same_point():
    deck = parse_deck("t\n.model d D(IS=1e-16)\nV1 a 0 100\nR1 a b 0.1\nD1 b 0 d\n")
    direct = deck.operating_point()
    stepped = deck.operating_point(max_iterations=4)   # too few for plain Newton
    assert stepped.iterations > 4
    assert stepped.voltage("b") == pytest.approx(direct.voltage("b"), rel=1e-13)
    assert stepped.current("V1") == pytest.approx(direct.current("V1"), rel=1e-12)
