"""The fast read (Ohm's law when every line end is held) equals the full ideal-wire solve."""
import numpy as np
import pytest

from crossbar.cells import Passive, Selector, Transistor
from crossbar.terminals import OpAmpInput, VirtualGround
from crossbar.tile import Tile, Wires


@pytest.mark.parametrize("pairs", [False, True])
@pytest.mark.parametrize("access", [Passive(), Transistor(r_on=2e3)])
@pytest.mark.parametrize("sense", [VirtualGround(), VirtualGround(v_ref=0.05), OpAmpInput(5e3)])
def test_fast_read_equals_full_solve(pairs, access, sense):
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-6, 1e-4, (7, 10))
    tile = Tile(g, pairs=pairs, access=access)
    N = tile.cols
    for direction, v in (("forward", rng.uniform(-0.2, 0.2, (3, 7))), ("backward", rng.uniform(-0.2, 0.2, (3, N)))):
        read = tile.read_rows(v, sense=sense) if direction == "forward" else tile.read_cols(v, sense=sense)
        assert read.solution_ is None                       # took the fast path
        full = read.solution                                # solved on demand
        i_out = full.i_col_end if direction == "forward" else -full.i_row_end
        if pairs and direction == "forward":
            i_out = i_out[:, 0::2] - i_out[:, 1::2]
        np.testing.assert_allclose(read.outputs, i_out, rtol=1e-12, atol=1e-18)


def test_cases_that_need_a_solve_do_not_take_the_fast_path():
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-6, 1e-4, (4, 5))
    v = rng.uniform(0, 0.2, (2, 4))
    assert Tile(g, wires=Wires(r_row_segment=1.0, r_col_segment=1.0)).read_rows(v).solution_ is not None
    assert Tile(g, access=Selector()).read_rows(v).solution_ is not None
    assert Tile(g).read_rows(v, sense=OpAmpInput(1e4, gain=1e3)).solution_ is not None
    assert Tile(g).read_rows(v, floating_cols=[2]).solution_ is not None
    assert Tile(g).read_rows(v, floating_rows=[0]).solution_ is not None
    assert Tile(g, wires=Wires(r_row_driver=10.0)).read_rows(v).solution_ is not None
    assert Tile(g, wires=Wires(r_col_driver=10.0)).read_cols(rng.uniform(0, 0.2, (2, 5))).solution_ is not None
    tile = Tile(g.copy())
    tile.g[1, 1] = np.nan                                   # the full solve names the bad conductance
    with pytest.raises(Exception, match=r"conductance\[1, 1\]"):
        tile.read_rows(v)
