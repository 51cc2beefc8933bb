"""Random crossbar tiles solved by ngspice and by our structured solver, node by node."""
import numpy as np
import pytest

from circuits.spice import run_ngspice
from circuits.tile_spice import tile_deck
from crossbar import ParameterError
from crossbar.cells import Selector, SinhIV, Transistor
from crossbar.tile import Tile, Wires

pytestmark = pytest.mark.spice


def node_voltages(sol, M, N):
    vr = np.broadcast_to(sol.v_row[0], (M, N))
    vc = np.broadcast_to(sol.v_col[0], (M, N))
    return {**{f"r{i}_{j}": vr[i, j] for i in range(M) for j in range(N)},
            **{f"c{i}_{j}": vc[i, j] for i in range(M) for j in range(N)}}


def check(tile, row_g, row_v, col_g, col_v, rtol, use_ngspice=True):
    M, N = tile.g.shape
    sol = tile.solve(row_g, row_v[None], col_g, col_v[None])
    deck = tile_deck(tile, row_g, row_v, col_g, col_v)
    op = run_ngspice(deck) if use_ngspice else deck.operating_point()
    ours = node_voltages(sol, M, N)
    if tile.wires.ideal:   # one node per line in the deck
        ours = {k: v for k, v in ours.items() if (k[0] == "r" and k.endswith("_0")) or
                (k[0] == "c" and k.startswith(f"c{M - 1}_"))}
    names = sorted(ours)
    a = np.array([ours[n] for n in names])
    b = np.array([op.voltage(n) for n in names])
    err = np.abs(a - b).max() / np.abs(b).max()
    assert err <= rtol, f"node voltages differ by {err:.2e} (allowed {rtol:g})"
    # source currents, SPICE convention: into the + terminal of the source
    for i in np.flatnonzero(row_g > 0):
        np.testing.assert_allclose(op.current(f"VR{i}"), -sol.i_row_end[0, i], rtol=max(rtol, 1e-12) * 1e3,
                                   atol=1e-3 * rtol * np.abs(sol.i_row_end).max())
    for j in np.flatnonzero(col_g > 0):
        np.testing.assert_allclose(op.current(f"VC{j}"), sol.i_col_end[0, j], rtol=max(rtol, 1e-12) * 1e3,
                                   atol=1e-3 * rtol * np.abs(sol.i_col_end).max())
    return err


CASES = [(1, 1), (4, 7), (9, 3), (16, 16), (32, 20), (32, 32)]


@pytest.mark.parametrize("M,N", CASES)
@pytest.mark.parametrize("r_wire", [0.1, 1.0, 20.0])
def test_linear_passive_tiles_match_ngspice(ngspice, M, N, r_wire):
    rng = np.random.default_rng(1000 * M + N + int(10 * r_wire))
    tile = Tile(rng.uniform(1e-6, 1e-4, (M, N)), wires=Wires(r_row_segment=r_wire, r_col_segment=r_wire))
    check(tile, np.full(M, 1 / 10.0), rng.uniform(-0.2, 0.2, M), np.full(N, np.inf), np.zeros(N), rtol=1e-9)


@pytest.mark.parametrize("M,N", [(3, 4), (12, 8), (24, 32)])
@pytest.mark.parametrize("r_wire", [0.5, 5.0])
@pytest.mark.parametrize("bipolar", [True, False])
def test_diode_selector_tiles_match_ngspice(ngspice, M, N, r_wire, bipolar):
    rng = np.random.default_rng(M + N + int(r_wire) + bipolar)
    tile = Tile(rng.uniform(1e-6, 1e-4, (M, N)), wires=Wires(r_row_segment=r_wire, r_col_segment=r_wire),
                access=Selector(i_s=1e-10, n=1.2, bipolar=bipolar))
    check(tile, np.full(M, 1 / 10.0), rng.uniform(-1.5, 1.5, M), np.full(N, np.inf), np.zeros(N), rtol=1e-6)


def test_sneak_paths_floating_lines_loads_and_1t1r_match_ngspice(ngspice):
    rng = np.random.default_rng(7)
    M, N = 10, 12
    for access in (None, Transistor(5e3)):
        kw = {} if access is None else {"access": access}
        tile = Tile(rng.uniform(1e-6, 1e-4, (M, N)),
                    wires=Wires(r_row_segment=rng.uniform(0.5, 3, (M, N)), r_col_segment=rng.uniform(0.5, 3, (M, N))),
                    **kw)
        row_g = np.where(rng.random(M) < 0.3, 0.0, np.where(rng.random(M) < 0.5, np.inf, 1 / 50.0))
        col_g = np.where(rng.random(N) < 0.3, 0.0, np.where(rng.random(N) < 0.5, np.inf, 1e-3))
        row_g[0] = np.inf
        check(tile, row_g, rng.uniform(-1, 1, M), col_g, rng.uniform(-0.5, 0.5, N), rtol=1e-9)


def test_ideal_wire_tiles_match_ngspice(ngspice):
    rng = np.random.default_rng(8)
    M, N = 6, 9
    tile = Tile(rng.uniform(1e-6, 1e-4, (M, N)), access=Selector())
    row_g = np.array([np.inf, 1e-2, np.inf, 0.0, np.inf, 1e-3])
    check(tile, row_g, rng.uniform(-1, 1, M), np.full(N, np.inf), np.zeros(N), rtol=1e-6)


def test_our_mna_solver_agrees_on_tile_decks():
    """The general SPICE-deck solver and the structured tile solver agree (no ngspice needed)."""
    rng = np.random.default_rng(9)
    for access, rtol in ((None, 1e-9), (Selector(), 1e-6)):
        kw = {} if access is None else {"access": access}
        tile = Tile(rng.uniform(1e-6, 1e-4, (8, 6)), wires=Wires(1.0, 1.0), **kw)
        check(tile, np.full(8, 0.1), rng.uniform(-1, 1, 8), np.full(6, np.inf), np.zeros(6), rtol,
              use_ngspice=False)


def test_sinh_devices_cannot_be_written_as_plain_spice():
    tile = Tile(np.full((2, 2), 1e-5), iv=SinhIV())
    with pytest.raises(ParameterError, match="only linear memristors"):
        tile_deck(tile, np.full(2, np.inf), np.zeros(2), np.full(2, np.inf), np.zeros(2))
