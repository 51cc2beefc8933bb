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


@pytest.fixture(scope="session")
def train_script():
    """scripts/train.py as a module (a script, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    spec = importlib.util.spec_from_file_location("memx_train_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def train(train_script):
    """``main`` of scripts/train.py."""
    return train_script.main
