"""scripts/software_ep.py and scripts/plot_trials.py: a resumed run ends where an uninterrupted one does."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script

SMALL = ["--train", "40", "--hidden", "8", "--T", "4", "--K", "3", "--beta", "0.2", "--estimator", "random",
         "--lrs", "0.05", "0.02", "--continual", "--rule", "vf", "--angle", "45", "--nudge-at", "activity",
         "--dtype", "float32", "--eval-every", "1", "--seed", "4"]


def test_resume_continues_the_same_run(tmp_path):
    sw = load_script("software_ep")
    sw.main(SMALL + ["--epochs", "2", "--out", str(tmp_path / "straight"), "--keep-checkpoints"])
    assert sorted(p.name for p in (tmp_path / "straight" / "checkpoints").iterdir()) == ["epoch_001.npz",
                                                                                           "epoch_002.npz"]
    sw.main(SMALL + ["--epochs", "1", "--out", str(tmp_path / "cut")])
    sw.main(SMALL + ["--epochs", "2", "--out", str(tmp_path / "cut"), "--resume"])
    straight, cut = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "cut"))
    assert straight["epoch"] == cut["epoch"] == [1, 2]
    assert straight["test_error"] == cut["test_error"]
    assert straight["angle"] == cut["angle"] and len(straight["angle"][0]) == 1     # C-VF's Psi(W1, B1)
    assert 0 < straight["angle"][0][0] < 90 and straight["weight_rms"] == cut["weight_rms"]
    assert straight["back_rms"] == cut["back_rms"] and len(straight["back_rms"][0]) == 1
    with np.load(tmp_path / "straight" / "checkpoint.npz") as a, np.load(tmp_path / "cut" / "checkpoint.npz") as b:
        assert {"W0", "W1", "back1"} <= set(a.files)
        assert straight["back_rms"][1][0] == pytest.approx(np.sqrt(np.mean(a["back1"].astype(float) ** 2)))
        for k in ("W0", "W1", "back1"):
            assert a[k].dtype == np.float32
            np.testing.assert_array_equal(a[k], b[k])
    # the epoch before is kept: resuming from it replays epoch 2 exactly
    (tmp_path / "cut" / "checkpoint.prev.npz").replace(tmp_path / "cut" / "checkpoint.npz")
    sw.main(SMALL + ["--epochs", "2", "--out", str(tmp_path / "cut"), "--resume"])
    with np.load(tmp_path / "straight" / "checkpoint.npz") as a, np.load(tmp_path / "cut" / "checkpoint.npz") as b:
        for k in ("W0", "W1", "back1"):
            np.testing.assert_array_equal(a[k], b[k])
    replayed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert straight["settle_gap"] == cut["settle_gap"] and all(0 <= g <= 1 for g in straight["settle_gap"])
    for k in ("epoch", "test_error", "angle", "back_rms", "weight_rms", "settle_gap"):   # epoch 2 once, not twice
        assert replayed[k] == straight[k], k


def test_evaluate_gives_predict_s_error_and_the_last_step_s_change():
    """The settle gap is ~0 for a net that settles and ~1 for one caught in a two-step cycle."""
    from learning import ep_software as sw_lib
    sw = load_script("software_ep")
    rng = np.random.default_rng(0)
    act = sw_lib.Activation("sigmoid", 4.0, 0.5)
    net = sw_lib.LayeredNet.glorot((6, 5, 3), (1, 1, 0), rng, [act] * 2)
    model = sw_lib.SoftwareEP(net, T=30, K=3, beta=0.1, lrs=[0.1, 0.1])
    x, y = rng.random((50, 6)), rng.integers(0, 3, 50)
    err, gap = sw.evaluate(model, x, y, chunk=20)
    assert err == np.mean(model.predict(x) != y)
    assert gap < 1e-3
    # strong negative hidden-output feedback: a synchronous step flips both layers (period 2)
    net.W[0][...] = 0.0
    net.W[1][...] = 0.0
    net.W[1][:5, :] = -40.0
    net.W[1][5, :] = 20.0                 # the hidden bias unit's row: output pre-activation 20 - 40 * sum(h)
    _, gap = sw.evaluate(model, x, y, chunk=20)
    assert gap > 0.99


def test_plot_trials_overlays_runs_and_checks_labels(tmp_path):
    plot = load_script("plot_trials")
    for name, err in (("a", [0.3, 0.1]), ("b", [0.4, 0.2])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"epoch": [1, 2], "test_error": err}))
    out = tmp_path / "curves.png"
    plot.main([str(tmp_path / "a"), str(tmp_path / "b"), "--reference", "2.28", "-o", str(out)])
    assert out.stat().st_size > 1000
    with pytest.raises(SystemExit):
        plot.main([str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "only one", "-o", str(out)])


def test_plot_trials_draws_the_per_epoch_diagnostics(tmp_path):
    plot = load_script("plot_trials")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text(json.dumps({
        "epoch": [1, 2, 3], "test_error": [0.3, 0.1, 0.9], "weight_rms": [[0.04, 0.06], [0.04, 0.08], [0.4, 10.0]],
        "angle": [[45.0], [40.0], [4.0]], "back_rms": [[0.05], [0.06], [3.0]], "settle_gap": [None, 1e-4, 0.4]}))
    epochs, gap = plot.read_metric(tmp_path / "a", "settle_gap")     # an epoch without the metric is left out
    assert list(epochs) == [2, 3] and list(gap) == [1e-4, 0.4]
    assert list(plot.read_metric(tmp_path / "a", "weight_rms")[1]) == [0.06, 0.08, 10.0]    # the top layer's
    out = tmp_path / "diag.png"
    plot.main([str(tmp_path / "a"), "--panels", "weight_rms", "angle", "back_rms", "settle_gap", "--ymax", "100",
               "-o", str(out)])
    assert out.stat().st_size > 1000
    with pytest.raises(SystemExit):
        plot.main([str(tmp_path / "a"), "--panels", "loss", "-o", str(out)])



def test_cycle_probe_counts_cycling_images_and_measures_their_weight_changes(tmp_path):
    sw = load_script("software_ep")
    probe = load_script("cycle_probe")
    run = tmp_path / "run"
    sw.main(SMALL + ["--epochs", "1", "--out", str(run)])
    x = np.random.default_rng(1).random((30, 784))
    y = np.arange(30) % 10
    r = probe.probe(run, x, y, threshold=0.5, batch=10, settled_below=0.5)
    assert r["epoch"] == 1 and r["images"] == 30 and r["cycling"] == 0 and r["mean_gap"] < 0.5
    assert set(r["kicks"]) == {"settled, beta +0.2, K 3", "settled, beta -0.2, K 3"}
    # strong negative hidden-output feedback (as in the evaluate test): every image cycles
    with np.load(run / "checkpoint.npz") as ck:
        arrays = dict(ck)
    arrays["W0"][...] = 0.0
    arrays["W1"][...] = 0.0
    arrays["back1"][...] = 0.0
    arrays["W1"][:8, :] = arrays["back1"][:8, :] = -40.0
    arrays["W1"][8, :] = 20.0
    np.savez(run / "checkpoint.npz", **arrays)
    # a run begun before --nudge-at existed: its arguments get the defaults (the circuit's nudge)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["args"]["nudge_at"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert sw.run_args(run).nudge_at == "current" and sw.run_args(run).angle == 45
    metrics["args"]["nudge_at"] = "activity"      # back to the thesis' placement, the one that collapsed
    (run / "metrics.json").write_text(json.dumps(metrics))
    r = probe.probe(run, x, y, threshold=0.5, batch=10, Ks=[3, 6, 12])
    assert r["cycling"] == 30 and len(r["kicks"]) == 6
    k = r["kicks"]["cycling, beta -0.2, K 3"]
    assert k["batch"] == 10 and len(k["dW"]) == 2 and k["dB"][0] is None and k["dB"][1] > 0
    assert k["W"][1] > 0 and -1 <= k["cos_dW_dB"][1] <= 1
    # the mechanism of the C-VF runaway (the module docstring): at +beta the activity nudge keeps the
    # cycle open (and wider), the change follows the cycle's closed form, grows |W1| and grows with K
    plus = [r["kicks"][f"cycling, beta +0.2, K {K}"] for K in (3, 6, 12)]
    assert all(k["nudged_gap"] > 1.0 and k["growth"][1] > 0 for k in plus)
    assert plus[1]["cos_closed_form"][1] > 0.99 and plus[2]["cos_closed_form"][1] > 0.99
    assert plus[2]["dW"][1] > 4 * plus[0]["dW"][1]
    # at -beta it closes the cycle within a few steps, so the (shrinking) change stops growing with K
    minus = [r["kicks"][f"cycling, beta -0.2, K {K}"] for K in (3, 6, 12)]
    assert all(k["growth"][1] < 0 for k in minus) and minus[2]["nudged_gap"] < 1e-3
    assert minus[2]["dW"][1] < 1.2 * minus[0]["dW"][1] < plus[0]["dW"][1]
    assert "mixed" not in r                   # no settled image to mix the cycling ones with
    # a strong input drive settles the images whose first pixel is on; the rest still cycle
    arrays["W0"][0, :] = 100.0
    np.savez(run / "checkpoint.npz", **arrays)
    x[:, 0] = np.arange(30) < 15
    r = probe.probe(run, x, y, threshold=0.5, batch=4, settled_below=1e-3)
    assert r["cycling"] == 15 and set(r["mixed"]) == {"beta +0.2, K 3", "beta -0.2, K 3"}
    m = r["mixed"]["beta +0.2, K 3"]
    assert m["batches"] == 4 and len(m["growth_mean"]) == len(m["growth_sem"]) == len(m["dW_mean"]) == 2
    assert m["growth_mean"][1] > 0 > r["mixed"]["beta -0.2, K 3"]["growth_mean"][1]


def test_replay_epoch_reruns_an_epoch_exactly_and_records_every_batch(tmp_path, capsys):
    sw = load_script("software_ep")
    rp = load_script("replay_epoch")
    run = tmp_path / "run"
    sw.main(SMALL + ["--epochs", "2", "--out", str(run), "--keep-checkpoints"])
    rec = rp.replay(run, 2)
    assert bool(rec["exact"])                  # the same weights as the run's own epoch 2
    assert rec["beta"].shape == (2,) and set(np.abs(rec["beta"])) == {0.2}     # 40 images, batches of 20
    assert rec["dW"].shape == rec["rms"].shape == (2, 3)                        # W0, W1 and back1
    assert (rec["dW"] > 0).all() and rec["cycling"].shape == rec["max_gap"].shape == (2,)
    (run / "checkpoints" / "epoch_002.npz").unlink()       # without it, the run's last checkpoint is the check
    assert bool(rp.replay(run, 2, start=run / "checkpoint.prev.npz")["exact"])
    with pytest.raises(ValueError, match="holds epoch 1"):
        rp.replay(run, 3, start=run / "checkpoints" / "epoch_001.npz")
    growth = rp.growth_by_kind(rec, 1)
    total = rec["size"][1] * (rec["rms"][-1, 1] ** 2 - rec["rms_start"][1] ** 2)
    assert len(growth) == 4 and sum(growth.values()) == pytest.approx(total, rel=1e-9, abs=1e-12)
    rp.main([str(run), "--epoch", "2", "--out", str(tmp_path / "r.npz"), "--plot", str(tmp_path / "r.png")])
    assert (tmp_path / "r.npz").exists() and (tmp_path / "r.png").stat().st_size > 1000
    rp.main([str(run), "--epoch", "2", "--out", str(tmp_path / "b.npz"), "--matrix", "2"])     # back1
    assert "change of B1's squared norm" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"--matrix 3 is outside the allowed range \[0, 2\]"):
        rp.main([str(run), "--epoch", "2", "--out", str(tmp_path / "c.npz"), "--matrix", "3"])


def test_skip_unsettled_is_recorded_and_a_tiny_threshold_skips_every_sample(tmp_path):
    sw = load_script("software_ep")
    assert sw.parser().parse_args([]).skip_unsettled is None          # the thesis keeps every sample
    assert sw.build(sw.parser().parse_args(SMALL + ["--vf-rho-prime"]))[1].vf_rho_prime
    run = tmp_path / "run"
    sw.main(SMALL + ["--epochs", "1", "--out", str(run), "--skip-unsettled", "1e-12"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["skipped"] == [40] and metrics["args"]["skip_unsettled"] == 1e-12
    # nothing was trained: the weights are the initial ones
    net, _, _ = sw.build(sw.run_args(run))
    with np.load(run / "checkpoint.npz") as ck:
        for n, w in enumerate(net.W):
            np.testing.assert_array_equal(ck[f"W{n}"], w)


def test_checkpoint_trace_reads_kept_checkpoints(tmp_path, capsys):
    """Per epoch: the angle matches the run's own metric, norms match the checkpoint; a cycling net shows."""
    sw = load_script("software_ep")
    tr = load_script("checkpoint_trace")
    run = tmp_path / "run"
    sw.main(SMALL + ["--epochs", "2", "--out", str(run), "--keep-checkpoints"])
    x = np.random.default_rng(1).random((30, 784))
    labels = np.arange(30) % 10
    rec = tr.trace(run, [1, 2], x, labels)
    metrics = json.loads((run / "metrics.json").read_text())
    for e in (1, 2):
        r = rec[e]
        assert r["angle"][0] == pytest.approx(metrics["angle"][e - 1][0], abs=1e-4)
        with np.load(run / "checkpoints" / f"epoch_{e:03d}.npz") as ck:
            assert r["norm_W"][1] == pytest.approx(np.linalg.norm(ck["W1"]), rel=1e-5)
            assert r["norm_B"][0] == pytest.approx(np.linalg.norm(ck["back1"]), rel=1e-5)
        assert 0 < r["slope_full"][0] <= 1 and 0 < r["slope_backward_read"][0] <= 1     # sigmoid slope 4
        assert r["cycling"] == 0 and 0.1 <= r["largest_class_share"] <= 1
    # the cycling net of the probe test: every image alternates, and they all get one answer
    with np.load(run / "checkpoints" / "epoch_002.npz") as ck:
        arrays = dict(ck)
    for k in ("W0", "W1", "back1"):
        arrays[k][...] = 0.0
    arrays["W1"][:8, :] = arrays["back1"][:8, :] = -40.0
    arrays["W1"][8, :] = 20.0
    np.savez(run / "checkpoints" / "epoch_002.npz", **arrays)
    r = tr.trace(run, [2], x, labels)[2]
    assert r["cycling"] == 1.0 and r["largest_class_share"] == 1.0
    tr.main([str(run), "--epochs", "1", "--test", "20", "--out", str(tmp_path / "t.json")])
    assert "epoch 1: error" in capsys.readouterr().out
    assert json.loads((tmp_path / "t.json").read_text())["epochs"]["1"]["norm_B"]
    with pytest.raises(SystemExit, match="epoch_003.npz does not exist"):
        tr.trace(run, [3], x, labels)


def test_wire_transfer_places_the_weights_and_compares_the_chips(tmp_path):
    """A trained tied net on a chip: the ideal chip answers as software does; 1 ohm wires change the outputs."""
    import circuits
    sw = load_script("software_ep")
    wt = load_script("wire_transfer")
    tied = [a for a in SMALL if a not in ("--angle", "45", "--rule", "vf")]
    run = tmp_path / "run"
    sw.main(tied + ["--epochs", "1", "--out", str(run)])
    root = Path(__file__).resolve().parents[1] / "netlists"
    netlists = {}
    for name in ("ideal", "wires", "wires_lowg"):   # the P-1h chips with 8 hidden units, as the small run has
        text = (root / f"ep_p1h_{name}.net").read_text().replace("size=512", "size=8")
        netlists[name] = tmp_path / f"{name}.net"
        netlists[name].write_text(text)
    x = np.random.default_rng(1).integers(0, 256, (6, 784)) / 255     # grey levels the 8-bit DAC holds exactly
    labels = np.arange(6)
    r = wt.transfer(run, x, labels, netlists)
    assert r["ideal"]["agrees_with_software"] == 1.0 and r["ideal"]["largest_output_difference"] < 1e-4
    assert r["wires"]["largest_output_difference"] > 1e-3
    # ten times lower conductances draw ten times less line current: smaller IR drops, closer reads
    assert r["wires_lowg"]["largest_output_difference"] < r["wires"]["largest_output_difference"] / 3
    # both placements put exactly the net's weights on the pairs (k = R_f v_read = 4e4)
    net = sw.build(sw.run_args(run))[0]
    sw.load_weights(run / "checkpoint.npz", net)
    for floor in (None, 1e-6):
        chip = circuits.load(netlists["ideal"])
        wt.place_weights(chip, [w.astype(float) for w in net.W], floor)
        g = chip.state_dict()["arrays"]
        for t, w in zip(chip.tiles, net.W):
            np.testing.assert_allclose(4e4 * (g[f"g/{t}"][:, 0::2] - g[f"g/{t}"][:, 1::2]), w, atol=1e-6)
            if floor is not None:
                assert g[f"g/{t}"].min() == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="need pair conductances below 0"):
        wt.place_weights(circuits.load(netlists["ideal"]), [np.full(w.shape, 10.0) for w in net.W])
