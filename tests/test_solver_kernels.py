"""Every numba kernel of the solver agrees with its plain-numpy twin."""
import numpy as np
import pytest

from crossbar import linesolve
from crossbar.cells import LinearIV, Passive, Selector, SinhIV, Transistor, cell_current


def _inputs(rng, K=3, Kd=1, M=7, N=70):
    g_row = rng.uniform(0.1, 2.0, (M, N))
    g_col = rng.uniform(0.1, 2.0, (M, N))
    D = rng.uniform(1e-6, 1e-4, (Kd, M, N))
    return g_row, g_col, D, rng.normal(size=(K, M, N)), rng.normal(size=(K, M, N))


@pytest.mark.parametrize("Kd", [1, 3])
def test_factor_and_solve_kernels(Kd):
    rng = np.random.default_rng(Kd)
    g_row, g_col, D, a, b = _inputs(rng, Kd=Kd)
    res = {}
    for name, k in linesolve.KERNELS.items():
        K, M, N = a.shape
        e_r, i_r, e_c, i_c = (np.empty(D.shape) for _ in range(4))
        k["factor_rows"](g_row, D, e_r, i_r)
        k["factor_cols"](g_col, D, e_c, i_c)
        out = {n: np.empty((K, M, N)) for n in ("rows", "rows_scaled", "cols", "colop", "rowop", "w", "q", "z", "p")}
        k["solve_rows"](g_row, e_r, i_r, a, np.ones((1, M, N)), out["rows"])
        k["solve_rows"](g_row, e_r, i_r, a, D, out["rows_scaled"])
        k["solve_cols"](g_col, e_c, i_c, a, out["cols"])
        k["col_operator"](g_col, D, a, b, out["colop"])
        k["row_operator"](g_row, D, a, b, out["rowop"])
        part = {n: np.empty((K, M)) for n in ("schur", "upd", "pre", "dot")}
        k["schur_apply"](g_row, g_col, D, e_r, i_r, a, out["w"], out["q"], part["schur"])
        x, r = a.copy(), b.copy()
        k["update"](np.array([0.3, -1.0, 2.0]), a, b, x, r, part["upd"])
        k["precondition"](g_col, e_c, i_c, b, out["z"], part["pre"])
        out["p"][:] = b
        k["xpby"](a, np.array([0.5, 0.0, -2.0]), out["p"])
        k["line_dot"](a, b, part["dot"])
        res[name] = (e_r, i_r, e_c, i_c, x, r, *out.values(), *part.values())
    for u, v in zip(res["numba"], res["numpy"]):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


def test_line_solves_invert_their_operators():
    """(T_r + D)^-1 and (T_c + D)^-1 really invert the row and column stencils."""
    rng = np.random.default_rng(0)
    g_row, g_col, D, a, _ = _inputs(rng)
    k = linesolve.KERNELS["numba"]
    K, M, N = a.shape
    e_r, i_r, e_c, i_c = (np.empty(D.shape) for _ in range(4))
    k["factor_rows"](g_row, D, e_r, i_r)
    k["factor_cols"](g_col, D, e_c, i_c)
    x, back = np.empty_like(a), np.empty_like(a)
    zero = np.zeros_like(a)
    k["solve_rows"](g_row, e_r, i_r, a, np.ones((1, M, N)), x)
    k["row_operator"](g_row, D, x, zero, back)
    np.testing.assert_allclose(back, a, rtol=1e-10, atol=1e-12)
    k["solve_cols"](g_col, e_c, i_c, a, x)
    k["col_operator"](g_col, D, x, zero, back)
    np.testing.assert_allclose(back, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("access,iv", [(Passive(), LinearIV()), (Passive(), SinhIV(0.2)),
                                       (Transistor(1e3), LinearIV()), (Transistor(1e3), SinhIV()),
                                       (Selector(), LinearIV()), (Selector(bipolar=False, n=2.0), SinhIV())])
def test_cell_kernel_matches_twin_and_derivative(access, iv):
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-6, 1e-4, (5, 6))
    v = rng.uniform(-1.5, 1.5, (4, 5, 6))
    i1, d1 = cell_current(v, g, access, iv, backend="numba")
    i2, d2 = cell_current(v, g, access, iv, backend="numpy")
    # Both stop the series split's Newton once the memristor voltage u moves by <= 1e-15 |v|:
    # where the access device takes nearly all of v (u << v, currents ~1e-12 A) that absolute
    # tolerance, times the memristor's conductance, bounds how far two compilations (FMA or
    # not, another libm) may differ; elsewhere they agree to rounding.
    bound = 1e-12 * np.abs(i2) + 4e-15 * np.abs(v) * g
    assert np.all(np.abs(i1 - i2) <= bound), np.max(np.abs(i1 - i2) / bound)
    np.testing.assert_allclose(d1, d2, rtol=1e-10, atol=1e-22)
    h = 1e-6   # the differential conductance is the derivative of the current
    ip, _ = cell_current(v + h, g, access, iv)
    im, _ = cell_current(v - h, g, access, iv)
    np.testing.assert_allclose((ip - im) / (2 * h), d1, rtol=1e-4, atol=1e-13)
    assert np.all(np.sign(i1) == np.sign(v))   # passive: current follows the voltage
