"""The tile solver against an independent nodal reference, closed forms and physics invariants."""
import numpy as np
import pytest

from crossbar import FloatingNodeError, ParameterError
from crossbar.cells import memristor_voltage, is_linear, LinearIV, Passive, Selector, SinhIV, Transistor
from crossbar.solve import SolverOptions
from crossbar.terminals import TIA, LoadResistor, VirtualGround
from crossbar.tile import Tile, Wires
from nodal_reference import solve_reference


def random_tile(rng, M, N, **kw):
    return Tile(rng.uniform(1e-6, 1e-4, (M, N)), **kw)


def compare_with_reference(tile, sol, row_g, row_v, col_g, col_v, k=0, seed_from_ours=False):
    M, Np = tile.g.shape
    guess = None
    if seed_from_ours:   # a perturbed copy of our answer only seeds the reference's root finder
        jitter = np.random.default_rng(99).normal(0, 1e-3, (2, M, Np))
        guess = {f"r{i}_{j}": sol.v_row[k][i if sol.v_row.shape[1] > 1 else 0, j if sol.v_row.shape[2] > 1 else 0]
                 + jitter[0, i, j] for i in range(M) for j in range(Np)}
        guess.update({f"c{i}_{j}": sol.v_col[k][i if sol.v_col.shape[1] > 1 else 0, j if sol.v_col.shape[2] > 1 else 0]
                      + jitter[1, i, j] for i in range(M) for j in range(Np)})
        u = memristor_voltage(sol.i_cell[k], tile.g, tile.iv) + np.broadcast_to(sol.v_col[k], (M, Np))
        guess.update({f"m{i}_{j}": u[i, j] for i in range(M) for j in range(Np)})
    ref = solve_reference(tile, row_g, row_v[k], col_g, col_v[k], guess=guess)
    ours = np.concatenate([np.broadcast_to(sol.v_row[k], (M, Np)).ravel(),
                           np.broadcast_to(sol.v_col[k], (M, Np)).ravel()])
    theirs = np.array([ref[f"r{i}_{j}"] for i in range(M) for j in range(Np)]
                      + [ref[f"c{i}_{j}"] for i in range(M) for j in range(Np)])
    return np.abs(ours - theirs).max() / np.abs(theirs).max()


@pytest.mark.parametrize("M,N", [(1, 1), (3, 5), (7, 4), (16, 16)])
@pytest.mark.parametrize("r_wire", [0.5, 10.0])
def test_resistive_linear_matches_reference(M, N, r_wire):
    rng = np.random.default_rng(M * 100 + N)
    tile = random_tile(rng, M, N, wires=Wires(r_row_segment=r_wire, r_col_segment=2 * r_wire))
    row_g = np.full(M, 1 / 10.0)
    row_v = rng.uniform(-0.2, 0.2, (2, M))
    col_g = np.full(N, np.inf)
    col_v = np.zeros((2, N))
    sol = tile.solve(row_g, row_v, col_g, col_v)
    for k in range(2):
        assert compare_with_reference(tile, sol, row_g, row_v, col_g, col_v, k) < 1e-10


def test_mixed_terminations_and_floating_lines():
    """Sneak paths: a passive array with floating rows and columns, loads and a source resistance."""
    rng = np.random.default_rng(3)
    M, N = 6, 5
    r_row = rng.uniform(0.5, 2.0, (M, N))
    r_col = rng.uniform(0.5, 2.0, (M, N))
    tile = random_tile(rng, M, N, wires=Wires(r_row_segment=r_row, r_col_segment=r_col))
    row_g = np.array([np.inf, 0.0, 1 / 50.0, np.inf, 0.0, 1 / 5.0])
    col_g = np.array([np.inf, 0.0, 1e-3, np.inf, 1 / 200.0])
    row_v = rng.uniform(-1, 1, (1, M))
    col_v = rng.uniform(-1, 1, (1, N))
    sol = tile.solve(row_g, row_v, col_g, col_v)
    assert compare_with_reference(tile, sol, row_g, row_v, col_g, col_v) < 1e-10
    assert sol.kcl_residual()["relative"] < 1e-10
    assert np.all(sol.power_balance()["relative_error"] < 1e-10)


@pytest.mark.parametrize("access,iv", [(Transistor(2e3), LinearIV()), (Selector(), LinearIV()),
                                       (Selector(bipolar=False, n=1.5), SinhIV(0.3)),
                                       (Passive(), SinhIV(0.2)), (Transistor(500.0), SinhIV(0.25))])
def test_nonlinear_cells_match_reference(access, iv):
    rng = np.random.default_rng(11)
    M, N = 4, 3
    tile = random_tile(rng, M, N, wires=Wires(r_row_segment=2.0, r_col_segment=3.0), access=access, iv=iv)
    row_g = np.full(M, 1 / 20.0)
    row_v = rng.uniform(-1.2, 1.2, (1, M))
    col_g = np.array([np.inf, 1 / 100.0, np.inf])
    col_v = np.zeros((1, N))
    sol = tile.solve(row_g, row_v, col_g, col_v)
    assert (sol.newton_steps > 0) != is_linear(access, iv)
    assert compare_with_reference(tile, sol, row_g, row_v, col_g, col_v, seed_from_ours=True) < 1e-9
    assert sol.kcl_residual()["relative"] < 1e-10
    assert np.all(sol.power_balance()["relative_error"] < 1e-9)


@pytest.mark.parametrize("access,iv", [(Passive(), LinearIV()), (Selector(), SinhIV(0.3))])
def test_ideal_wires_with_free_lines_match_reference(access, iv):
    """Ideal wires but a source resistance, a load and a floating row: the dense line solve."""
    rng = np.random.default_rng(5)
    M, N = 5, 4
    tile = random_tile(rng, M, N, access=access, iv=iv)
    row_g = np.array([np.inf, 1 / 1e3, 0.0, np.inf, 1 / 30.0])
    col_g = np.array([np.inf, 1 / 2e3, np.inf, 1e-5])
    row_v = rng.uniform(-1, 1, (1, M))
    col_v = rng.uniform(-0.1, 0.1, (1, N))
    sol = tile.solve(row_g, row_v, col_g, col_v)
    # the element reference needs finite wires: 0.1 milliohm segments shift these nodes by
    # < 1e-7 relative, while much smaller ones make its sparse solve ill-conditioned
    ref_tile = Tile(tile.g, access=access, iv=iv, wires=Wires(r_row_segment=1e-4, r_col_segment=1e-4))
    assert compare_with_reference(ref_tile, sol, row_g, row_v, col_g, col_v, seed_from_ours=True) < 1e-6
    assert sol.kcl_residual()["relative"] < 1e-12


def test_ideal_wires_fast_path_is_the_matrix_product():
    rng = np.random.default_rng(0)
    tile = random_tile(rng, 64, 48)
    v = rng.uniform(-0.2, 0.2, (10, 64))
    read = tile.read_rows(v)
    assert np.array_equal(read.outputs, v @ tile.g)
    back = tile.read_cols(rng.uniform(-0.2, 0.2, (3, 48)))
    assert back.outputs.shape == (3, 64)


def test_differential_pairs_forward_and_transposed():
    rng = np.random.default_rng(1)
    gp, gm = rng.uniform(1e-6, 1e-4, (2, 6, 4))
    tile = Tile.from_pairs(gp, gm)
    x = rng.uniform(-0.2, 0.2, (2, 6))
    y = rng.uniform(-0.2, 0.2, (2, 4))
    W = gp - gm
    np.testing.assert_allclose(tile.read_rows(x).outputs, x @ W, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(tile.read_cols(y).outputs, y @ W.T, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(tile.weights(), W)


def test_transposed_read_reciprocity_and_its_breakdown():
    """Wire resistance changes the effective matrix; reciprocity keeps forward and transposed
    reads exact transposes only while both directions see the same terminations."""
    rng = np.random.default_rng(2)
    g = rng.uniform(1e-6, 1e-4, (8, 8))
    eye = np.eye(8) * 0.1
    np.testing.assert_allclose(Tile(g).read_rows(eye).outputs / 0.1, g, rtol=1e-14)
    wired = Tile(g, wires=Wires(r_row_segment=5.0, r_col_segment=5.0))
    fwd = wired.read_rows(eye).outputs / 0.1        # effective G seen forward
    bwd = wired.read_cols(eye).outputs.T / 0.1      # effective G seen backward
    assert np.abs(fwd - g).max() / g.max() > 1e-3   # IR drop is visible
    np.testing.assert_allclose(bwd, fwd, rtol=1e-10)  # reciprocity of a linear passive network
    drivers = Tile(g, wires=Wires(r_row_segment=5.0, r_col_segment=5.0, r_row_driver=100.0, r_col_driver=1e3))
    fwd = drivers.read_rows(eye).outputs
    bwd = drivers.read_cols(eye).outputs.T
    assert np.abs(bwd - fwd).max() / np.abs(fwd).max() > 1e-3


def test_finite_gain_tia_and_load():
    rng = np.random.default_rng(4)
    g = rng.uniform(1e-6, 1e-4, (5, 3))
    v = rng.uniform(-0.2, 0.2, (1, 5))
    tia = TIA(r_feedback=1e3, gain=1e4, v_rail_pos=10, v_rail_neg=-10)
    out = Tile(g).read_rows(v, sense=tia).outputs
    # closed form: each column end is a conductance (1+A)/R_f to ground (ideal wires)
    gin = (1 + tia.gain) / tia.r_feedback
    u = (v @ g) / (gin + g.sum(axis=0))
    np.testing.assert_allclose(out, -tia.gain * u, rtol=1e-12)
    ideal = Tile(g).read_rows(v, sense=TIA(r_feedback=1e3, gain=np.inf, v_rail_pos=10, v_rail_neg=-10))
    np.testing.assert_allclose(ideal.outputs, -1e3 * (v @ g), rtol=1e-12)
    load = Tile(g).read_rows(v, sense=LoadResistor(1e3)).outputs
    np.testing.assert_allclose(load, (v @ g) / (1e-3 + g.sum(axis=0)), rtol=1e-12)


def test_tia_rails_clip_and_count():
    g = np.full((4, 2), 1e-4)
    read = Tile(g).read_rows(np.full((1, 4), 1.0), sense=TIA(r_feedback=1e4, gain=np.inf,
                                                               v_rail_pos=1.0, v_rail_neg=-1.0))
    assert read.saturated == 2 and np.all(read.outputs == -1.0)


def test_warm_start_cuts_iterations_after_a_small_change():
    rng = np.random.default_rng(7)
    tile = random_tile(rng, 96, 96, wires=Wires(r_row_segment=1.0, r_col_segment=1.0, r_row_driver=10.0))
    v = rng.uniform(-0.2, 0.2, (1, 96))
    cold = tile.read_rows(v, warm_start=False)
    tile.g[rng.integers(0, 96, 20), rng.integers(0, 96, 20)] *= 1.01
    warm = tile.read_rows(v)   # uses the cached previous solution
    fresh = tile.read_rows(v, warm_start=False)
    assert warm.solution.iterations < fresh.solution.iterations
    np.testing.assert_allclose(warm.outputs, fresh.outputs, rtol=1e-10)
    assert cold.solution.iterations == fresh.solution.iterations


def test_numba_and_numpy_backends_agree():
    rng = np.random.default_rng(8)
    g = rng.uniform(1e-6, 1e-4, (9, 7))
    kw = dict(wires=Wires(r_row_segment=1.0, r_col_segment=2.0, r_row_driver=5.0))
    v = rng.uniform(-0.3, 0.3, (3, 9))
    for access, iv in ((Passive(), LinearIV()), (Selector(), SinhIV())):
        a = Tile(g, access=access, iv=iv, **kw).read_rows(v).solution
        b = Tile(g, access=access, iv=iv, backend="numpy", **kw).read_rows(v).solution
        np.testing.assert_allclose(a.v_col, b.v_col, rtol=1e-11, atol=1e-15)
        np.testing.assert_allclose(a.i_cell, b.i_cell, rtol=1e-9, atol=1e-18)


def test_batch_equals_single_solves():
    rng = np.random.default_rng(9)
    tile = random_tile(rng, 20, 30, wires=Wires(r_row_segment=1.0, r_col_segment=1.0))
    v = rng.uniform(-0.2, 0.2, (4, 20))
    batch = tile.read_rows(v, warm_start=False).outputs
    single = np.concatenate([tile.read_rows(v[k], warm_start=False).outputs for k in range(4)])
    np.testing.assert_allclose(batch, single, rtol=1e-10)


# ---------------------------------------------------------------- ill-posed circuits

def test_floating_line_is_named():
    g = np.full((3, 3), 1e-5)
    g[1, :] = 0.0   # row 1 touches nothing
    tile = Tile(g, wires=Wires(r_row_segment=1.0, r_col_segment=1.0))
    with pytest.raises(FloatingNodeError, match=r"row 1 \(nodes r1_0"):
        tile.read_rows(np.ones(3) * 0.1, floating_rows=[1])


def test_everything_floating_is_named():
    tile = Tile(np.full((2, 2), 1e-5))
    with pytest.raises(FloatingNodeError, match="row 0"):
        tile.read_rows(np.ones(2), floating_rows=[0, 1], floating_cols=[0, 1])


@pytest.mark.parametrize("kw,match", [
    (dict(wires=Wires(r_row_segment=np.array([[1.0, 0.0], [1.0, 1.0]]), r_col_segment=1.0)),
     r"r_row_segment\[0, 1\] = 0 ohm"),
    (dict(wires=Wires(r_row_segment=1.0, r_col_segment=1.0)), None),
])
def test_zero_segment_mixed_with_resistive_is_an_error(kw, match):
    tile = Tile(np.full((2, 2), 1e-5), **kw)
    if match is None:
        tile.read_rows(np.ones(2))
    else:
        with pytest.raises(ParameterError, match=match):
            tile.read_rows(np.ones(2))


def test_negative_resistance_and_nan_input_are_named():
    with pytest.raises(ParameterError, match=r"r_row_segment .*outside the allowed range \[0, inf\]"):
        Wires(r_row_segment=-1.0)
    with pytest.raises(ParameterError, match=r"r_row_driver"):
        Wires(r_row_driver=-5.0)
    tile = Tile(np.full((2, 2), 1e-5))
    with pytest.raises(ParameterError, match=r"row drive voltage \[0, line 1\] = nan"):
        tile.read_rows(np.array([0.1, np.nan]))
    with pytest.raises(ParameterError, match=r"g\b.*outside the allowed range"):
        Tile(np.array([[1e-5, -1e-6]]))


def test_cg_failure_raises_convergence_error():
    from crossbar import ConvergenceError
    rng = np.random.default_rng(0)
    tile = random_tile(rng, 64, 64, wires=Wires(r_row_segment=1.0, r_col_segment=1.0),
                       solver=SolverOptions(maxiter=1))
    with pytest.raises(ConvergenceError, match="conjugate gradients"):
        tile.read_rows(rng.uniform(-0.2, 0.2, 64))
