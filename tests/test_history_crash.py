"""Crash safety: a writer killed with SIGKILL or interrupted with SIGINT, in a subprocess.

The child writes a deterministic history (g is a function of the event number),
flushing now and then and printing the last flushed event; the parent kills it at
some point while it keeps writing, then checks that the file opens, holds at least
everything flushed, holds only whole correct rows, and can be resumed.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from circuits.history import History, HistoryWriter, read_checkpoint
from circuits.history._fileutil import status_flags

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (30, 40)

# The child restores Python's own SIGINT handling first: a child inherits an ignored or
# blocked SIGINT from the process that spawns it, and in the full suite (not alone) the
# SIGINT test's child kept running after the signal (CI, session 10).
CHILD = textwrap.dedent("""
    import signal
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import sys
    import numpy as np
    from circuits.history import HistoryWriter
    path, background = sys.argv[1], sys.argv[2] == "1"
    shape = (30, 40)
    base = 1e-5 + 1e-12 * np.arange(1200).reshape(shape)
    with HistoryWriter(path, {"T": shape}, flush_every=3600, chunk_events=8, background=background,
                       hist_range=(0.0, 1e-4)) as h:
        e = 0
        while True:
            h.record(e, "T", base + 1e-9 * e, pulses=np.ones(shape, dtype=np.int8))
            if e % 10 == 0:
                h.metrics(e, loss=1.0 / (e + 1))
            if e % 37 == 0:
                h.flush()
                print(e, flush=True)
            e += 1
""")


def _spawn(code, *args):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_until(proc, min_value):
    last = None
    while last is None or last < min_value:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child ended early: {proc.stderr.read()[-2000:]}")
        last = int(line)
    return last


def _expected(e):
    base = 1e-5 + 1e-12 * np.arange(1200).reshape(SHAPE)
    return (base + 1e-9 * e).astype(np.float32)


@pytest.mark.parametrize("background, delay", [(True, 0.0), (True, 0.013), (False, 0.007)])
def test_sigkill_leaves_a_readable_file_with_everything_flushed(tmp_path, background, delay):
    path = tmp_path / "killed.h5"
    with _spawn(CHILD, path, int(background)) as proc:
        try:
            flushed = _read_until(proc, 150)
            time.sleep(delay)                      # the child is busy writing unflushed rows
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert status_flags(path) != 0                     # killed: still marked open
    with History(path) as r:                           # SWMR readers open it as it is
        n = r.n_events("T")
        assert n >= flushed + 1
        ev = r.events("T")
        np.testing.assert_array_equal(ev, np.arange(n))   # whole rows, in order
        for i, j in [(0, 0), (17, 23), (29, 39)]:
            np.testing.assert_array_equal(r.trace("T", i, j), [_expected(e)[i, j] for e in range(n)])
        s = r.summary("T")
        np.testing.assert_allclose(s["mean"], [_expected(e).astype(float).mean() for e in range(n)],
                                   rtol=1e-12)
        pm = r.pulse_map("T")
        assert pm.min() == pm.max() >= flushed + 1        # counts as of a flush, never torn
        m = r.metrics()
        assert len(m["step"]) >= flushed // 10 + 1
    # resuming clears the "open for write" mark and carries on after the last event
    with HistoryWriter(path, {"T": SHAPE}, mode="a") as h:
        start = h._tiles["T"].last_event + 1
        for e in range(start, start + 5):
            h.record(e, "T", _expected(e).astype(float))
    assert status_flags(path) == 0
    with h5py.File(path, "r") as f:                   # now any HDF5 reader opens it
        np.testing.assert_array_equal(f["tiles/T/event"][()], np.arange(start + 5))


def test_kills_inside_a_flush_never_leave_counts_ahead_of_the_rows(tmp_path):
    """A kill in the middle of a flush must not leave the pulse counts (and the event they
    count through) on disk ahead of the rows: a resumed writer would then skip rows.

    The window is a few milliseconds wide, so kill at staggered moments. Before the
    writer flushed the rows first, about 1 kill in 15 landed in it (4 of 60 measured)."""
    for k in range(10):
        path = tmp_path / f"k{k}.h5"
        with _spawn(CHILD, path, k % 2) as proc:
            try:
                _read_until(proc, 150)
                time.sleep(0.0013 * k)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
        with HistoryWriter(path, {"T": SHAPE}, mode="a") as h:
            resumed_after = h._tiles["T"].last_event
        with History(path) as r:
            assert resumed_after == r.events("T")[-1], f"kill {k}"


CKPT_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from circuits.history import HistoryWriter
    with HistoryWriter(sys.argv[1], {"T": (4, 4)}) as h:
        seq = 0
        while True:
            h.checkpoint({"a": np.full(20000, seq, dtype=np.int64), "b": np.full((50, 50), float(seq))},
                         {"seq": seq})
            print(seq, flush=True)
            seq += 1
""")


@pytest.mark.parametrize("delay", [0.0, 0.004])
def test_sigkill_during_checkpoints_leaves_one_whole_checkpoint(tmp_path, delay):
    path = tmp_path / "ckpt.h5"
    with _spawn(CKPT_CHILD, path) as proc:
        try:
            done = _read_until(proc, 5)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    state, meta = read_checkpoint(path)
    seq = meta["seq"]
    assert seq >= done
    assert (state["a"] == seq).all() and (state["b"] == seq).all()


def test_sigint_closes_the_file_cleanly(tmp_path):
    path = tmp_path / "interrupted.h5"
    with _spawn(CHILD, path, 1) as proc:
        try:
            flushed = _read_until(proc, 80)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "KeyboardInterrupt" in err
    assert status_flags(path) == 0                     # the with block closed it
    with h5py.File(path, "r") as f:                    # readable by any HDF5 reader
        n = f["tiles/T/event"].shape[0]
        assert n > flushed
        np.testing.assert_array_equal(f["tiles/T/event"][()], np.arange(n))
        # buffered rows and counts were written (the interrupt may fall between counting
        # an event's pulses and appending its row)
        assert n <= f["tiles/T/pulses"][0, 0] <= n + 1


EXIT_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from circuits.history import HistoryWriter
    h = HistoryWriter(sys.argv[1], {"T": (4, 4)}, chunk_events=64, flush_every=3600)
    for e in range(10):
        h.record(e, "T", np.full((4, 4), 1e-5), pulses=np.ones((4, 4), dtype=np.int8))
    # never closed: the interpreter's exit must not lose the buffered rows
""")


def test_a_writer_left_open_is_closed_at_interpreter_exit(tmp_path):
    path = tmp_path / "exit.h5"
    res = subprocess.run([sys.executable, "-c", EXIT_CHILD, str(path)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert status_flags(path) == 0
    with History(path) as r:
        assert r.n_events("T") == 10 and (r.pulse_map("T") == 10).all()
