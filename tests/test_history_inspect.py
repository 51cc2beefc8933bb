"""scripts/inspect_run.py: the listing and each plot, through main(argv) and as a script."""
import os
import subprocess
import sys

import numpy as np
import pytest

from circuits.history import HistoryWriter, provenance
from conftest import load_script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "inspect_run.py")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def inspect_script():
    return load_script("inspect_run")


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inspect") / "run.h5"
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-5, 9e-5, (8, 12))
    with HistoryWriter(path, {"W1": (8, 12), "W2": (4, 4)}, record={"W1": "all", "W2": 3}, rng=rng,
                       provenance=provenance(netlist_text="R1 a b 1k\n", seed=0),
                       hist_range=(0.0, 1e-4)) as h:
        for e in range(40):
            g += 1e-7 * rng.standard_normal(g.shape)
            h.record(e, "W1", g, pulses=rng.integers(0, 2, g.shape).astype(np.int8),
                     disturbed=rng.random(g.shape) < 0.2, energy=1e-12)
            h.record(e, "W2", np.full((4, 4), 3e-5))
            if e % 5 == 0:
                h.metrics(e, loss=1.0 / (e + 1), acc=e / 40)
        h.checkpoint({"g": g}, {"epoch": 1})
    return path


def test_listing(inspect_script, run_file, capsys):
    assert inspect_script.main([str(run_file)]) == 0
    out = capsys.readouterr().out
    for text in ("W1: 8 x 12", "40 rows", "96 devices traced", "W2: 4 x 4", "3 devices traced",
                 "metrics: 8 rows", "loss", "acc", "seed 0", "netlist 1 lines", "checkpoint: g (8, 12)"):
        assert text in out, text


@pytest.mark.parametrize("argv", [["trace", "W1", "3", "4"], ["hist", "W1"], ["pulses", "W1"],
                                  ["disturb", "W1"], ["metrics"]])
def test_each_plot_writes_a_png(inspect_script, run_file, tmp_path, capsys, argv):
    out = tmp_path / "x.png"
    assert inspect_script.main([str(run_file), *argv, "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    assert capsys.readouterr().out.strip() == str(out)


def test_errors_are_reported_not_raised(inspect_script, run_file, tmp_path, capsys):
    assert inspect_script.main([str(run_file), "trace", "W9", "0", "0"]) == 2
    assert "no tile 'W9'" in capsys.readouterr().err
    assert inspect_script.main([str(tmp_path / "missing.h5")]) == 2


def test_runs_as_a_script(run_file, tmp_path):
    # scripts/ is first on sys.path when a script there runs: nothing in it may shadow a
    # standard-library module that numpy imports (the reason it is not called inspect.py)
    out = tmp_path / "h.png"
    res = subprocess.run([sys.executable, SCRIPT, str(run_file), "hist", "W1", "-o", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == PNG
    res = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                          "import numpy, inspect; print(inspect.signature(len))",
                          os.path.dirname(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
