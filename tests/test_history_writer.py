"""HistoryWriter / History round trips, recording options, errors, live reading."""
import json
import re
import time

import h5py
import numpy as np
import pytest

from circuits.history import (History, HistoryError, HistoryWriter, SUMMARY_DTYPE, last_event,
                              provenance, read_checkpoint)
from circuits.history._fileutil import status_flags
from crossbar.errors import ParameterError

SHAPE = (12, 10)
LO, HI = 1e-6, 1e-4


def conductances(event, shape=SHAPE):
    """A deterministic g for each event, so any row can be checked."""
    M, N = shape
    return LO + 1e-7 * np.arange(M * N).reshape(shape) + 1e-8 * event


@pytest.fixture(params=[True, False], ids=["thread", "inline"])
def background(request):
    return request.param


def test_round_trip_every_device(tmp_path, background):
    path = tmp_path / "run.h5"
    rng = np.random.default_rng(0)
    with HistoryWriter(path, {"W1": SHAPE, "W2": (3, 4)}, background=background,
                       provenance=provenance(netlist_text="* net\nR1 a b 1k\n", seed=7),
                       hist_range=(LO, HI), chunk_events=4) as h:
        for e in range(23):
            pulses = rng.integers(0, 3, SHAPE).astype(np.int8)
            dist = rng.random(SHAPE) < 0.3
            h.record(e, "W1", conductances(e), pulses=pulses, disturbed=dist, time=1e-6 * e, energy=2e-12)
            if e % 2 == 0:
                h.record(e, "W2", np.full((3, 4), 5e-5))
            if e == 0:
                total_p, total_d = pulses.astype(np.int64), dist.astype(np.int64)
            else:
                total_p += pulses
                total_d += dist
    with History(path) as r:
        assert r.tiles == {"W1": SHAPE, "W2": (3, 4)}
        assert r.n_events("W1") == 23 and r.n_events("W2") == 12
        np.testing.assert_array_equal(r.events("W1"), np.arange(23))
        np.testing.assert_array_equal(r.events("W2"), np.arange(0, 23, 2))
        g = np.array([conductances(e) for e in range(23)])
        np.testing.assert_array_equal(r.trace("W1", 3, 7), g[:, 3, 7].astype(np.float32))
        np.testing.assert_array_equal(r.snapshot("W1", 5), g[5].astype(np.float32))
        s = r.summary("W1")
        stored = g.astype(np.float32).astype(float)
        np.testing.assert_allclose(s["mean"], stored.mean(axis=(1, 2)), rtol=1e-12)
        np.testing.assert_allclose(s["max"], g.astype(np.float32).max(axis=(1, 2)))
        np.testing.assert_allclose(s["time"], 1e-6 * np.arange(23))
        np.testing.assert_allclose(s["energy"], 2e-12 * np.arange(1, 24))
        assert (s["below"] == 0).all() and (s["above"] == 0).all()
        counts, edges = r.histograms("W1")
        assert counts.shape == (23, 64) and (counts.sum(axis=1) == SHAPE[0] * SHAPE[1]).all()
        np.testing.assert_allclose(edges, np.linspace(LO, HI, 65))
        np.testing.assert_array_equal(r.pulse_map("W1"), total_p)
        np.testing.assert_array_equal(r.disturb_map("W1"), total_d)
        assert r.pulse_map("W2").sum() == 0
        assert r.last_event() == 22
        p = r.provenance
        assert p["seed"] == 7 and p["netlist"].startswith("* net") and p["version"] == "0.1.0"
        assert re.fullmatch(r"[0-9a-f]{40}|unknown", p["git_commit"])
        a = r.attrs
        assert a["format"] == "memx-history" and json.loads(a["units"])["g"] == "S"
    assert last_event(path) == 22
    assert status_flags(path) == 0           # closed cleanly
    with h5py.File(path, "r") as f:           # plain (non-SWMR) HDF5 readers can open it
        assert f["tiles/W1/g"].dtype == np.float32
        assert f["tiles/W1/g"].compression == "lzf"
        assert f["tiles/W1/summary"].dtype == SUMMARY_DTYPE


def test_random_subset_stride_and_summaries_cover_all_devices(tmp_path, background):
    path = tmp_path / "run.h5"
    with HistoryWriter(path, {"W": SHAPE}, record=5, rng=np.random.default_rng(3), stride=3,
                       background=background, dtype="float64", compression="gzip") as h:
        chosen = h.recorded("W")
        for e in range(10):
            h.record(e, "W", conductances(e), pulses=np.ones(SHAPE, dtype=np.uint8), energy=1.0)
    # the same seed picks the same devices
    again = HistoryWriter(tmp_path / "b.h5", {"W": SHAPE}, record=5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(again.recorded("W"), chosen)
    again.close()
    with History(path) as r:
        np.testing.assert_array_equal(r.events("W"), [0, 3, 6, 9])
        np.testing.assert_array_equal(r.recorded("W"), chosen)
        i, j = chosen[2]
        np.testing.assert_array_equal(r.trace("W", i, j), [conductances(e)[i, j] for e in (0, 3, 6, 9)])
        assert r.pulse_map("W").min() == 10                  # counted at every event
        np.testing.assert_allclose(r.summary("W")["energy"], [1, 4, 7, 10])
        unrecorded = next((a, b) for a in range(SHAPE[0]) for b in range(SHAPE[1])
                          if not ((chosen[:, 0] == a) & (chosen[:, 1] == b)).any())
        with pytest.raises(ParameterError, match="was not recorded"):
            r.trace("W", *unrecorded)
        snap = r.snapshot("W")
        assert np.isfinite(snap).sum() == 5
        # summaries and histograms are over all 120 devices, not the 5 traced
        assert (r.histograms("W")[0].sum(axis=1) == 120).all()
        assert r.summary("W")["min"][0] == conductances(0).min()


def test_explicit_indices_and_summary_only_tiles(tmp_path):
    path = tmp_path / "run.h5"
    idx = np.array([[0, 0], [11, 9], [4, 2]])
    with HistoryWriter(path, {"A": SHAPE, "B": SHAPE}, record={"A": idx}) as h:
        for e in range(3):
            h.record(e, "A", conductances(e))
            h.record(e, "B", conductances(e))
    with History(path) as r:
        np.testing.assert_array_equal(r.recorded("A"), idx)
        np.testing.assert_array_equal(r.trace("A", 11, 9),
                                      np.float32([conductances(e)[11, 9] for e in range(3)]))
        assert r.n_recorded("B") == 0 and r.n_events("B") == 3
        with pytest.raises(ParameterError, match="not recorded"):
            r.trace("B", 0, 0)
        # histogram range from the first event, widened
        counts, edges = r.histograms("B")
        g0 = conductances(0)
        assert edges[0] <= g0.min() and edges[-1] >= g0.max() and counts[0].sum() == 120


def test_bad_arguments_raise_clear_errors(tmp_path):
    p = tmp_path / "x.h5"
    with pytest.raises(ParameterError, match="rng="):
        HistoryWriter(p, {"W": SHAPE}, record=5)
    with pytest.raises(ParameterError, match="outside the tile"):
        HistoryWriter(p, {"W": SHAPE}, record={"W": [[12, 0]]})
    with pytest.raises(ParameterError, match="more than once"):
        HistoryWriter(p, {"W": SHAPE}, record={"W": [[1, 1], [1, 1]]})
    with pytest.raises(ParameterError, match="do not exist"):
        HistoryWriter(p, {"W": SHAPE}, record={"V": "all"})
    with pytest.raises(ParameterError, match="float16"):
        HistoryWriter(p, {"W": SHAPE}, dtype="float16")
    with pytest.raises(ParameterError, match="lo < hi"):
        HistoryWriter(p, {"W": SHAPE}, hist_range=(1.0, 0.0))
    with HistoryWriter(p, {"W": SHAPE}) as h:
        with pytest.raises(ParameterError, match="unknown tile"):
            h.record(0, "V", conductances(0))
        with pytest.raises(ParameterError, match="shape"):
            h.record(0, "W", np.zeros((3, 3)))
        h.record(5, "W", conductances(5))
        with pytest.raises(ParameterError, match="not after its last event 5"):
            h.record(5, "W", conductances(5))
        with pytest.raises(ParameterError, match="negative"):
            h.record(6, "W", conductances(6), pulses=-np.ones(SHAPE, dtype=int))
        with pytest.raises(ParameterError, match="integer counts"):
            h.record(6, "W", conductances(6), pulses=np.ones(SHAPE))
        with pytest.raises(ParameterError, match="JSON"):
            h.checkpoint({"a": np.zeros(2)}, {"bad": object()})
        with pytest.raises(ParameterError, match="dtype"):
            h.checkpoint({"a": np.array([object()])})
        h.metrics(3, loss=1.0)
        with pytest.raises(ParameterError, match="before the previous step"):
            h.metrics(2, loss=1.0)
    with pytest.raises(HistoryError, match="closed"):
        h.record(7, "W", conductances(7))


def test_metrics_new_names_mid_run_are_aligned_with_nan(tmp_path, background):
    path = tmp_path / "run.h5"
    with HistoryWriter(path, {"W": SHAPE}, background=background) as h:
        h.metrics(0, loss=2.0)
        h.flush()
        h.metrics(1, loss=1.5, acc=0.25)      # a new name after the first flush
        h.metrics(1, test_acc=0.2)
        h.metrics(2, loss=1.0)
    with History(path) as r:
        m = r.metrics()
    np.testing.assert_array_equal(m["step"], [0, 1, 1, 2])
    np.testing.assert_array_equal(m["loss"], [2.0, 1.5, np.nan, 1.0])
    np.testing.assert_array_equal(m["acc"], [np.nan, 0.25, np.nan, np.nan])
    np.testing.assert_array_equal(m["test_acc"], [np.nan, np.nan, 0.2, np.nan])


def test_checkpoints_alternate_and_the_last_one_is_read(tmp_path, background):
    path = tmp_path / "run.h5"
    with HistoryWriter(path, {"W": SHAPE}, background=background) as h:
        assert read_checkpoint(path) is None
        for k in range(4):
            h.record(k, "W", conductances(k))
            h.checkpoint({"g": conductances(k), "epoch": np.int64(k)}, {"k": k, "rng": [1, 2]})
        h.checkpoint({"g": conductances(9)[:2], "extra": np.arange(3.0)}, {"k": 9})   # new layout
        with h5py.File(path, "r", swmr=True) as f:
            assert sorted(f["checkpoint"]) == ["current", "slot0", "slot1"]
    state, meta = read_checkpoint(path)
    assert meta == {"k": 9} and sorted(state) == ["extra", "g"]
    np.testing.assert_array_equal(state["g"], conductances(9)[:2])
    with History(path) as r:
        assert r.checkpoint()[1] == {"k": 9}


def test_scalar_checkpoint_entries_stay_scalar(tmp_path):
    with HistoryWriter(tmp_path / "s.h5", {"W": SHAPE}) as h:
        h.checkpoint({"epoch": np.int64(3), "lr": 0.5})
    state, _ = read_checkpoint(tmp_path / "s.h5")
    assert state["epoch"].shape == () and state["epoch"] == 3 and state["lr"] == 0.5


def test_reader_sees_flushed_rows_while_the_writer_runs(tmp_path):
    path = tmp_path / "live.h5"
    h = HistoryWriter(path, {"W": SHAPE}, chunk_events=64, flush_every=3600)
    try:
        for e in range(5):
            h.record(e, "W", conductances(e))
        h.flush()
        with History(path) as r:
            assert r.n_events("W") == 5
            for e in range(5, 9):
                h.record(e, "W", conductances(e), pulses=np.ones(SHAPE, dtype=bool))
            assert r.n_events("W") == 5                  # not flushed yet
            h.flush()
            assert r.n_events("W") == 9                  # the same open reader sees more
            np.testing.assert_array_equal(r.trace("W", 1, 1)[-1], np.float32(conductances(8)[1, 1]))
            assert r.pulse_map("W").max() == 4
    finally:
        h.close()


def test_new_metrics_and_checkpoints_while_a_reader_is_open_in_this_process(tmp_path):
    path = tmp_path / "live.h5"
    with HistoryWriter(path, {"W": SHAPE}) as h:
        h.record(0, "W", conductances(0))
        h.flush()
        with History(path) as r:
            h.metrics(0, loss=1.0)
            h.checkpoint({"g": conductances(0)}, {"e": 0})     # both add HDF5 objects
            h.record(1, "W", conductances(1))
            h.flush()
            assert r.n_events("W") == 2
    with History(path) as r:
        assert r.metrics()["loss"].tolist() == [1.0] and r.checkpoint()[1] == {"e": 0}


def test_background_flush_when_the_loop_goes_quiet(tmp_path):
    path = tmp_path / "quiet.h5"
    with HistoryWriter(path, {"W": SHAPE}, chunk_events=64, flush_every=0.2) as h:
        for e in range(3):
            h.record(e, "W", conductances(e))
        deadline = time.monotonic() + 5
        n = 0
        while time.monotonic() < deadline and n < 3:
            time.sleep(0.1)
            with History(path) as r:
                n = r.n_events("W")
        assert n == 3


def test_flush_every_events(tmp_path):
    path = tmp_path / "ev.h5"
    with HistoryWriter(path, {"W": SHAPE}, background=False, flush_every=3600,
                       flush_every_events=4, chunk_events=64) as h:
        for e in range(4):
            h.record(e, "W", conductances(e))
        with History(path) as r:
            assert r.n_events("W") == 4


def test_background_failure_is_raised_in_the_callers_thread(tmp_path, monkeypatch):
    def boom(*args):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(HistoryWriter, "_write_batch", boom)
    h = HistoryWriter(tmp_path / "f.h5", {"W": SHAPE}, chunk_events=2)
    with pytest.raises(HistoryError, match="disk full") as info:
        for e in range(1000):
            h.record(e, "W", conductances(e))
            time.sleep(0.001)
    assert isinstance(info.value.__cause__, OSError)
    h.close()                                  # already reported: closes quietly


def test_keyboard_interrupt_in_the_with_block_leaves_a_closed_file(tmp_path, background):
    path = tmp_path / "ki.h5"
    with pytest.raises(KeyboardInterrupt):
        with HistoryWriter(path, {"W": SHAPE}, background=background, chunk_events=8) as h:
            for e in range(100):
                h.record(e, "W", conductances(e))
                if e == 12:
                    raise KeyboardInterrupt
    assert status_flags(path) == 0
    with h5py.File(path, "r") as f:
        assert f["tiles/W/event"][-1] == 12
    with History(path) as r:
        assert r.n_events("W") == 13


def test_a_live_file_is_not_clobbered_by_a_second_writer(tmp_path):
    path = tmp_path / "live.h5"
    h = HistoryWriter(path, {"W": SHAPE})
    try:
        for mode in ("w", "a"):
            with pytest.raises(HistoryError, match="live HistoryWriter"):
                HistoryWriter(path, {"W": SHAPE}, mode=mode)
        with pytest.raises(HistoryError, match="already exists"):
            HistoryWriter(path, {"W": SHAPE}, mode="x")
    finally:
        h.close()
    HistoryWriter(path, {"W": SHAPE}, mode="a").close()
