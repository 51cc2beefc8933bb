"""Shared fixtures. ``tests/`` is on sys.path so tests can import nodal_reference."""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def ngspice():
    """Require ngspice: fail (never skip silently) unless MEMX_ALLOW_NO_NGSPICE=1."""
    from circuits.spice import ngspice_available
    if ngspice_available():
        return True
    if os.environ.get("MEMX_ALLOW_NO_NGSPICE") == "1":
        pytest.skip("ngspice not found and MEMX_ALLOW_NO_NGSPICE=1")
    pytest.fail("ngspice is required for the SPICE cross-checks but was not found on PATH "
                "(apt-get install -y ngspice; set MEMX_ALLOW_NO_NGSPICE=1 to skip them on a machine "
                "without it)", pytrace=False)


def load_script(name: str):
    """scripts/<name>.py as a module (scripts are not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"memx_{name}_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def train_script():
    """scripts/train.py as a module."""
    return load_script("train")


@pytest.fixture(scope="session")
def train(train_script):
    """``main`` of scripts/train.py."""
    return train_script.main


@pytest.fixture
def train_and_resume(train, tmp_path):
    """Run ``train.py`` for 2 epochs in one go (``a``) and as 1 + 1 with ``--resume`` (``b``);
    check that metrics and tile ``tile``'s final conductances agree bit for bit. Returns
    ``(metrics of a, metrics of b, folder of a, folder of b)``."""
    import json

    import numpy as np

    from circuits.history import History

    def run(netlist, args, tile):
        a, b = tmp_path / "a", tmp_path / "b"
        train([str(netlist), "--out", str(a), "--epochs", "2", *args])
        train([str(netlist), "--out", str(b), "--epochs", "1", *args])
        train([str(netlist), "--out", str(b), "--epochs", "2", "--resume", *args])
        ma = json.loads((a / "metrics.json").read_text())
        mb = json.loads((b / "metrics.json").read_text())
        for key in ("test_error", "train_error", "train_loss", "pulses"):
            assert ma[key] == mb[key], key
        with History(a / "run.h5") as ha, History(b / "run.h5") as hb:
            np.testing.assert_array_equal(ha.snapshot(tile), hb.snapshot(tile))
        return ma, mb, a, b
    return run
