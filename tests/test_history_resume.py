"""Resuming a history (mode='a'), with and without rewinding to the last checkpoint."""
import numpy as np
import pytest

from circuits.history import History, HistoryError, HistoryWriter, read_checkpoint
from crossbar.errors import ParameterError

SHAPE = (6, 8)


def g_at(e):
    return 1e-5 + 1e-8 * e + 1e-9 * np.arange(48).reshape(SHAPE)


def _write(path, events, **kw):
    with HistoryWriter(path, {"W": SHAPE, "V": (2, 2)}, **kw) as h:
        for e in events:
            h.record(e, "W", g_at(e), pulses=np.ones(SHAPE, dtype=np.int8), energy=1.0)
        h.metrics(events[-1], loss=float(events[-1]))


def test_append_continues_after_the_last_event(tmp_path):
    path = tmp_path / "run.h5"
    idx = np.array([[1, 2], [5, 7]])
    _write(path, range(10), record={"W": idx})
    with HistoryWriter(path, {"W": SHAPE, "V": (2, 2)}, record={"W": idx}, mode="a",
                       provenance={"resumed_by": "test"}) as h:
        with pytest.raises(ParameterError, match="not after its last event 9"):
            h.record(9, "W", g_at(9))
        for e in range(10, 15):
            h.record(e, "W", g_at(e), pulses=np.ones(SHAPE, dtype=np.int8), energy=1.0)
    with History(path) as r:
        np.testing.assert_array_equal(r.events("W"), np.arange(15))
        np.testing.assert_array_equal(r.trace("W", 5, 7), np.float32([g_at(e)[5, 7] for e in range(15)]))
        assert (r.pulse_map("W") == 15).all()
        assert r.summary("W")["energy"][-1] == 15.0
        assert r.resumes[0]["provenance"] == {"resumed_by": "test"}


@pytest.mark.parametrize("change, match", [
    (dict(tiles={"W": SHAPE}), "holds tiles"),
    (dict(tiles={"W": (6, 9), "V": (2, 2)}), "not \\(6, 9\\)"),
    (dict(record={"W": np.array([[1, 2]])}), "different devices"),
    (dict(record="all"), "not 'all'"),
    (dict(record=3, rng=np.random.default_rng(0)), "record=3"),
    (dict(dtype="float64"), "dtype"),
    (dict(stride=2), "stride"),
])
def test_resume_refuses_a_file_that_does_not_match(tmp_path, change, match):
    path = tmp_path / "run.h5"
    idx = np.array([[1, 2], [5, 7]])
    _write(path, range(3), record={"W": idx})
    kw = dict(tiles={"W": SHAPE, "V": (2, 2)}, record={"W": idx})
    kw.update(change)
    tiles = kw.pop("tiles")
    with pytest.raises(ParameterError, match=match):
        HistoryWriter(path, tiles, mode="a", **kw)
    HistoryWriter(path, {"W": SHAPE, "V": (2, 2)}, record={"W": idx}, mode="a").close()  # still fine


def test_rewind_rolls_back_to_the_last_checkpoint(tmp_path):
    path = tmp_path / "run.h5"
    tiles = {"W": SHAPE}
    with HistoryWriter(path, tiles, stride=2) as h:
        for e in range(10):
            h.record(e, "W", g_at(e), pulses=np.ones(SHAPE, dtype=np.int8), energy=1.0)
            h.metrics(e, loss=float(e))
        h.checkpoint({"g": g_at(9)}, {"event": 9})
        for e in range(10, 17):                     # work lost with the "crash"
            h.record(e, "W", g_at(e), pulses=np.ones(SHAPE, dtype=np.int8), energy=1.0)
            h.metrics(e, loss=float(e))
    state, meta = read_checkpoint(path)
    assert meta == {"event": 9}
    with HistoryWriter(path, tiles, mode="a", rewind=True) as h:
        for e in range(meta["event"] + 1, 12):      # replay from the checkpoint
            h.record(e, "W", g_at(e), pulses=np.ones(SHAPE, dtype=np.int8), energy=1.0)
            h.metrics(e, loss=-1.0)
    with History(path) as r:
        np.testing.assert_array_equal(r.events("W"), [0, 2, 4, 6, 8, 10])
        assert (r.pulse_map("W") == 12).all()
        assert r.summary("W")["energy"][-1] == 11.0     # energy of events 0..10
        m = r.metrics()
        np.testing.assert_array_equal(m["step"], np.arange(12))
        np.testing.assert_array_equal(m["loss"][10:], [-1.0, -1.0])


def test_rewind_without_a_checkpoint_is_an_error(tmp_path):
    path = tmp_path / "run.h5"
    _write(path, range(3))
    with pytest.raises(HistoryError, match="no checkpoint"):
        HistoryWriter(path, {"W": SHAPE, "V": (2, 2)}, mode="a", rewind=True)


def test_resume_of_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(HistoryError, match="does not exist"):
        HistoryWriter(tmp_path / "none.h5", {"W": SHAPE}, mode="a")
    import h5py
    with h5py.File(tmp_path / "other.h5", "w", libver="latest") as f:
        f["x"] = 1
    with pytest.raises(HistoryError, match="not a memx-history"):
        HistoryWriter(tmp_path / "other.h5", {"W": SHAPE}, mode="a")
