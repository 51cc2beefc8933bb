"""Reading netlists: every construct, suffixes, expressions, includes, defaults and positions."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

import circuits
from circuits.converters import ADC, DAC
from circuits.netlist import GroupCard, NetlistError, Pos, parse_netlist, read_netlist
from crossbar.cells import Selector, SinhIV, Transistor
from crossbar.devices import ExponentialDevice, SoftBoundsDevice, ThresholdDevice

DATA = Path(__file__).parent / "data" / "netlists"
EXAMPLES = Path(__file__).parents[1] / "netlists"
TOUR = DATA / "tour.net"


def value(text: str) -> float:
    """The value of ``text`` written as a .param."""
    return parse_netlist(f"t\n.param x={text}\n").params["x"]


# ---- the syntax tour -----------------------------------------------------------

@pytest.fixture(scope="module")
def tour():
    return read_netlist(TOUR)


def test_tour_title_seed_params(tour):
    assert tour.title == "Syntax Tour: every construct of the netlist format"
    assert tour.seed == 12345
    assert tour.params == {"vr": 0.6, "vw": 1.2, "r_seg": 2.5, "rf": 1e4, "tiny": 1e-6,
                           "e1": 9.0, "e2": -0.5, "e3": pytest.approx(-0.998)}
    assert tour.text == TOUR.read_text()
    assert list(tour.sources) == [str(TOUR), str(DATA / "include" / "models.net"),
                                  str(DATA / "include" / "sub" / "threshold.net")]


def test_tour_models(tour):
    m = tour.models
    assert list(m) == ["dev", "th", "sel", "fet", "soft", "d6", "a10"]   # include order
    assert {k: c.type for k, c in m.items()} == {
        "dev": "exponential", "th": "threshold", "sel": "selector", "fet": "transistor",
        "soft": "sinh", "d6": "dac", "a10": "adc"}
    assert m["dev"].build() == ExponentialDevice.thesis(beta=0.01, eps_intra=0.002)
    assert m["th"].build() == ThresholdDevice(v_set=0.9, v_reset=-0.9, v_write_set=1.3,
                                              v_write_reset=-1.3)
    assert m["sel"].build() == Selector(i_s=1e-12, n=1.5, bipolar=False)
    assert m["fet"].build() == Transistor(r_on=2e3)
    assert m["soft"].build() == SinhIV(v0=0.3)
    assert m["d6"].build() == DAC(bits=6, v_min=0.0, v_max=0.6 / 3)
    assert m["a10"].build() == ADC(bits=10, lo=-1e-6, hi=1e-6)
    assert m["dev"].pos == Pos(str(DATA / "include" / "models.net"), 2, 8)
    assert m["th"].param_pos["v_reset"].path.endswith("threshold.net")


def test_tour_groups(tour):
    g = tour.groups
    assert list(g) == ["in", "hid", "out"]
    assert g["in"].size == 4 and g["in"].params["bias"] is True
    assert g["in"].params["dac"] == "d6" and g["in"].params["adc"] is None
    hid = g["hid"].params
    assert (hid["activation"], hid["slope"], hid["v_mid"], hid["tau"]) == ("sigmoid", 4.0, 0.1, 1e-6)
    assert hid["gain"] == math.inf and hid["r_feedback"] == 1e4
    assert (hid["gain_std"], hid["offset_std"], hid["slope_std"]) == (0.01, 1e-3, 0.02)
    assert hid["noise"] == 0.0 and "noise" not in g["hid"].param_pos   # the default
    assert g["in"].params["size"] == 4
    assert g["out"].params["noise"] == pytest.approx(0.05) and g["out"].params["adc"] == "a10"
    # a continuation line keeps its own physical position
    assert g["hid"].param_pos["r_feedback"] == Pos(str(TOUR), 21, 7)
    assert g["hid"].param_pos["slope_std"] == Pos(str(TOUR), 22, 35)


def test_tour_tiles(tour):
    w1, w2 = tour.tiles["w1"], tour.tiles["w2"]
    assert (w1.rows_group, w1.cols_group, w2.rows_group, w2.cols_group) == ("in", "hid", "hid", "out")
    assert w1.params == {
        "model": "dev", "rows": 5, "cols": 3, "pairs": True, "r_row": 2.5, "r_col": 1.0,
        "r_driver_row": 10.0, "r_driver_col": 20.0, "sense": "tia", "access": "sel",
        "iv": "soft", "bidirectional": True, "g_init": "min", "r_load": 1e3}
    assert w2.params["r_load"] == 4.7e3 and w2.params["access"] == "fet"
    assert w2.params["g_init"] == pytest.approx(50e-6)
    assert "rows" not in w1.param_pos and "rows" in w2.param_pos
    assert w1.node_pos == (Pos(str(TOUR), 25, 5), Pos(str(TOUR), 25, 8))
    assert w2.param_pos["model"] == Pos(str(TOUR), 28, 5)


def test_tour_program_and_end(tour):
    assert tour.program.params == {"scheme": "v/3", "v_write": 1.2, "v_read": 0.1,
                                   "dt_min": 1e-9, "dt_max": 1e-6, "max_pulses": 20,
                                   "verify_tol": 0.05, "read_noise": 0.01}
    assert "ignored" not in tour.groups                         # after .end


# ---- defaults and derived values ---------------------------------------------

def test_defaults_are_filled_and_told_apart_from_given_values():
    net = parse_netlist("t\n.model d exponential\nNa size=2 bias=1\nNb size=3\nXw a b model=d\n")
    tile, group = net.tiles["w"], net.groups["a"]
    assert tile.params["rows"] == 3 and tile.params["cols"] == 3       # 2 + bias, 3
    assert tile.params["sense"] == "vg" and tile.params["access"] == "passive"
    assert tile.params["iv"] == "linear" and tile.params["g_init"] == "thesis"
    assert list(tile.param_pos) == ["model"]
    assert group.params["role"] == "hidden" and list(group.param_pos) == ["size", "bias"]
    assert net.models["d"].build() == ExponentialDevice()
    assert net.program is None and net.seed is None


def test_card_order_and_forward_references():
    net = parse_netlist("t\nXw a b model=d\nNb size=1\nNa size=1\n.model d softbounds gamma=0\n")
    assert list(net.groups) == ["b", "a"] and net.tiles["w"].params["model"] == "d"
    assert net.models["d"].build() == SoftBoundsDevice(gamma=0.0)


def test_case_insensitive_keywords_names_and_values():
    net = parse_netlist("Title Keeps Case\n.MODEL DEV Exponential (G_MAX=1 G_MIN=0.5)\n"
                        "NIN SIZE=2 ROLE=INPUT\nnOut Size=1 Activation=HardSigmoid\n"
                        "XW In OUT MODEL=Dev SENSE=TIA\n.PROGRAM SCHEME=V/3\n.END\n")
    assert net.title == "Title Keeps Case"
    assert list(net.groups) == ["in", "out"] and list(net.tiles) == ["w"]
    assert net.groups["out"].params["activation"] == "hardsigmoid"
    assert net.tiles["w"].params["model"] == "dev" and net.program.params["scheme"] == "v/3"


def test_thesis_preset_and_overrides():
    net = parse_netlist("t\n.model a exponential preset=thesis\n"
                        ".model b exponential preset=thesis beta=3 g_max=2 beta_d=1\n")
    assert net.models["a"].build() == ExponentialDevice.thesis()
    assert net.models["a"].params["beta"] == 0.005
    assert net.models["b"].build() == ExponentialDevice.thesis(beta=3, g_max=2.0, beta_d=1.0)


def test_empty_and_title_only_netlists():
    for text in ("", "just a title", "title\n\n* nothing\n"):
        net = parse_netlist(text)
        assert (net.models, net.groups, net.tiles, net.program) == ({}, {}, {}, None)


# ---- numbers and expressions -------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1", 1.0), ("-2.5", -2.5), (".5", 0.5), ("1e-3", 1e-3), ("1E+3", 1e3),
    ("1f", 1e-15), ("1p", 1e-12), ("1n", 1e-9), ("1u", 1e-6), ("1m", 1e-3), ("1M", 1e-3),
    ("1k", 1e3), ("2.5meg", 2.5e6), ("2.5MEG", 2.5e6), ("1g", 1e9), ("1t", 1e12),
    ("1mil", 25.4e-6), ("10kohm", 1e4), ("1uA", 1e-6), ("0.2V", 0.2),
    ("inf", math.inf), ("-inf", -math.inf),
])
def test_suffixes(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("text, expected", [
    ("{1+2*3}", 7.0), ("{(1+2)*3}", 9.0), ("{2**3**2}", 512.0), ("{-2**2}", -4.0),
    ("{--1}", 1.0), ("{7/2}", 3.5), ("{1k/2}", 500.0), ("{2.5meg*2u}", 5.0),
    ("{sqrt(2)**2}", 2.0), ("{exp(1)}", math.e), ("{log(exp(2))}", 2.0), ("{log10(1k)}", 3.0),
    ("{abs(-3)}", 3.0), ("{min(3, 1, 2)}", 1.0), ("{max(1, 5)}", 5.0), ("{sin(pi/2)}", 1.0),
    ("{cos(0)}", 1.0), ("{PI}", math.pi), ("{ 1 + 1 }", 2.0), ("{1e3}", 1e3), ("{inf}", math.inf),
    ("{SQRT(4)}", 2.0),
])
def test_expressions(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-12)


def test_expressions_use_earlier_params():
    net = parse_netlist("t\n.param a=2 b={a*3}\n.param c={a+b} D={c/2}\n"
                        ".model m exponential v_set={d/4} v_reset={-D/4}\n")
    assert net.params == {"a": 2.0, "b": 6.0, "c": 8.0, "d": 4.0}
    assert (net.models["m"].params["v_set"], net.models["m"].params["v_reset"]) == (1.0, -1.0)


def test_plain_numbers_are_exact():
    for x in (0.1, 1 / 3, 7.692307692307693e-06, 1e-300, 123456789.123456789):
        assert value(repr(x)) == x


# ---- includes -----------------------------------------------------------------

def test_include_relative_to_the_including_file(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "devices.net").write_text('.model d exponential\n.include "more.net"\n')
    (tmp_path / "lib" / "more.net").write_text(".param k=3\n.end\nNignored size=1\n")
    (tmp_path / "top.net").write_text('top\n.include "lib/devices.net"\nNa size={k}\n'
                                      "Xw a a model=d\n")
    net = read_netlist(tmp_path / "top.net")
    assert net.groups["a"].size == 3 and set(net.models) == {"d"}
    assert "ignored" not in net.groups                         # .end ends the included file only
    assert len(net.sources) == 3
    # an absolute include, and parse_netlist's <string> anchored at the working directory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib" / "other.net").write_text(".param j=4\n")
    net = parse_netlist(f'top\n.include "{tmp_path / "lib" / "devices.net"}"\n'
                        '.include lib/other.net ; bare path\n')
    assert set(net.models) == {"d"} and net.params == {"k": 3.0, "j": 4.0}


def test_missing_include_is_an_error(tmp_path):
    (tmp_path / "top.net").write_text('top\n\n  .include "nope.net"\n')
    with pytest.raises(NetlistError) as info:
        read_netlist(tmp_path / "top.net")
    assert (info.value.line, info.value.col) == (3, 12)
    assert "cannot read included file" in info.value.reason


def test_top_level_file_not_found_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_netlist(tmp_path / "missing.net")


# ---- API ------------------------------------------------------------------------

def test_package_exports():
    assert circuits.parse_netlist is parse_netlist and circuits.read_netlist is read_netlist
    assert issubclass(circuits.NetlistError, ValueError)


def test_cards_are_frozen_and_compare_without_positions():
    a = parse_netlist("t\nNa size=2\n", "a.net").groups["a"]
    b = parse_netlist("t\n\n   Na    size=2\n", "b.net").groups["a"]
    assert a == b and a.pos != b.pos
    with pytest.raises(AttributeError):
        a.size = 3
    assert isinstance(a, GroupCard)


def test_examples_describe_the_intended_chips():
    p = read_netlist(EXAMPLES / "prezioso_perceptron.net")
    w = p.tiles["w"].params
    assert (w["rows"], w["cols"], w["pairs"], w["access"]) == (10, 3, True, "passive")
    assert p.program.params["scheme"] == "v/2"
    dev = p.models[w["model"]].params
    half = p.program.params["v_write"] / 2
    assert dev["v_set"] > half and -dev["v_reset"] > half     # half-selected devices are inert

    d = read_netlist(EXAMPLES / "drbm_mnist.net")
    w = d.tiles["w"].params
    assert (w["rows"], w["cols"], w["pairs"], w["bidirectional"]) == (795, 301, True, True)
    assert d.models[w["model"]].build() == ExponentialDevice.thesis()
    assert all(g.params["activation"] == "stochastic" for g in d.groups.values())
    assert (w["r_row"], w["r_col"]) == (0.0, 0.0)

    e = read_netlist(EXAMPLES / "ep_784_512_10.net")
    assert [(t.params["rows"], t.params["cols"]) for t in e.tiles.values()] == [(785, 513), (513, 10)]
    assert all(t.params["bidirectional"] and t.params["pairs"] for t in e.tiles.values())
    assert e.groups["in"].params["dac"] == "pixels"
    assert all(e.groups[n].params["activation"] == "sigmoid" and e.groups[n].params["slope"] == 4
               for n in ("hidden", "out"))
    assert e.models["dev1"].params["beta_p"] == 3 and e.models["dev1"].params["dt_max"] == 1e-6

    s = read_netlist(EXAMPLES / "passive_sneak.net")
    a = s.tiles["a"].params
    assert (a["rows"], a["cols"], a["r_row"], a["r_col"]) == (16, 16, 1.0, 1.0)
    assert (a["sense"], a["access"]) == ("load", "passive")
