"""Update policies (learning/updates.py): Cst, RProp with back-tracking (Table 2.2), Proportional, driver limits."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.updates import Cst, PolicyError, Proportional, RProp, UpdatePolicy

from test_boundary import LEARNING, violations

W0 = 1e-6
ETA = 1.25        # large enough that growth/shrink are visible in one step


# ------------------------------------------------------------------------ Cst
def test_cst_sign_only_and_no_pulse_on_zero():
    c = Cst(2e-7)
    out = c.step(np.array([[3, -1, 0], [0.5, -7, 0]]))
    assert out.tolist() == [[2e-7, -2e-7, 0], [2e-7, -2e-7, 0]]
    assert c.n_requested == 4 and c.n_dropped == 0
    assert np.array_equal(c(np.zeros((2, 2))), np.zeros((2, 2)))


def test_cst_width_checked_against_drivers():
    with pytest.raises(PolicyError, match=r"width = 2e-06 s exceeds.*\(0, 1e-06\]"):
        Cst(2e-6, limits=(1e-9, 1e-6))
    with pytest.raises(PolicyError, match="width.*dropped"):
        Cst(1e-10, limits=(1e-9, 1e-6))
    with pytest.raises(PolicyError, match=r"width.*\(0, inf\)"):
        Cst(-1.0)
    assert isinstance(PolicyError("x"), ValueError)


# ------------------------------------------------------------------------ RProp: Table 2.2
GT, LT, EQ = 1.0, -1.0, 0.0
# (previous, current) -> (pulse in units of the width before this step, next width factor, stored sign)
TABLE_2_2 = {
    (GT, GT): (+ETA, ETA, +1),      # p > 0: grow (capped), pulse along sign(stat)
    (LT, LT): (-ETA, ETA, -1),
    (GT, LT): (-1.0, 1 / ETA, 0),   # p < 0: undo the previous potentiation with the current width, then shrink
    (LT, GT): (+1.0, 1 / ETA, 0),   # p < 0: undo the previous depression
    (EQ, GT): (+1.0, 1.0, +1),      # p = 0: unchanged width
    (EQ, LT): (-1.0, 1.0, -1),
    (GT, EQ): (0.0, 1.0, 0),        # p = 0 and zero statistic: no pulse
    (LT, EQ): (0.0, 1.0, 0),
    (EQ, EQ): (0.0, 1.0, 0),
}


def test_table_2_2_all_nine_combinations():
    """All nine cases at once, one per weight, starting from a width below the cap."""
    cases = list(TABLE_2_2)
    prev = np.array([[p for p, _ in cases]])
    cur = np.array([[c for _, c in cases]])
    r = RProp((1, 9), W0, eta_plus=ETA)
    start = W0 / ETA ** 3
    state = r.state_dict()
    state["widths"] = np.full((1, 9), start)
    r.load_state_dict(state)
    r.step(prev)                                   # first step: stored sign 0 -> pulse sign * width, width unchanged
    assert np.allclose(r.widths, start)
    assert r.stored_sign.tolist() == [np.sign(prev[0]).astype(int).tolist()]
    out = r.step(cur)
    for k, case in enumerate(cases):
        pulse, factor, sign = TABLE_2_2[case]
        assert out[0, k] == pytest.approx(pulse * start, rel=1e-12), case
        assert r.widths[0, k] == pytest.approx(factor * start, rel=1e-12), case
        assert r.stored_sign[0, k] == sign, case


def test_backtracking_undoes_with_the_width_of_the_previous_pulse_then_takes_p0_branch():
    r = RProp((1, 1), W0, eta_plus=ETA)
    r.load_state_dict({**r.state_dict(), "widths": np.array([[W0 / ETA ** 2]])})
    w = W0 / ETA ** 2
    assert r.step([[5]])[0, 0] == pytest.approx(w)                     # p = 0
    assert r.step([[2]])[0, 0] == pytest.approx(w * ETA)               # p > 0: grown width
    assert r.step([[-1]])[0, 0] == pytest.approx(-w * ETA)             # p < 0: exact reverse of the last pulse
    assert r.widths[0, 0] == pytest.approx(w)                          # ... then shrunk
    assert r.stored_sign[0, 0] == 0
    assert r.step([[-3]])[0, 0] == pytest.approx(-w)                   # p = 0: no second correction, no growth
    assert r.widths[0, 0] == pytest.approx(w)
    assert r.step([[-3]])[0, 0] == pytest.approx(-w * ETA)             # p > 0 again


def test_first_step_uses_width0_and_cap_holds():
    r = RProp((2, 3), W0, eta_plus=ETA)
    assert np.array_equal(r.step(np.ones((2, 3))), np.full((2, 3), W0))
    for _ in range(5):
        assert np.array_equal(r.step(np.ones((2, 3))), np.full((2, 3), W0))   # min(eta+ dt, width0)
    assert np.array_equal(r.widths, np.full((2, 3), W0))


def test_agreement_grows_geometrically_alternation_shrinks():
    r = RProp((1, 2), W0, eta_plus=1.01)
    assert r.eta_minus == pytest.approx(1 / 1.01)
    # alternate on weight 0 (a reversal every other step), hold weight 1 at 0
    signs = [1, -1, -1, 1, 1, -1, -1, 1]          # reversal, p=0, reversal, p=0, ...
    for s in signs:
        r.step([[s, 0]])
    n_rev = 4
    assert r.widths[0, 0] == pytest.approx(W0 * 1.01 ** -n_rev, rel=1e-12)
    assert r.widths[0, 1] == W0
    # now agree m times: each p > 0 step multiplies by eta+ until the cap
    r.step([[1, 0]])    # the last step was a reversal (stored 0): p = 0, width unchanged
    widths = []
    for _ in range(3):
        widths.append(r.step([[1, 0]])[0, 0])
    assert np.allclose(np.diff(np.log(widths)), np.log(1.01))
    for _ in range(10):
        r.step([[1, 0]])
    assert r.widths[0, 0] == W0


def test_rprop_never_reads_magnitudes():
    a, b = RProp((2, 2), W0), RProp((2, 2), W0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.integers(-3, 4, size=(2, 2))
        assert np.array_equal(a.step(s), b.step(np.sign(s) * rng.uniform(0.1, 100, size=(2, 2))))


def test_rprop_parameter_checks():
    with pytest.raises(PolicyError, match=r"width0 = 2e-06 s exceeds.*\(0, 1e-06\]"):
        RProp((2, 2), 2e-6, limits=(0, 1e-6))
    with pytest.raises(PolicyError, match=r"eta_plus.*\[1, inf\)"):
        RProp((2, 2), W0, eta_plus=0.9)
    with pytest.raises(PolicyError, match=r"eta_minus.*\(0, 1\]"):
        RProp((2, 2), W0, eta_minus=1.5)
    with pytest.raises(PolicyError, match="shape"):
        RProp((2,), W0)
    with pytest.raises(PolicyError, match=r"shape \(3, 2\); expected \(2, 3\)"):
        RProp((2, 3), W0).step(np.ones((3, 2)))
    with pytest.raises(PolicyError, match="finite"):
        RProp((1, 1), W0).step([[np.nan]])


@settings(max_examples=60, deadline=None)
@given(eta=st.floats(1.0, 3.0), steps=st.lists(st.lists(st.sampled_from([-1, 0, 1]), min_size=4, max_size=4),
                                             min_size=1, max_size=60),
       width0=st.floats(1e-9, 1e-3))
def test_rprop_widths_stay_in_0_width0(eta, steps, width0):
    r = RProp((2, 2), width0, eta_plus=eta)
    for s in steps:
        out = r.step(np.reshape(s, (2, 2)) * 3.0)
        w = r.widths
        assert np.all(w > 0) and np.all(w <= width0)
        assert np.all(np.abs(out) <= width0)
        assert np.all((out == 0) == (np.reshape(s, (2, 2)) == 0))   # no limits: a pulse iff a nonzero statistic


def test_widths_are_read_only_copies():
    r = RProp((1, 2), W0)
    w = r.widths
    with pytest.raises(ValueError):
        w[0, 0] = 1.0
    r.step([[1, -1]])
    assert np.array_equal(w, [[W0, W0]])


# ------------------------------------------------------------------------ state round trip
def _json_round_trip(state):
    """What scripts/train.py does: arrays to HDF5, the rest through JSON."""
    arrays = {k: v.copy() for k, v in state.items() if isinstance(v, np.ndarray)}
    meta = json.loads(json.dumps({k: v for k, v in state.items() if not isinstance(v, np.ndarray)}))
    return arrays | meta


def test_state_round_trip():
    rng = np.random.default_rng(3)
    a = RProp((3, 4), W0, eta_plus=ETA, limits=(1e-8, 1e-6), quantum=1e-9)
    for _ in range(15):
        a.step(rng.integers(-1, 2, size=(3, 4)))
    b = RProp((3, 4), W0, eta_plus=ETA, limits=(1e-8, 1e-6), quantum=1e-9)
    b.load_state_dict(_json_round_trip(a.state_dict()))
    assert np.array_equal(a.widths, b.widths) and np.array_equal(a.stored_sign, b.stored_sign)
    assert (a.n_requested, a.n_dropped) == (b.n_requested, b.n_dropped)
    for _ in range(15):
        s = rng.integers(-1, 2, size=(3, 4))
        assert np.array_equal(a.step(s), b.step(s))
    c = Cst(W0)
    c.step([[1, 0]])
    d = Cst(W0)
    d.load_state_dict(_json_round_trip(c.state_dict()))
    assert d.n_requested == 1


def test_state_mismatch_is_an_error():
    a = RProp((2, 2), W0)
    with pytest.raises(PolicyError, match="policy"):
        a.load_state_dict(Cst(W0).state_dict())
    with pytest.raises(PolicyError, match="width0"):
        a.load_state_dict(RProp((2, 2), 2 * W0).state_dict())
    with pytest.raises(PolicyError, match="shape"):
        a.load_state_dict(RProp((2, 3), W0).state_dict())
    bad = a.state_dict()
    bad["widths"] = np.full((2, 2), 2 * W0)
    with pytest.raises(PolicyError, match=r"\(0, width0"):
        a.load_state_dict(bad)
    bad = a.state_dict()
    del bad["stored_sign"]
    with pytest.raises(PolicyError, match="missing 'stored_sign'"):
        a.load_state_dict(bad)


# ------------------------------------------------------------------------ Proportional
def test_proportional_is_scale_times_stat():
    p = Proportional(1e-8)
    stat = np.random.default_rng(0).normal(size=(4, 5))
    assert np.array_equal(p.step(stat), 1e-8 * stat)
    assert p.n_dropped == p.n_capped == 0
    with pytest.raises(PolicyError, match="scale"):
        Proportional(0)


def test_proportional_caps_and_counts():
    p = Proportional(1e-7, limits=(1e-9, 5e-7))
    out = p.step([[1, 10, -20, 0.001, 0]])
    assert out.tolist() == [[1e-7, 5e-7, -5e-7, 0, 0]]
    assert (p.n_requested, p.n_capped, p.n_dropped) == (4, 2, 1)
    p.step([[10, 0.0001]])
    assert (p.n_capped, p.n_dropped) == (3, 2)        # cumulative


# ------------------------------------------------------------------------ quantisation and dropping
def test_quantisation_and_dropped_counting():
    p = Proportional(1.0, quantum=1e-9)
    out = p.step([[3.4e-9, 3.6e-9, -2.5e-9, 0.4e-9, -0.49e-9, 0]])
    assert np.allclose(out, [[3e-9, 4e-9, -3e-9, 0, 0, 0]], rtol=0, atol=1e-21)
    assert np.allclose(out / 1e-9, np.round(out / 1e-9))
    assert p.n_dropped == 2 and p.n_requested == 5
    # below dt_min after rounding: dropped, counted
    q = Proportional(1.0, limits=(5e-9, 1e-6), quantum=1e-9)
    out = q.step([[4.4e-9, 4.6e-9, 5e-9]])
    assert np.allclose(out, [[0, 5e-9, 5e-9]], rtol=0, atol=1e-21) and q.n_dropped == 1
    assert out[0, 2] >= 5e-9 and out[0, 1] >= 5e-9        # snapped onto dt_min, accepted by the drivers


def test_rprop_shrunk_widths_below_dt_min_are_dropped_and_counted():
    r = RProp((1, 1), 1e-8, eta_plus=2.0, limits=(4e-9, 1e-6))
    assert r.step([[1]])[0, 0] == 1e-8
    assert r.step([[-1]])[0, 0] == -1e-8                 # undo; width -> 5e-9
    assert r.step([[1]])[0, 0] == 5e-9                   # p = 0
    assert r.step([[-1]])[0, 0] == -5e-9                 # undo; width -> 2.5e-9
    assert r.n_dropped == 0
    assert r.step([[1]])[0, 0] == 0                      # 2.5e-9 < dt_min: dropped, counted
    assert r.n_dropped == 1 and r.widths[0, 0] == 2.5e-9
    assert r.step([[1]])[0, 0] == 5e-9                   # grows back
    assert r.n_dropped == 1


def test_cst_quantised_width_and_limits_checks():
    c = Cst(1.04e-7, quantum=1e-8, limits=(0, 1e-6))
    assert np.allclose(c.step([[1, -1]]), [[1e-7, -1e-7]], rtol=1e-12)
    with pytest.raises(PolicyError, match="quantum"):
        Cst(1e-7, quantum=2e-6, limits=(0, 1e-6))
    with pytest.raises(PolicyError, match="limits"):
        Cst(1e-7, limits=(1e-6, 1e-7))
    with pytest.raises(PolicyError, match="limits"):
        Cst(1e-7, limits=(-1, 1e-7))
    assert c.max_width <= 1e-6


def test_widths_never_exceed_dt_max_with_fuzzy_quantum():
    # 1e-6 / 1e-7 is not exactly 10 in floating point: the largest width must still be <= dt_max
    p = Proportional(1.0, limits=(1e-7, 1e-6), quantum=1e-7)
    out = p.step([[1e-6, 0.95e-6, 3e-6, 1e-7]])
    assert out.max() <= 1e-6 and out.min() >= 1e-7
    r = RProp((1, 1), 1e-6, limits=(1e-7, 1e-6), quantum=1e-7)
    assert 0 < r.step([[1]])[0, 0] <= 1e-6


# ------------------------------------------------------------------------ boundary
def test_updates_and_data_respect_the_hardware_boundary():
    for name in ("updates.py", "data.py"):
        path = LEARNING / name
        assert violations(path.read_text(), name) == []


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        UpdatePolicy().step([[1]])
