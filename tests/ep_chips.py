"""Small EP chips built in code for the tests, and their software twins (learning.ep_software)."""
import numpy as np

from circuits import Chip, NeuronGroup, NeuronParams, ProgramSettings
from circuits.chip import ChipTile
from crossbar.devices import SoftBoundsDevice
from crossbar.tile import Tile
from learning.ep_software import Activation, LayeredNet

V_READ = 0.5
R_F = 1.0 / V_READ          # so that a weight equals G+ - G- in siemens
IDEAL = SoftBoundsDevice(gamma=0.0, g_min=1e-6, g_max=2.0, dt_max=1.0, v_set=1.0, v_reset=-1.0, init_std=0.05)


def ep_chip(sizes=(6, 5, 3), *, seed=0, activation="sigmoid", device=IDEAL, bias=(1, 1, 0), untied=False,
            init_std=None, dt_min=0.0, rails=(-20.0, 20.0)):
    """A layered chip: input -> hidden layers -> output, bidirectional tiles of differential pairs.

    ``untied``: separate forward tiles and backward tiles (vector-field EP) instead of bidirectional ones.
    """
    rng = np.random.default_rng(seed)
    names = ["x"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["y"]
    groups = {}
    for n, (name, size) in enumerate(zip(names, sizes)):
        if n == 0:
            p = NeuronParams(role="input", bias=bool(bias[n]))
        else:
            p = NeuronParams(role="output" if n == len(sizes) - 1 else "hidden", activation=activation,
                             slope=4.0, v_mid=0.5, r_feedback=R_F, v_rail_neg=rails[0], v_rail_pos=rails[1],
                             bias=bool(bias[n]), tau=1e-6)
        groups[name] = NeuronGroup(name, size, p, rng)
    if init_std is not None:
        import dataclasses
        device = dataclasses.replace(device, init_std=init_std)
    tiles = {}

    def add(name, r, c, bidirectional):
        shape = (groups[r].lines, 2 * groups[c].lines)
        tiles[name] = ChipTile(name, Tile(device.initial_conductance(shape, rng), pairs=True), device,
                               device.sample(shape, rng), r, c, bidirectional)

    for n in range(len(sizes) - 1):
        add(f"W{n}", names[n], names[n + 1], not untied)
        if untied and n > 0:
            add(f"B{n}", names[n + 1], names[n], False)
    chip = Chip(groups, tiles, settings=ProgramSettings(v_read=V_READ, v_write=1.6, dt_min=dt_min), rng=rng,
                seed=seed)
    return chip


def software_twin(chip, sizes, bias, activation="sigmoid", rails=(-20.0, 20.0)):
    """The LayeredNet with the chip's effective weights R_f v_read (G+ - G-) (tests may look inside)."""
    ws = [R_F * V_READ * chip._tiles[f"W{n}"].tile.weights() for n in range(len(sizes) - 1)]
    act = Activation(activation, slope=4.0, v_mid=0.5, v_rail_neg=rails[0], v_rail_pos=rails[1])
    return LayeredNet(tuple(sizes), tuple(bias), ws, [act] * (len(sizes) - 1))
