"""scripts/sweep.py on an in-process Dask cluster: a tiny sweep writes its table and plot."""
import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("memx_sweep_script", ROOT / "scripts" / "sweep.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiny_sweep_on_dask(sweep, tmp_path):
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        summary = sweep.main([str(ROOT / "netlists" / "drbm_small.net"), "--widths", "1e-3", "1e-2",
                              "--betas", "0.005", "3", "--trials", "2", "--epochs", "1", "--train", "300",
                              "--test", "50", "--out", str(tmp_path)], client=client)
    assert len(summary) == 4 and all(s["n"] == 2 for s in summary)
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["beta"] for r in rows} == {"0.005", "3.0"}
    assert {r["scoring"] for r in rows} == {"free-energy"}
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    assert "| 3 | cst | 1 | 0.01 |" in (tmp_path / "results.md").read_text()
    # an interrupted sweep's partial CSV gives the same table and plot, usable ranges included
    again = sweep.main(["--from-csv", str(tmp_path / "results_partial.csv"), "--out", str(tmp_path / "again")])
    assert again == summary
    assert "Usable range" in (tmp_path / "again" / "results.md").read_text()


def test_usable_ranges_take_the_widths_below_each_threshold(sweep):
    summary = [dict(beta=3.0, policy="cst", chains=1, width_frac=w, median=m, q1=m, q3=m, n=3)
               for w, m in ((1e-3, 0.15), (1e-2, 0.09), (1e-1, 0.30))]
    assert list(sweep.usable_ranges(summary)) == [((3.0, "cst", 1), "[0.01, 0.01]", "[0.001, 0.01]")]


def test_override_device_sets_beta_and_width(sweep):
    import circuits
    net = circuits.read_netlist(ROOT / "netlists" / "drbm_mnist.net")
    new = sweep.override_device(net, beta=3.0, width_frac=1e-4)
    (card,) = [m for m in new.models.values() if m.type == "exponential"]
    dev = card.build()
    assert dev.beta_p == dev.beta_d == 3.0
    assert new.program.params["dt_max"] == pytest.approx(1e-4 * dev.dt_max)
