"""A deep resistive network described by a netlist (.drn card) and trained by scripts/train.py."""
from pathlib import Path

import numpy as np
import pytest

import circuits
from circuits.history import History
from circuits.netlist import NetlistError, parse_netlist
from circuits.resistive_network import ResistiveNetwork

ROOT = Path(__file__).resolve().parents[1]
DRN = str(ROOT / "netlists" / "drn_1568_100_10.net")

SMALL = """small DRN
.seed 3
.model dev softbounds gamma=0 g_min=1u g_max=100u dt_max=1u init_std=0.4
.drn inputs=6 hidden=4 hidden2=3 outputs=2 model=dev gain_in=2 gain_hid=1.5 diodes=split v_bias=0.1
.program dt_max=1u
.end
"""


def test_drn_card_builds_the_network_it_describes(tmp_path):
    path = tmp_path / "small.net"
    path.write_text(SMALL)
    net = circuits.load(path)
    assert isinstance(net, ResistiveNetwork)
    assert net.layer_sizes == (6, 4, 3, 2) and net.gains == (2.0, 1.5, 1.5)
    assert net.diode.sides == "split" and net.diode.v_bias == 0.1 and net.bias_voltages == (1.0, -1.0)
    assert net.pulse_limits == (0.0, 1e-6) and net.seed == 3
    # the same seed gives the same network; the canonical text reads back equal
    again = circuits.load(path)
    assert all(np.array_equal(net.tile(n).g, again.tile(n).g) for n in net.crossbars)
    text = parse_netlist(SMALL).to_text()
    assert parse_netlist(text) == parse_netlist(SMALL)
    shipped = circuits.read_netlist(DRN)
    assert parse_netlist(shipped.to_text()) == shipped and shipped.drn.params["inputs"] == 1568


@pytest.mark.parametrize("text, where, message", [
    (SMALL.replace(".end", "Nx size=3 role=input\n.end"), "6:1", "no N or X cards"),
    (SMALL.replace("model=dev gain_in", "model=nope gain_in"), "4:", "unknown model 'nope'"),
    (SMALL.replace("diodes=split", "diodes=half"), "4:", "diodes"),
    (SMALL.replace(".program", ".drn inputs=2 hidden=2 outputs=2 model=dev\n.program"), "5:1", "second .drn"),
])
def test_drn_card_errors_name_the_place(text, where, message):
    with pytest.raises(NetlistError) as err:
        parse_netlist(text, "small.net")
    assert f"small.net:{where}" in str(err.value) and message in str(err.value)


DRN_ARGS = ["--train", "600", "--test", "300", "--batch", "16", "--beta", "1e-3", "--estimator", "centred",
            "--policy", "proportional", "--scale", "3.25e-10", "--quantum", "1e-10", "--record", "100"]


def test_train_py_trains_a_drn_netlist_and_resumes_exactly(train_and_resume):
    a, _, out, _ = train_and_resume(DRN, DRN_ARGS, "W1")
    assert a["test_error"][-1] < 0.75                # chance is 0.9 (38 mini-batches per epoch)
    assert a["pulses"][0] > 0 and a["energy_J"][0] > 0
    with History(out / "run.h5") as h:
        assert h.n_events("W0") == 2 * 38


def test_bias_pixel_network_with_lr_decay_resumes_exactly(train_and_resume):
    """inputs=1570: an always-white pixel is appended; --lr-decay continues from the checkpoint's scale."""
    args = ["--train", "96", "--test", "40", "--batch", "4", "--beta", "1e-3", "--estimator", "centred",
            "--policy", "proportional", "--scale", "4.33e-9", "3.25e-10", "--quantum", "1e-13", "--lr-decay", "0.5",
            "--record", "30"]
    ma, _, a, _ = train_and_resume(ROOT / "netlists" / "drn_1570_100_10_split.net", args, "W0")
    assert ma["pulses"][0] > 0 and ma["test_error"][-1] < 0.95
    from circuits.history import read_checkpoint
    _, meta = read_checkpoint(a / "run.h5")
    assert meta["policy"]["W0"]["scale"] == pytest.approx(4.33e-9 * 0.25, rel=1e-12)


def test_reset_start_netlist_leaves_half_the_devices_at_g_min():
    """drn_1570_100_10_reset.net: init_mean = g_min, so half of every crossbar starts RESET."""
    net = circuits.load(ROOT / "netlists" / "drn_1570_100_10_reset.net")
    assert net.layer_sizes == (1570, 100, 10)
    for name in net.crossbars:
        g = net.tile(name).g
        frac = np.mean(g == 1e-6)
        assert 0.47 < frac < 0.53, (name, frac)
        # the rest: a half-normal of std 0.313 x the 50.5 uS midpoint above g_min
        up = g[g > 1e-6] - 1e-6
        assert up.mean() == pytest.approx(0.313 * 50.5e-6 * np.sqrt(2 / np.pi), rel=0.05)
