"""The deep resistive network: its DC operating point against ngspice and against KCL written out
element by element, the errors it raises, programming and state."""
import numpy as np
import pytest

from circuits import ProgramSettings, RowByRowWrite
from circuits.mna import junction_current, THERMAL_VOLTAGE
from circuits.resistive_network import DiodeClamp, DRNSolver, ResistiveNetwork
from circuits.spice import run_ngspice
from crossbar.devices import SoftBoundsDevice
from crossbar.errors import ConvergenceError, FloatingNodeError, ParameterError

DEVICE = SoftBoundsDevice(gamma=0.0, init_std=0.6)
DIODE = DiodeClamp(v_bias=0.2)


def small_net(seed=0, **kw):
    """6-5-3 with diodes on hidden and output nodes, amplifiers of gain 2 and 3, two bias lines."""
    opts = dict(gains=(2.0, 3.0), diode=DIODE, output_diodes=True, rng=np.random.default_rng(seed))
    opts.update(kw)
    return ResistiveNetwork((6, 5, 3), DEVICE, **opts)


def inputs(seed=1, B=3, n=6, amplitude=1.5):
    return np.random.default_rng(seed).uniform(-amplitude, amplitude, (B, n))


def element_kcl(net, op, nudge=None):
    """KCL at every hidden/output node from each element's own current law (not the solver's code).

    Returns (residuals per layer, sum of |element currents| per layer), A.
    """
    L = len(net.layer_sizes) - 1
    res, mag = [], []
    for l in range(1, L + 1):
        x = op.layers[l]
        B, n = x.shape
        r_up = np.zeros((B, n))
        m_up = np.zeros((B, n))
        # devices of crossbar l-1: from the amplified nodes and bias lines of layer l-1
        rows = [net.gains[l - 1] * op.layers[l - 1][:, i] for i in range(net.layer_sizes[l - 1])]
        rows += [np.full(B, v) for v in net.bias_voltages]
        G = net.tile(f"W{l - 1}").g
        for i, v_row in enumerate(rows):
            i_dev = G[i] * (x - v_row[:, None])            # leaving the node through device (i, j)
            r_up += i_dev
            m_up += np.abs(i_dev)
        if l < L:   # the CCCS: A times the current the node's amplifier sends into crossbar l
            A = net.gains[l]
            Gd = net.tile(f"W{l}").g[:n]
            for j in range(net.layer_sizes[l + 1]):
                i_row = Gd[:, j] * (A * x - op.layers[l + 1][:, [j]])
                r_up += A * i_row
                m_up += np.abs(A * i_row)
        if l < L or net.output_diodes:
            d = net.diode
            vte = d.n * THERMAL_VOLTAGE
            i_p, _ = junction_current(x - d.v_bias, d.i_sat, vte, d.gmin)
            i_n, _ = junction_current(-d.v_bias - x, d.i_sat, vte, d.gmin)
            if d.sides == "split":          # lower diode on the first half of the nodes, upper on the rest
                first = np.arange(n) < n // 2
                i_p, i_n = np.where(first, 0.0, i_p), np.where(first, i_n, 0.0)
            r_up += i_p - i_n
            m_up += np.abs(i_p) + np.abs(i_n)
        if l == L and nudge is not None:
            y, beta = nudge
            r_up += beta * (x - y)
            m_up += np.abs(beta * (x - y))
        res.append(r_up)
        mag.append(m_up)
    return res, mag


def _ngspice_layers(net, op_ng):
    return [np.array([op_ng.voltage(f"x{l}_{j}") for j in range(n)])
            for l, n in enumerate(net.layer_sizes) if l > 0]


@pytest.mark.spice
@pytest.mark.parametrize("sides", ["both", "split"])
@pytest.mark.parametrize("nudged", [False, True], ids=["free", "nudged"])
def test_operating_point_agrees_with_ngspice(ngspice, nudged, sides):
    net = small_net(diode=DiodeClamp(v_bias=0.2, sides=sides))
    u = inputs(B=1, amplitude=2.5)
    nudge = (np.array([[0.8, -0.5, 0.1]]), 2e-4) if nudged else None
    op = net.operating_point(u, nudge=nudge)
    # the diodes must matter: some node sits well beyond its bias source
    assert np.max(np.abs(np.concatenate(op.layers[1:], axis=1))) > DIODE.v_bias + 0.4
    ng = run_ngspice(net.to_spice(u, nudge=nudge))
    for ours, theirs in zip(op.layers[1:], _ngspice_layers(net, ng)):
        np.testing.assert_allclose(ours[0], theirs, rtol=0, atol=1e-6)
    # the row lines are the amplifier outputs: A times the node they copy
    assert ng.voltage("a1_2") == pytest.approx(3.0 * op.layers[1][0, 2], abs=1e-6)


@pytest.mark.spice
def test_a_dead_amplifier_changes_the_answer_so_the_check_can_fail(ngspice):
    """The deck written for one gain does not match a network with another: the comparison has teeth."""
    u = inputs(B=1)
    ng = run_ngspice(small_net(gains=(2.0, 3.0)).to_spice(u))
    op = small_net(gains=(2.0, 2.5)).operating_point(u)
    assert max(np.max(np.abs(a[0] - b)) for a, b in zip(op.layers[1:], _ngspice_layers(small_net(), ng))) > 1e-3


@pytest.mark.parametrize("nudge", [None, (np.array([0.5, 0.0, -0.5]), 3e-4),
                                   (np.array([0.5, 0.0, -0.5]), -3e-4)], ids=["free", "+beta", "-beta"])
@pytest.mark.parametrize("sides", ["both", "split"])
def test_kcl_holds_at_every_node(nudge, sides):
    net = small_net(seed=3, diode=DiodeClamp(v_bias=0.2, sides=sides))
    op = net.operating_point(inputs(seed=4, B=5, amplitude=2.0), nudge=nudge)
    assert 1 <= op.iterations < net.solver.max_iterations
    res, mag = element_kcl(net, op, nudge)
    for r, m in zip(res, mag):
        assert np.all(np.abs(r) <= 1e-12 * m.max()), np.max(np.abs(r) / m.max())
    # the solver's own residual is the same quantity
    for ours, theirs in zip(net.kcl_residuals(op, nudge), res):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-13 * mag[0].max())
    assert op.kcl_residual <= 1e-12 * op.kcl_scale


def test_deeper_network_kcl_and_warm_start():
    """Two hidden layers (dense Schur blocks in the elimination); a warm start converges at once."""
    net = ResistiveNetwork((7, 6, 5, 4), DEVICE, gains=(3.0, 2.0, 2.0), diode=DIODE,
                           rng=np.random.default_rng(5))
    u = inputs(seed=6, B=4, n=7, amplitude=2.0)
    op = net.operating_point(u)
    res, mag = element_kcl(net, op)
    assert max(np.max(np.abs(r)) / m.max() for r, m in zip(res, mag)) <= 1e-12
    again = net.operating_point(u, x0=op)
    assert again.iterations <= 2
    for a, b in zip(op.layers, again.layers):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_without_diodes_and_unit_gains_it_is_a_linear_resistor_network():
    """Diodes far away (huge bias) and A = 1: node voltages solve the plain nodal equations."""
    net = ResistiveNetwork((4, 3, 2), DEVICE, gains=1.0, diode=DiodeClamp(v_bias=100.0), bias_voltages=(),
                           rng=np.random.default_rng(7))
    u = inputs(seed=8, B=1, n=4)
    op = net.operating_point(u)
    G0, G1 = net.tile("W0").g, net.tile("W1").g
    # unknowns: 3 hidden, 2 outputs; Y v = I from the sources
    Y = np.zeros((5, 5))
    Y[:3, :3] = np.diag(G0.sum(0) + G1.sum(1))
    Y[3:, 3:] = np.diag(G1.sum(0))
    Y[:3, 3:] = -G1
    Y[3:, :3] = -G1.T
    rhs = np.concatenate([u[0] @ G0, np.zeros(2)])
    v = np.linalg.solve(Y, rhs)
    np.testing.assert_allclose(np.concatenate([op.layers[1][0], op.layers[2][0]]), v, atol=1e-9)


def test_floating_node_is_named():
    dev = SoftBoundsDevice(gamma=0.0, g_min=0.0, init_std=0.0)
    rng = np.random.default_rng(0)
    g0 = np.full((6 + 2, 5), 50e-6)
    g1 = np.full((5 + 2, 3), 50e-6)
    g0[:, 2] = 0.0      # nothing reaches hidden node 2 from below...
    g1[2, :] = 0.0      # ... nor from above
    net = ResistiveNetwork((6, 5, 3), dev, diode=DIODE, conductances=[g0, g1], rng=rng)
    with pytest.raises(FloatingNodeError, match="x1_2") as err:
        net.operating_point(inputs())
    assert err.value.nodes == ("x1_2",)


def test_non_convergence_raises():
    net = small_net(solver=DRNSolver(max_iterations=2))
    with pytest.raises(ConvergenceError, match="did not converge") as err:
        net.operating_point(inputs(amplitude=3.0))
    assert err.value.iterations == 2


@pytest.mark.parametrize("kw", [dict(gains=(1.0, 2.0, 3.0)), dict(gains=(1.0, -2.0))])
def test_bad_gains_are_named(kw):
    with pytest.raises(ParameterError, match="gains"):
        small_net(**kw)


def test_split_diodes_rectify_each_half_one_way():
    """Split clamps: the first half of a layer cannot go far below -V_b, the second far above +V_b."""
    net = ResistiveNetwork((6, 8, 3), DEVICE, gains=(2.0, 1.0), diode=DiodeClamp(v_bias=0.0, sides="split"),
                           rng=np.random.default_rng(2))
    h = net.operating_point(inputs(seed=3, B=40, amplitude=20.0)).layers[1]
    assert h[:, :4].min() > -0.8 and h[:, 4:].max() < 0.8          # one diode drop at most
    assert h[:, :4].max() > 2.0 and h[:, 4:].min() < -2.0          # the other side is free
    with pytest.raises(ParameterError, match="sides"):
        DiodeClamp(sides="one")


def test_bad_diode_parameters_are_named():
    with pytest.raises(ParameterError, match="v_bias"):
        DiodeClamp(v_bias=-0.1)
    with pytest.raises(ParameterError, match="i_sat"):
        DiodeClamp(i_sat=0.0)


def test_bad_inputs_and_targets():
    net = small_net()
    with pytest.raises(ParameterError, match="inputs"):
        net.operating_point(np.zeros((2, 5)))
    with pytest.raises(ParameterError, match="target"):
        net.operating_point(inputs(), nudge=(np.zeros(4), 1e-4))


def test_pulses_move_devices_the_right_way_and_reads_measure_them():
    net = small_net(settings=ProgramSettings(v_write=1.6, v_read=0.2))
    before = net.tile("W1").g.copy()
    np.testing.assert_allclose(net.measure_conductance("W1"), before, rtol=1e-12)
    widths = np.zeros(net.crossbar_shape("W1"))
    widths[0, 0] = 0.05 * DEVICE.dt_max        # single device, positive width: SET
    widths[1, 2] = -0.05 * DEVICE.dt_max       # negative: RESET
    report = net.pulse("W1", RowByRowWrite(widths))
    after = net.tile("W1").g
    step = 0.05 * DEVICE.dg_r                  # linear device: dt/dt_max of the range
    assert after[0, 0] - before[0, 0] == pytest.approx(step, rel=1e-9)
    assert after[1, 2] - before[1, 2] == pytest.approx(-step, rel=1e-9)
    changed = after != before
    changed[0, 0] = changed[1, 2] = False
    assert not changed.any() and report.pulses.sum() == 2
    assert net.counters.pulse_events == 1
    with pytest.raises(ParameterError, match="no crossbar"):
        net.pulse("W9", RowByRowWrite(widths))


def test_state_round_trip():
    net = small_net()
    state = net.state_dict()
    u = inputs()
    v = net.operating_point(u).outputs
    net.pulse("W0", RowByRowWrite(np.full(net.crossbar_shape("W0"), 0.1 * DEVICE.dt_max)))
    assert not np.allclose(net.operating_point(u).outputs, v)
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.operating_point(u).outputs, v)


def test_reads_beyond_the_device_thresholds_are_counted():
    net = small_net(bias_voltages=(0.5, -0.5))
    net.operating_point(inputs(amplitude=0.1))
    assert net.counters.read_over_threshold == 0
    net.operating_point(inputs(B=3, amplitude=3.0))     # rows at up to 2 x 3 V across 1 V thresholds
    assert net.counters.read_over_threshold > 0
