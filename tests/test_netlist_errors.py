"""Broken netlists: every error is a NetlistError at the right file:line:col, saying what was expected."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

import circuits
from circuits.netlist import NetlistError, parse_netlist, read_netlist
from crossbar.errors import CrossbarError

DATA = Path(__file__).parent / "data" / "netlists"
BAD = sorted((DATA / "bad").glob("*.net"))
# First line of each bad file: "expect [path:]line:col message fragment"
EXPECT = re.compile(r"expect (?:(?P<path>.+):)?(?P<line>\d+):(?P<col>\d+) (?P<fragment>.+)")

HEAD = "t\n.model dev exponential\nNa size=4 role=input\nNb size=2\n"   # cards on lines 2-4


def error_of(text: str, path: str = "x.net") -> NetlistError:
    with pytest.raises(NetlistError) as info:
        parse_netlist(text, path)
    return info.value


def test_bad_corpus_is_not_empty():
    assert len(BAD) >= 50


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_netlist(path):
    expect = EXPECT.match(path.read_text(encoding="utf-8").split("\n")[0])
    assert expect, f"{path.name}: first line must be 'expect [path:]line:col fragment'"
    with pytest.raises(NetlistError) as info:
        read_netlist(path)
    err = info.value
    where = (path.parent / expect["path"]) if expect["path"] else path
    assert Path(err.path).resolve() == where.resolve(), str(err)
    assert (err.line, err.col) == (int(expect["line"]), int(expect["col"])), str(err)
    assert expect["fragment"] in str(err), str(err)
    # the message starts with the position and ends with the source line and a caret
    assert str(err).startswith(f"{err.path}:{err.line}:{err.col}: ")
    head, shown, caret = str(err).rsplit("\n", 2)
    assert caret == " " * (err.col - 1) + "^"
    assert len(shown) >= err.col - 1


def test_error_type_and_attributes():
    err = error_of(HEAD + "Xw a b model=dev r_row=-1\n")
    assert isinstance(err, ValueError) and isinstance(err, CrossbarError)
    assert circuits.NetlistError is NetlistError
    assert (err.path, err.line, err.col) == ("x.net", 5, 24)
    assert err.reason == "r_row = -1 ohm is outside the allowed range [0, inf) ohm"
    assert str(err) == ("x.net:5:24: r_row = -1 ohm is outside the allowed range [0, inf) ohm\n"
                        "Xw a b model=dev r_row=-1\n" + " " * 23 + "^")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.col == 24


def test_caret_stays_aligned_with_tabs():
    err = error_of(HEAD + "Xw\ta\tb\tmodel=dev\tr_row=-1\n")
    shown, caret = str(err).split("\n")[1:]
    assert shown[caret.index("^"):].startswith("-1")


@pytest.mark.parametrize("card, suggestion", [
    ("Xw a b model=dev r_rwo=1", "did you mean 'r_row'?"),
    ("Xw a b model=dev bidirectonal=1", "did you mean 'bidirectional'?"),
    ("Nc size=2 activaton=sigmoid", "did you mean 'activation'?"),
    ("Nc size=2 activation=sigmod", "did you mean 'sigmoid'?"),
    (".model m exponential betap=1", "did you mean 'beta_p'?"),
    (".model m selector i_ss=1", "did you mean 'i_s'?"),
    (".program schem=v/2", "did you mean 'scheme'?"),
    (".program scheme=v2", "did you mean 'v/2'?"),
    ("Xw a bb model=dev", "did you mean 'b'?"),
    ("Xw a b model=deb", "did you mean 'dev'?"),
    (".modle m exponential", "did you mean '.model'?"),
    (".model m threshhold", "did you mean 'threshold'?"),
    (".param vread=1\nXw a b model=dev r_row={vrea}", "did you mean 'vread'?"),
])
def test_did_you_mean(card, suggestion):
    assert suggestion in str(error_of(HEAD + card + "\n"))


def test_unknown_parameter_without_close_match_lists_the_known_ones():
    err = error_of(HEAD + "Xw a b model=dev zzzzzz=1\n")
    assert "known: model, rows, cols, pairs" in str(err)


@pytest.mark.parametrize("card, message", [
    ("Xw a b model=dev r_col=-2", "r_col = -2 ohm is outside the allowed range [0, inf) ohm"),
    ("Xw a b model=dev sense=load r_load=0", "r_load = 0 ohm is outside the allowed range (0, inf) ohm"),
    ("Nc size=1 gain_std=1.5", "gain_std = 1.5 is outside the allowed range [0, 1]"),
    ("Nc size=1 tau=-1u", "tau = -1e-06 s is outside the allowed range [0, inf) s"),
    ("Nc size=1 r_feedback=inf", "r_feedback = inf ohm is outside the allowed range (0, inf) ohm"),
    (".model m softbounds gamma=1", "gamma = 1 is outside the allowed range [0, 1)"),
    (".model m selector n=0", "n = 0 is outside the allowed range (0, 100]"),
    (".model m dac bits=33", "bits = 33 is outside the allowed range [1, 32]"),
    (".model m exponential eps_intra=2", "eps_intra = 2 is outside the allowed range [0, 1]"),
    (".program verify_tol=0 scheme=v/3", "verify_tol = 0 is outside the allowed range (0, 1]"),
    (".program max_pulses=0", "max_pulses = 0 is outside the allowed range [1, inf)"),
])
def test_ranges_name_parameter_unit_and_interval(card, message):
    assert error_of(HEAD + card + "\n").reason == message


def test_enum_error_lists_the_allowed_values():
    err = error_of(HEAD + "Nc size=1 role=visible\n")
    assert "role = 'visible' is not one of input, hidden or output" in str(err)


def test_dataclass_check_is_reported_at_the_parameter():
    # ThresholdDevice checks v_write_set > v_set itself; the error points at v_write_set
    err = error_of(HEAD + ".model m threshold v_set=1.5\n")
    assert "v_write_set" in err.reason and (err.line, err.col) == (5, 1 + len(".model m threshold v_set=1.5"))
    err = error_of(HEAD + ".model m threshold v_set=1.5 v_write_set=1.4\n")
    assert (err.line, err.col) == (5, 30) and "v_write_set = 1.4" in err.reason


def test_expression_errors_point_inside_the_braces():
    err = error_of(HEAD + ".param a=1\nXw a b model=dev r_row={ 2 * a + sqrt(b) }\n")
    assert (err.line, err.col) == (6, 39) and "undefined parameter 'b'" in err.reason


@pytest.mark.parametrize("expr, fragment", [
    ("2k * 1.2.3", "bad expression"), ("sqrt(-1)", "math domain error"),
    ("(-8)**0.5", "not a real number"), ("10**400", "too large"),
    ("__import__('os')", "unknown function"), ("(1).real", "unsupported syntax"),
    ("inf - inf", "nan"), ("", "empty expression"), ("1 < 2", "unsupported syntax"),
    ("lambda: 1", "unsupported syntax"), ("min()", "takes at least 1 argument"),
    ("sqrt(1, 2)", "takes 1 argument"), ("sqrt", "must be called"), ("1_000", "malformed"),
])
def test_expression_errors(expr, fragment):
    err = error_of(HEAD + f"Xw a b model=dev r_row={{{expr}}}\n")
    assert fragment in err.reason and err.line == 5 and 24 <= err.col <= 25 + len(expr)


def test_parameters_are_only_visible_after_their_definition():
    err = error_of(HEAD + "Xw a b model=dev r_row={late}\n.param late=1\n")
    assert "undefined parameter 'late'" in err.reason


def test_include_cycle_names_the_chain(tmp_path):
    (tmp_path / "a.net").write_text('* a\n.include "sub/b.net"\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.net").write_text('* b\n\n.include "../a.net"\n')
    (tmp_path / "top.net").write_text('top\n.include "a.net"\n')
    with pytest.raises(NetlistError) as info:
        read_netlist(tmp_path / "top.net")
    err = info.value
    assert Path(err.path) == tmp_path / "sub" / "b.net" and (err.line, err.col) == (3, 10)
    chain = err.reason.split(": ", 1)[1].split(" -> ")
    assert [Path(p).name for p in chain] == ["a.net", "b.net", "a.net"]


def test_error_inside_an_include_names_that_file(tmp_path):
    (tmp_path / "models.net").write_text("* models\n.model dev exponential\n+ g_max=-1\n")
    (tmp_path / "top.net").write_text('top\n.include "models.net"\nNa size=1\n')
    with pytest.raises(NetlistError) as info:
        read_netlist(tmp_path / "top.net")
    assert Path(info.value.path) == tmp_path / "models.net"
    assert (info.value.line, info.value.col) == (3, 9)
    assert "+ g_max=-1" in str(info.value)


def test_netlist_error_helper_for_builders():
    net = parse_netlist(HEAD + "Xw a b model=dev rows=7\n", "chip.net")
    tile = net.tiles["w"]
    err = net.error(tile.param_pos["rows"], "tile w has 7 rows but group a drives 4 lines")
    assert str(err) == ("chip.net:5:18: tile w has 7 rows but group a drives 4 lines\n"
                        "Xw a b model=dev rows=7\n" + " " * 17 + "^")
    assert net.error(tile.node_pos[1], "x").col == 6
    assert net.error(net.groups["b"].pos, "x").line == 4
