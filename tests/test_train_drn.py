"""scripts/train_drn.py: a few mini-batches with per-crossbar learning rates, a sharp diode knee and a bias pixel."""
import json

import pytest

from conftest import load_script


def test_train_drn_runs_with_per_layer_rates_and_bias_pixel(tmp_path, capsys):
    drn = load_script("train_drn")
    out = tmp_path / "drn.jsonl"
    drn.main(["--n-train", "48", "--n-test", "16", "--hidden", "6", "--batch", "16", "--diodes", "split",
              "--gain-hid", "1", "--lr", "4e-7", "3e-8", "--i-sat", "1e-4", "--n-diode", "0.5", "--quantum", "1e-7",
              "--bias-pixel", "1", "--out", str(out)])
    assert "DRN 1570-6-10" in capsys.readouterr().out
    rec = json.loads(out.read_text().splitlines()[-1])
    assert 0 <= rec["test_error"] <= 1 and set(rec["pulses_dropped"]) == {"W0", "W1"}
    with pytest.raises(SystemExit, match="one per crossbar"):
        drn.main(["--n-train", "16", "--n-test", "16", "--hidden", "6", "--lr", "1e-7", "2e-7", "3e-7"])
