"""Reader and writer of SPICE decks: syntax, errors with positions, round trips."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from circuits import spice
from circuits.spice import Deck, SpiceError, parse_deck, parse_number, read_deck
from crossbar.errors import CrossbarError, ParameterError

DATA = Path(__file__).parent / "data" / "spice"
BAD = sorted((DATA / "bad").glob("*.cir"))


# ---- numbers ---------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("1", 1.0), ("-2.5", -2.5), ("+3", 3.0), (".5", 0.5), ("5.", 5.0), ("1e-3", 1e-3),
    ("1E+3", 1e3), ("2.5e2", 250.0),
    ("1f", 1e-15), ("1p", 1e-12), ("1n", 1e-9), ("1u", 1e-6), ("1m", 1e-3), ("1k", 1e3),
    ("1meg", 1e6), ("1g", 1e9), ("1t", 1e12), ("1mil", 25.4e-6),
    ("4.7K", 4.7e3), ("2.5MEG", 2.5e6), ("2.5Meg", 2.5e6), ("1M", 1e-3),  # M is milli, as in SPICE
    ("10kohm", 1e4), ("1uA", 1e-6), ("3V", 3.0), ("5ohm", 5.0), ("1e-3A", 1e-3),
    ("1.5e3k", 1.5e6), ("2milli", 2 * 25.4e-6),   # 'mil' wins, rest are unit letters
    ("1e", 1.0),                                  # an 'e' without exponent is a unit letter
])
def test_parse_number_suffixes(text, value):
    assert parse_number(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["", "k", "1.2.3", "1x2", "--1", "nan", "inf", "1_0", "e3"])
def test_parse_number_rejects(text):
    with pytest.raises(ValueError):
        parse_number(text)


def test_plain_numbers_convert_exactly():
    rng = np.random.default_rng(1)
    for x in rng.standard_normal(200) * 10.0 ** rng.integers(-20, 20, 200):
        assert parse_number(repr(float(x))) == x


# ---- syntax tour -----------------------------------------------------------

def test_syntax_tour_reads_every_feature():
    deck = read_deck(DATA / "syntax_tour.cir")
    assert deck.title == "Syntax tour: comments, continuations, suffixes and case"
    assert deck.options == {"reltol": 1e-6, "gmin": 1e-12, "klu": True}
    models = deck.models
    assert set(models) == {"dmod", "dplain"}
    assert (models["dmod"].IS, models["dmod"].N, models["dmod"].RS) == (2.5e-14, 1.05, 10.0)
    assert (models["dplain"].IS, models["dplain"].N, models["dplain"].RS) == (1e-14, 1.0, 0.0)
    el = {e.name.lower(): e for e in deck.elements}
    assert len(el) == 11  # the card after .end is ignored
    assert el["vdd"] == spice.VoltageSource("VDD", "Vdd", "0", 2.5)   # GND -> 0
    assert el["r1"].resistance == 1e4
    assert el["r2"].resistance == pytest.approx(4.7e3)                # continued line
    assert el["rload"].resistance == 2.5e6
    assert el["rsmall"].resistance == pytest.approx(25 * 25.4e-6)
    assert el["iin"].current == pytest.approx(1e-6)
    assert el["d1"] == spice.Diode("D1", "x", "0", "DMOD", 2.0)
    assert el["d2"].area == 0.5                                        # positional area
    assert el["e1"] == spice.VCVS("E1", "amp", "0", "mid", "out", 2.0)
    assert el["ramp"].resistance == 500.0
    # Case-insensitive nodes: 'Vdd' and 'VDD' are one node.
    assert deck.nodes() == ["vdd", "mid", "out", "x", "amp"]


def test_case_insensitive_lookups():
    deck = parse_deck("t\nV1 A 0 1\nr1 a B 1k\nR2 b GnD 1k\n")
    op = deck.operating_point()
    assert op.voltage("A") == op.voltage("a") == 1.0
    assert op.voltage("b") == pytest.approx(0.5, rel=1e-14)
    assert op.voltage("gnd") == op.voltage("0") == 0.0
    assert op.current("R1") == op.current("r1")
    assert deck.element("R1") is deck.element("r1")


def test_comments_and_continuations_keep_positions():
    text = ("title\n"
            "* comment\n"
            "V1 a 0 ; trailing comment\n"
            "+ DC $ dollar comment\n"
            "+ 1.5\n"
            "R1 a 0 2 $ another\n"
            "R2 a 0 4 $no-space-after-dollar-is-not-a-comment\n")
    with pytest.raises(SpiceError) as info:
        parse_deck(text, "t.cir")
    err = info.value
    # '$no-space...' is not a comment (ngspice needs a blank after '$'), so it is an extra token.
    assert (err.line, err.col) == (7, 10)
    assert str(err).startswith("t.cir:7:10: ")
    deck = parse_deck(text.rsplit("R2", 1)[0], "t.cir")
    assert deck.element("V1").voltage == 1.5
    assert deck.element("R1").resistance == 2.0


def test_first_line_is_always_the_title():
    deck = parse_deck("R1 a 0 1k\nV1 a 0 1\n")
    assert deck.title == "R1 a 0 1k"
    assert [e.name for e in deck.elements] == ["V1"]
    assert parse_deck("").title == ""


def test_model_forms():
    a = parse_deck("t\n.model d1 D(IS=1e-15 N=2 RS=3)\n").models["d1"]
    b = parse_deck("t\n.MODEL d1 d is = 1e-15 , n = 2 rs=3\n").models["d1"]
    c = parse_deck("t\n.model d1 D (\n+ IS=1e-15\n+ N=2 RS=3 )\n").models["d1"]
    assert a == b == c == spice.DiodeModel("d1", 1e-15, 2.0, 3.0)
    assert parse_deck("t\n.model d2 D\n").models["d2"] == spice.DiodeModel("d2")  # defaults


def test_model_after_use_is_accepted():
    deck = parse_deck("t\nV1 a 0 1\nD1 a 0 late\n.model late D(IS=1e-15)\n")
    assert deck.element("D1").model == "late"


# ---- error corpus ----------------------------------------------------------

@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_broken_decks_report_line_and_column(path):
    # Each broken deck states the expected position and message in its title.
    m = re.search(r"expect (\d+):(\d+) (.*)$", path.read_text().splitlines()[0])
    line, col, fragment = int(m.group(1)), int(m.group(2)), m.group(3)
    with pytest.raises(SpiceError) as info:
        read_deck(path)
    err = info.value
    assert str(err).startswith(f"{path}:{line}:{col}: "), str(err)
    assert fragment in str(err)
    assert (err.path, err.line, err.col) == (str(path), line, col)


def test_spice_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_deck("t\nQ1 a b c mod\n")
    assert issubclass(SpiceError, CrossbarError) and issubclass(SpiceError, ValueError)


def test_unreadable_file(tmp_path):
    with pytest.raises(SpiceError, match="cannot read deck"):
        read_deck(tmp_path / "missing.cir")


def test_parse_deck_default_path():
    with pytest.raises(SpiceError, match=r"^<string>:2:8: "):
        parse_deck("t\nR1 a 0 abc\n")


# ---- programmatic construction ---------------------------------------------

def test_build_and_validate_in_code():
    deck = Deck("built")
    deck.add_model("dm", IS=2e-14, N=1.5, RS=5.0)
    deck.add_vsource("V1", "in", "gnd", 3)
    deck.add_resistor("R1", "in", "a", 1e3)
    deck.add_diode("D1", "a", "0", "dm", area=2)
    deck.add_isource("I1", "0", "a", 1e-6)
    deck.add_vcvs("E1", "out", "0", "a", "0", 2.0)
    deck.add_resistor("RL", "out", "0", 1e3)
    assert deck.element("V1").nneg == "0"      # gnd normalised
    assert len(deck) == 6
    with pytest.raises(ParameterError, match="duplicate element name 'r1'"):
        deck.add_resistor("r1", "a", "0", 1.0)
    with pytest.raises(ParameterError, match="R2: resistance must be > 0"):
        deck.add_resistor("R2", "a", "0", 0.0)
    with pytest.raises(ParameterError, match="R3: resistance must be finite"):
        deck.add_resistor("R3", "a", "0", math.inf)
    with pytest.raises(ParameterError, match="V2: voltage must be finite, got nan"):
        deck.add_vsource("V2", "a", "0", float("nan"))
    with pytest.raises(ParameterError, match="E2: gain must be finite"):
        deck.add_vcvs("E2", "x", "0", "a", "0", float("inf"))
    with pytest.raises(ParameterError, match="must start with 'R'"):
        deck.add_resistor("X1", "a", "0", 1.0)
    with pytest.raises(ParameterError, match="unknown diode model 'nope'"):
        deck.add_diode("D2", "a", "0", "nope")
    with pytest.raises(ParameterError, match="invalid node name"):
        deck.add_resistor("R4", "a b", "0", 1.0)
    with pytest.raises(ParameterError, match="IS must be > 0"):
        deck.add_model("bad", IS=0.0)
    with pytest.raises(ParameterError, match="duplicate .model name"):
        deck.add_model("DM")
    with pytest.raises(ParameterError, match="single line"):
        Deck("two\nlines")
    assert len(deck) == 6   # failed adds leave the deck unchanged


# ---- writer and round trips -------------------------------------------------

@pytest.mark.parametrize("name", ["divider.cir", "syntax_tour.cir"])
def test_read_write_read_is_identity(name, tmp_path):
    deck = read_deck(DATA / name)
    again = parse_deck(deck.to_spice())
    assert again == deck
    path = deck.write(tmp_path / "copy.cir")
    assert read_deck(path) == deck
    # Writing is a fixed point too.
    assert read_deck(path).to_spice() == deck.to_spice()


def test_round_trip_is_bit_exact_for_random_values():
    rng = np.random.default_rng(7)
    deck = Deck("random values")
    deck.add_model("dm", IS=float(rng.uniform(1e-16, 1e-12)), N=float(rng.uniform(1, 2)),
                   RS=float(rng.uniform(0, 100)))
    for k in range(50):
        deck.add_resistor(f"R{k}", f"n{k}", f"n{k + 1}", float(10 ** rng.uniform(-3, 9)))
    deck.add_vsource("V1", "n0", "0", float(rng.standard_normal()))
    deck.add_isource("I1", "n5", "0", float(rng.standard_normal() * 1e-7))
    deck.add_diode("D1", "n50", "0", "dm", float(rng.uniform(0.1, 10)))
    deck.add_vcvs("E1", "o", "0", "n3", "n4", float(rng.standard_normal()))
    deck.set_option("reltol", 1e-9)
    deck.set_option("method", "gear")
    again = parse_deck(deck.to_spice())
    assert again == deck
    for a, b in zip(deck.elements, again.elements):
        assert a == b   # dataclass equality compares floats exactly


def test_deck_inequality():
    a = parse_deck("t\nV1 a 0 1\nR1 a 0 1k\n")
    b = parse_deck("t\nV1 a 0 1\nR1 a 0 1.000000001k\n")
    assert a != b
    assert a == parse_deck("t\nV1 a 0 dc 1\nR1 a 0 1000\n.op\n.end\n")
