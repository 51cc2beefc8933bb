"""Writing a run's history: :class:`HistoryWriter`, :func:`provenance`, :func:`recover`.

See the package docstring (:mod:`circuits.history`) for the file layout and the
crash-safety argument. This module holds the moving parts:

* the caller's thread only copies ``g`` into a staging buffer (one full-tile row per
  recorded event, in the stored dtype) and adds the pulse/disturb counts;
* one background thread (``background=True``) computes the summaries and histograms
  (a numba kernel that releases the GIL), gathers the recorded devices and appends
  whole chunks of rows with h5py, which also releases the GIL while HDF5 writes
  (``H5Dwrite`` is declared ``nogil`` in h5py's ``api_functions.txt``);
* every file operation after the file is created runs on that thread, in order, so
  the file is never touched from two threads;
* an error on the background thread is raised, chained, by the next call on the
  writer (``record``, ``metrics``, ``flush``, ``checkpoint`` or ``close``).
"""
from __future__ import annotations

import atexit
import datetime as _dt
import json
import math
import operator
import os
import platform
import queue
import subprocess
import sys
import threading
import time as _time
import weakref
from pathlib import Path

import h5py
import numpy as np

from crossbar.errors import CrossbarError, ParameterError

from ._fileutil import WriterLock, clear_status_flags, status_flags
from ._summary import SUMMARY_DTYPE, summarize_rows

FORMAT = "memx-history"
FORMAT_VERSION = 1
UNITS = {"g": "S", "hist_edges": "S", "summary": "S (counts for below/above/nonfinite)",
         "time": "s", "energy": "J", "pulses": "count", "disturbed": "count"}

_STAGING_TARGET = 4 << 20      # bytes of one staging buffer we aim for (chunk_events)
_CHUNK_TARGET = 256 << 10      # bytes of one stored chunk of g
_SMALL_CHUNK = 1024            # rows per chunk of the 1-D per-event datasets


class HistoryError(CrossbarError, RuntimeError):
    """The history file cannot be written or read as asked (locked by a live writer,
    damaged, a background write failed, no checkpoint to rewind to...)."""


_OPEN_WRITERS: "weakref.WeakSet[HistoryWriter]" = weakref.WeakSet()


@atexit.register
def _close_open_writers():
    """Interpreter exit with a writer never closed: write its buffers and close it,
    rather than let its background thread die mid-write."""
    for w in list(_OPEN_WRITERS):
        try:
            w.close()
        except Exception as exc:          # noqa: BLE001 - nothing to raise to at exit
            print(f"memx: closing the history {w.path} at exit failed: {exc}", file=sys.stderr)


# ----------------------------------------------------------------------------- provenance

def _git_commit(where: Path) -> tuple[str, bool | None]:
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return "unknown", None
        commit = out.stdout.strip()
        st = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=10)
        dirty = bool(st.stdout.strip()) if st.returncode == 0 else None
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def provenance(netlist_text: str | None = None, seed=None, **extra) -> dict:
    """What produced a run, as a JSON-able dict for the history's root attributes.

    Parameters
    ----------
    netlist_text : str, optional
        The netlist the chip was built from, verbatim.
    seed : int or JSON-able, optional
        The seed of the run's single ``numpy.random.Generator``.
    **extra
        Anything else JSON-able (command line, configuration...).

    Returns
    -------
    dict
        ``package``, ``version`` (from ``importlib.metadata``, else ``'unknown'``),
        ``git_commit`` (``git rev-parse HEAD`` of the source tree, else
        ``'unknown'``), ``git_dirty`` (tracked files modified; None if unknown),
        ``python``, ``numpy``, ``h5py``, ``hdf5``, ``platform``, ``netlist``,
        ``seed`` and the ``extra`` keys.
    """
    from importlib import metadata
    try:
        version = metadata.version("memx")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit, dirty = _git_commit(Path(__file__).resolve().parent)
    info = {"package": "memx", "version": version, "git_commit": commit, "git_dirty": dirty,
            "python": sys.version.split()[0], "numpy": np.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "platform": platform.platform(),
            "netlist": netlist_text, "seed": seed}
    info.update(extra)
    return info


# ----------------------------------------------------------------------------- small helpers

def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _json(obj, what: str) -> str:
    try:
        return json.dumps(obj, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{what} must be JSON-serialisable: {exc}") from exc


def _as_int(value, what: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ParameterError(f"{what} must be an integer, got {value!r}") from None


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


def _open_swmr_reader(path):
    return h5py.File(path, "r", libver="latest", swmr=True)


def last_event(path) -> int | None:
    """The last event number the file's writer had flushed (None if it has none).

    This counts every ``record`` call, recorded as a row or not (``stride``).
    """
    with _open_swmr_reader(path) as f:
        e = int(f["last_event"][()])
    return None if e < 0 else e


def recover(path) -> bool:
    """Make a file whose writer was killed openable by any HDF5 reader and writer.

    Clears the superblock's "open for write" flags (what ``h5clear -s`` does) after
    checking that no live :class:`HistoryWriter` holds the file. Returns whether the
    flags were set. ``HistoryWriter(path, ..., mode='a')`` calls this itself; readers
    (:class:`~circuits.history.History`) need not, they open files as SWMR readers.

    Raises
    ------
    HistoryError
        If a live writer holds the file.
    """
    path = os.fspath(path)
    lock = WriterLock(path)
    if not lock.acquire():
        raise HistoryError(f"{path}: a live HistoryWriter holds this file; not touching it")
    try:
        return clear_status_flags(path)
    finally:
        lock.release()


# ----------------------------------------------------------------------------- background worker

class _Worker:
    """Runs the file jobs in submission order, on one thread or inline."""

    def __init__(self, background: bool, idle_s: float | None, on_idle):
        self.background = background
        self.error: BaseException | None = None
        self.reported = False
        self._q: queue.Queue = queue.Queue()
        self._idle_s = idle_s
        self._on_idle = on_idle
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._run, name="memx-history-writer", daemon=True)
            self._thread.start()

    def _run(self):
        while True:
            try:
                item = self._q.get(timeout=self._idle_s)
            except queue.Empty:
                if self.error is None and self._on_idle is not None:
                    try:
                        self._on_idle()
                    except BaseException as exc:   # noqa: BLE001 - handed to the caller's thread
                        self.error = exc
                continue
            try:
                if item is None:
                    return
                fn, args = item
                if self.error is None:
                    fn(*args)
            except BaseException as exc:           # noqa: BLE001 - handed to the caller's thread
                self.error = exc
            finally:
                self._q.task_done()

    def check(self):
        if self.error is not None:
            self.reported = True
            raise HistoryError(f"writing the history failed on the background thread: "
                               f"{type(self.error).__name__}: {self.error}") from self.error

    def submit(self, fn, *args):
        self.check()
        if self._thread is None:
            try:
                fn(*args)
            except BaseException as exc:
                self.error = exc
                self.reported = True
                raise
        else:
            self._q.put((fn, args))

    def wait(self):
        if self._thread is not None:
            self._q.join()
        self.check()

    def stop(self):
        if self._thread is not None and self._thread.is_alive():
            self._q.put(None)
            self._thread.join()


# ----------------------------------------------------------------------------- per-tile state

class _Batch:
    """A staging buffer: full-tile rows for up to ``rows`` recorded events."""

    def __init__(self, rows: int, n: int, dtype):
        self.g = np.empty((rows, n), dtype=dtype)
        self.event = np.empty(rows, dtype=np.int64)
        self.time = np.empty(rows, dtype=np.float64)
        self.energy = np.empty(rows, dtype=np.float64)
        self.n = 0
        self.cap = rows


class _Tile:
    """Everything the writer keeps about one tile (main-thread side)."""

    def __init__(self, name, shape, index, all_devices, chunk_events, dtype, hist_range, bins):
        self.name = name
        self.shape = shape
        self.index = index                  # (n_rec, 2) int64
        self.all = all_devices
        self.flat = None if all_devices else index[:, 0] * shape[1] + index[:, 1]
        self.n_rec = index.shape[0]
        self.T = chunk_events
        self.dtype = np.dtype(dtype)
        self.hist_range = hist_range        # (lo, hi) or None until the first recorded event
        self.bins = bins
        self.pool: queue.Queue = queue.Queue()
        self.cur: _Batch | None = None
        self.rows = 0                       # rows handed to the worker
        # cumulative counts: int64 totals plus int32 partial sums since the last fold
        # (adding an int8/bool map into int32 costs half of adding it into int64)
        self.pulses = np.zeros(shape, dtype=np.int64)
        self.disturbed = np.zeros(shape, dtype=np.int64)
        self.part = {"pulses": np.zeros(shape, dtype=np.int32),
                     "disturbed": np.zeros(shape, dtype=np.int32)}
        self.part_bound = {"pulses": 0, "disturbed": 0}
        self.counts_dirty = False
        self.energy = 0.0
        self.last_event = -1

    def add_counts(self, what: str, a: np.ndarray, bound: int):
        """Add one event's map; ``bound`` is an upper bound of its entries."""
        if self.part_bound[what] + bound > np.iinfo(np.int32).max:
            self.fold()
        np.add(self.part[what], a, out=self.part[what], casting="unsafe")
        self.part_bound[what] += bound
        self.counts_dirty = True

    def fold(self):
        """Move the partial sums into the int64 totals."""
        for what, total in (("pulses", self.pulses), ("disturbed", self.disturbed)):
            if self.part_bound[what]:
                total += self.part[what]
                self.part[what][...] = 0
                self.part_bound[what] = 0

    def make_pool(self, n_buffers: int):
        n = self.shape[0] * self.shape[1]
        for _ in range(n_buffers):
            self.pool.put(_Batch(self.T, n, self.dtype))


def _normalise_index(idx, shape, tile) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.shape[1] != 2 or idx.dtype.kind not in "iu":
        raise ParameterError(f"record[{tile!r}] must be an integer array of (i, j) pairs, shape (k, 2); "
                             f"got dtype {idx.dtype} shape {idx.shape}")
    idx = idx.astype(np.int64)
    M, N = shape
    bad = (idx[:, 0] < 0) | (idx[:, 0] >= M) | (idx[:, 1] < 0) | (idx[:, 1] >= N)
    if bad.any():
        i, j = idx[np.argmax(bad)]
        raise ParameterError(f"record[{tile!r}]: device ({i}, {j}) is outside the tile's shape {shape}")
    flat = idx[:, 0] * N + idx[:, 1]
    if np.unique(flat).size != flat.size:
        raise ParameterError(f"record[{tile!r}] lists a device more than once")
    return idx


def _all_index(shape) -> np.ndarray:
    M, N = shape
    ii, jj = np.divmod(np.arange(M * N, dtype=np.int64), N)
    return np.stack([ii, jj], axis=1)


# ----------------------------------------------------------------------------- the writer

class HistoryWriter:
    """Append per-device conductance histories of a chip's tiles to an HDF5 file.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file.
    tiles : dict[str, (int, int)]
        Tile name -> physical shape ``(M, N)`` of its conductance array (a
        differential tile of N weights has 2N physical columns).
    record : "all", int or dict, default "all"
        Which devices get a full conductance trace (summaries, histograms and
        pulse counts always cover every device):

        * ``"all"``: every device of every tile;
        * ``k`` (int): a random subset of ``k`` devices per tile, drawn from ``rng``
          (``0``: summaries only);
        * a dict ``{tile: spec}`` where ``spec`` is ``"all"``, an int or an integer
          array of ``(i, j)`` pairs, shape ``(k, 2)``; tiles left out record none.
    stride : int, default 1
        A row is written for events with ``event % stride == 0``; pulse and
        disturb counts and energy still accumulate at every event.
    rng : numpy.random.Generator, optional
        Required when ``record`` asks for random subsets.
    provenance : dict, optional
        JSON-able; see :func:`provenance`. Stored as the root attribute
        ``provenance`` (mode ``'w'``) or appended to ``resumes`` (mode ``'a'``).
    flush_every : float, default 5.0
        Seconds; the file is flushed at least this often while events arrive (and,
        with ``background=True``, also when they stop), and on ``close``.
    flush_every_events : int, optional
        Also flush after this many new events.
    dtype : "float32" or "float64", default "float32"
        Stored dtype of the conductances. float32 keeps 7 significant digits, far
        finer than any device's programming step or read noise, and halves the
        bytes written and read. Summaries are computed from the stored values.
    compression : "lzf", "gzip" or None, default "lzf"
        Filter of the appendable datasets (with the shuffle filter for lzf). lzf is
        the fastest of HDF5's built-in filters, but on noisy float32 conductances it
        saves only ~10-20 % at ~100 MB/s: use None when recording every device at
        every event (see ``scripts/bench_history.py``); unfiltered full chunks are
        written with ``H5Dwrite_chunk``, twice as fast as a regular write.
    hist_range : (lo, hi) or dict[str, (lo, hi)], optional
        Histogram range in S, best the device's ``(g_min, g_max)``. Default: the
        first recorded event's [min, max], widened by half its span on each side.
        Values outside are counted in the summary's ``below``/``above``.
    hist_bins : int, default 64
    chunk_events : int, optional
        Rows per stored chunk and per staging buffer (default: about 4 MiB of
        full-tile rows, at least 16 and at most 1024). Two staging buffers of
        ``chunk_events x M x N`` values are kept per tile.
    background : bool, default True
        Summaries and file writes on a background thread: the caller pays the copy
        of ``g`` and the addition of the pulse/disturb maps, and waits only when both
        staging buffers are still being written (back-pressure). ``False`` does
        everything in the caller's thread.
    mode : "w", "x" or "a", default "w"
        ``'w'`` create (truncate), ``'x'`` create (fail if it exists), ``'a'``
        resume an existing history: its tiles, shapes and recorded devices must
        match (a ``record=<int>`` subset is taken from the file, not redrawn),
        storage options left at their defaults are taken from the file, and events
        continue after the last one flushed. After a crash, the pulse maps are those
        of the last flush, which may predate the last rows: resume from a
        checkpoint with ``rewind=True`` for exact counts.
    rewind : bool, default False
        With ``mode='a'``: first roll the history back to its last checkpoint (drop
        later rows and metrics, restore the pulse counts), for a run resumed from
        that checkpoint.

    Raises
    ------
    ParameterError
        Bad arguments, or (mode ``'a'``) a file that does not match them.
    HistoryError
        The file is held by a live writer, or is not a history.

    Examples
    --------
    >>> with HistoryWriter("run.h5", {"W1": (784, 200)}, provenance=provenance(seed=1)) as h:
    ...     for event in range(n):
    ...         report = chip.pulse(...)
    ...         h.record(event, "W1", tile.g, pulses=report.pulses, time=t)
    ...     h.metrics(step, loss=loss)
    """

    def __init__(self, path, tiles: dict, *, record="all", stride: int | None = None, rng=None,
                 provenance: dict | None = None, flush_every: float = 5.0,
                 flush_every_events: int | None = None, dtype: str | None = None,
                 compression="default", hist_range=None, hist_bins: int | None = None,
                 chunk_events: int | None = None, background: bool = True, mode: str = "w",
                 rewind: bool = False):
        self.path = os.fspath(path)
        self._closed = True
        self._f = None
        self._worker = None
        if mode not in ("w", "x", "a"):
            raise ParameterError(f"mode must be 'w', 'x' or 'a', got {mode!r}")
        if rewind and mode != "a":
            raise ParameterError("rewind=True only makes sense with mode='a'")
        if not isinstance(tiles, dict) or not tiles:
            raise ParameterError("tiles must be a non-empty dict {name: (M, N)}")
        self._shapes = {}
        for name, shape in tiles.items():
            if not isinstance(name, str) or not name or "/" in name:
                raise ParameterError(f"tile names must be non-empty strings without '/': {name!r}")
            try:
                M, N = (int(s) for s in shape)
            except (TypeError, ValueError):
                raise ParameterError(f"tiles[{name!r}] must be a shape (M, N), got {shape!r}") from None
            if M <= 0 or N <= 0:
                raise ParameterError(f"tiles[{name!r}] has an empty shape {shape!r}")
            self._shapes[name] = (M, N)
        if not (flush_every > 0):
            raise ParameterError(f"flush_every must be > 0 s, got {flush_every!r}")
        self.flush_every = float(flush_every)
        self.flush_every_events = None if flush_every_events is None else _as_int(flush_every_events,
                                                                                   "flush_every_events")
        self._lock = threading.Lock()
        self._write_lock = WriterLock(self.path) if mode == "a" else None
        self._metric_rows: list[tuple[int, dict]] = []
        self._metric_names: list[str] = []
        self._metric_count = 0            # metric rows on file (worker side)
        self._metric_scheduled = 0        # metric rows handed to the worker (caller side)
        self._last_step = None
        self._events_since_flush = 0
        self._last_event = -1
        self._ds = {}

        if mode == "a":
            self._open_existing(record, stride, rng, dtype, compression, hist_range, hist_bins,
                                chunk_events, provenance, rewind)
        else:
            self._create(mode, record, stride, rng, dtype, compression, hist_range, hist_bins,
                         chunk_events, provenance)
        for t in self._tiles.values():
            t.make_pool(2)
        self._closed = False
        self._last_flush = _time.monotonic()
        self._worker = _Worker(background, self.flush_every if background else None, self._on_idle)
        _OPEN_WRITERS.add(self)

    # ------------------------------------------------------------------ creation and resume

    def _resolve_record(self, record, rng):
        specs = {}
        if isinstance(record, dict):
            unknown = set(record) - set(self._shapes)
            if unknown:
                raise ParameterError(f"record names tiles that do not exist: {sorted(unknown)}; "
                                     f"tiles are {sorted(self._shapes)}")
            for name in self._shapes:
                specs[name] = record.get(name, 0)
        else:
            specs = {name: record for name in self._shapes}
        out = {}
        for name, spec in specs.items():
            shape = self._shapes[name]
            n = shape[0] * shape[1]
            if isinstance(spec, str):
                if spec != "all":
                    raise ParameterError(f"record for tile {name!r} must be 'all', an int or (k, 2) "
                                         f"indices, got {spec!r}")
                out[name] = (_all_index(shape), True)
            elif isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
                k = int(spec)
                if k < 0 or k > n:
                    raise ParameterError(f"record={k} devices for tile {name!r}, which has {n}")
                if k == n:
                    out[name] = (_all_index(shape), True)
                elif k == 0:
                    out[name] = (np.zeros((0, 2), dtype=np.int64), False)
                else:
                    if rng is None:
                        raise ParameterError("record=<int> draws a random subset of devices: pass "
                                             "rng=<numpy.random.Generator> (all randomness comes from "
                                             "the run's one seeded generator)")
                    flat = np.sort(rng.choice(n, size=k, replace=False))
                    out[name] = (np.stack(np.divmod(flat, shape[1]), axis=1).astype(np.int64), False)
            else:
                out[name] = (_normalise_index(spec, shape, name), False)
        return out

    @staticmethod
    def _chunk_events(n_devices: int, itemsize: int, chunk_events) -> int:
        if chunk_events is not None:
            T = _as_int(chunk_events, "chunk_events")
            if T < 1:
                raise ParameterError(f"chunk_events must be >= 1, got {T}")
            return T
        return int(np.clip(_pow2_floor(_STAGING_TARGET / (n_devices * itemsize)), 16, 1024))

    def _create(self, mode, record, stride, rng, dtype, compression, hist_range, hist_bins,
                chunk_events, prov):
        stride = 1 if stride is None else _as_int(stride, "stride")
        if stride < 1:
            raise ParameterError(f"stride must be >= 1, got {stride}")
        self.stride = stride
        dtype = "float32" if dtype is None else str(np.dtype(dtype))
        if dtype not in ("float32", "float64"):
            raise ParameterError(f"dtype must be 'float32' or 'float64' (never float16 for "
                                 f"conductances), got {dtype!r}")
        compression = "lzf" if compression == "default" else compression
        if compression not in ("lzf", "gzip", None):
            raise ParameterError(f"compression must be 'lzf', 'gzip' or None, got {compression!r}")
        bins = 64 if hist_bins is None else _as_int(hist_bins, "hist_bins")
        if bins < 1:
            raise ParameterError(f"hist_bins must be >= 1, got {bins}")
        ranges = self._resolve_ranges(hist_range)
        recs = self._resolve_record(record, rng)
        if prov is not None:
            prov_json = _json(prov, "provenance")
        else:
            prov_json = "{}"

        if mode == "x" and os.path.exists(self.path):
            raise HistoryError(f"{self.path} already exists (mode='x')")
        if os.path.exists(self.path):
            self._write_lock = WriterLock(self.path)
            if not self._write_lock.acquire():
                self._write_lock = None
                raise HistoryError(f"{self.path}: a live HistoryWriter is writing this file; "
                                   f"refusing to overwrite it")
        f = h5py.File(self.path, "w", libver="latest")
        try:
            if self._write_lock is None:
                self._write_lock = WriterLock(self.path)
                if not self._write_lock.acquire():   # pragma: no cover - race with another writer
                    raise HistoryError(f"{self.path}: another writer took the file")
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["created"] = _now_iso()
            f.attrs["provenance"] = prov_json
            f.attrs["resumes"] = "[]"
            f.attrs["units"] = json.dumps(UNITS)
            f.attrs["stride"] = stride
            f.attrs["dtype"] = dtype
            f.attrs["compression"] = "none" if compression is None else compression
            f.create_dataset("last_event", data=np.int64(-1))
            m = f.create_group("metrics")
            m.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64,
                             chunks=(_SMALL_CHUNK,))
            ck = f.create_group("checkpoint")
            ck.create_dataset("current", data=np.array([0, -1], dtype=np.int64))
            tg = f.create_group("tiles")
            self._tiles = {}
            itemsize = np.dtype(dtype).itemsize
            for name, shape in self._shapes.items():
                index, all_devices = recs[name]
                T = self._chunk_events(shape[0] * shape[1], itemsize, chunk_events)
                t = _Tile(name, shape, index, all_devices, T, dtype, ranges.get(name), bins)
                self._make_tile_group(tg, t, compression)
                self._tiles[name] = t
            f.flush()
            f.swmr_mode = True
        except BaseException:
            f.close()
            self._release_lock()
            raise
        self._f = f
        self._direct = compression is None
        self._bind()

    def _resolve_ranges(self, hist_range):
        if hist_range is None:
            return {}
        if isinstance(hist_range, dict):
            unknown = set(hist_range) - set(self._shapes)
            if unknown:
                raise ParameterError(f"hist_range names tiles that do not exist: {sorted(unknown)}")
            items = hist_range.items()
        else:
            items = ((name, hist_range) for name in self._shapes)
        out = {}
        for name, r in items:
            try:
                lo, hi = (float(v) for v in r)
            except (TypeError, ValueError):
                raise ParameterError(f"hist_range for tile {name!r} must be (lo, hi) in S, "
                                     f"got {r!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ParameterError(f"hist_range for tile {name!r} must be finite with lo < hi, got {r!r}")
            out[name] = (lo, hi)
        return out

    def _make_tile_group(self, tg, t: _Tile, compression):
        g = tg.create_group(t.name)
        M, N = t.shape
        g.attrs["shape"] = np.array(t.shape, dtype=np.int64)
        g.attrs["all_devices"] = bool(t.all)
        g.attrs["chunk_events"] = t.T
        g.attrs["hist_bins"] = t.bins
        filt = {} if compression is None else {"compression": compression,
                                                 "shuffle": compression == "lzf"}
        if t.n_rec:
            cols = int(np.clip(_CHUNK_TARGET // (t.T * t.dtype.itemsize), 1, t.n_rec))
            d = g.create_dataset("g", shape=(0, t.n_rec), maxshape=(None, t.n_rec), dtype=t.dtype,
                                 chunks=(t.T, cols), **filt)
            d.attrs["units"] = "S"
        g.create_dataset("index", data=t.index.astype(np.int32 if max(M, N) < 2**31 else np.int64),
                         **({"compression": "gzip", "shuffle": True,
                             "chunks": (min(t.n_rec, 1 << 16), 2)} if t.n_rec > 4096 else {}))
        for name, dt in (("event", np.int64), ("time", np.float64), ("energy", np.float64),
                         ("summary", SUMMARY_DTYPE)):
            d = g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(_SMALL_CHUNK,))
            if name in UNITS:
                d.attrs["units"] = UNITS[name]
        g["energy"].attrs["meaning"] = "cumulative programming energy of the tile through this event"
        hrows = max(1, min(_SMALL_CHUNK, (64 << 10) // (4 * t.bins)))
        g.create_dataset("hist", shape=(0, t.bins), maxshape=(None, t.bins), dtype=np.int32,
                         chunks=(hrows, t.bins), **filt)
        edges = (np.linspace(t.hist_range[0], t.hist_range[1], t.bins + 1) if t.hist_range
                 else np.full(t.bins + 1, np.nan))
        g.create_dataset("hist_edges", data=edges).attrs["units"] = "S"
        for name in ("pulses", "disturbed"):
            g.create_dataset(name, data=np.zeros(t.shape, dtype=np.int64)).attrs["units"] = "count"
        g.create_dataset("counted_through", data=np.int64(-1))
        g.create_dataset("energy_total", data=np.float64(0.0)).attrs["units"] = "J"

    def _open_existing(self, record, stride, rng, dtype, compression, hist_range, hist_bins,
                       chunk_events, prov, rewind):
        if not os.path.exists(self.path):
            raise HistoryError(f"{self.path} does not exist (mode='a' resumes an existing history)")
        lock = self._write_lock
        if not lock.acquire():
            self._write_lock = None
            raise HistoryError(f"{self.path}: a live HistoryWriter is writing this file")
        try:
            if status_flags(self.path):
                clear_status_flags(self.path)      # its writer died: we hold the lock
            f = h5py.File(self.path, "r+", libver="latest")
        except BaseException:
            self._release_lock()
            raise
        try:
            self._validate_existing(f, record, stride, rng, dtype, compression, hist_range, hist_bins,
                                    chunk_events)
            if prov is not None:
                resumes = json.loads(f.attrs.get("resumes", "[]"))
                resumes.append({"at": _now_iso(), "provenance": prov})
                f.attrs["resumes"] = _json(resumes, "provenance")
            if rewind:
                self._rewind(f)
            self._load_state(f)
            f.flush()
            f.swmr_mode = True
        except BaseException:
            f.close()
            self._release_lock()
            raise
        self._f = f
        self._direct = str(f.attrs["compression"]) == "none"
        self._bind()

    def _validate_existing(self, f, record, stride, rng, dtype, compression, hist_range, hist_bins,
                           chunk_events):
        if f.attrs.get("format") != FORMAT:
            raise HistoryError(f"{self.path} is not a {FORMAT} file")
        if int(f.attrs["format_version"]) > FORMAT_VERSION:
            raise HistoryError(f"{self.path} has format version {f.attrs['format_version']}, newer "
                               f"than this code ({FORMAT_VERSION})")
        self.stride = int(f.attrs["stride"])
        fdtype = str(f.attrs["dtype"])
        fcomp = str(f.attrs["compression"])
        fcomp = None if fcomp == "none" else fcomp

        def same(what, given, stored):
            if given is not None and given != stored:
                raise ParameterError(f"{self.path} was written with {what}={stored!r}; "
                                     f"cannot resume it with {what}={given!r}")
        same("stride", stride, self.stride)
        same("dtype", None if dtype is None else str(np.dtype(dtype)), fdtype)
        same("compression", None if compression == "default" else compression, fcomp)
        ftiles = set(f["tiles"])
        if ftiles != set(self._shapes):
            raise ParameterError(f"{self.path} holds tiles {sorted(ftiles)}; resume was given "
                                 f"{sorted(self._shapes)}")
        ranges = self._resolve_ranges(hist_range)
        self._tiles = {}
        for name, shape in self._shapes.items():
            g = f["tiles"][name]
            fshape = tuple(int(s) for s in g.attrs["shape"])
            if fshape != shape:
                raise ParameterError(f"tile {name!r} is {fshape} in {self.path}, not {shape}")
            same(f"hist_bins (tile {name!r})", hist_bins, int(g.attrs["hist_bins"]))
            same(f"chunk_events (tile {name!r})", chunk_events, int(g.attrs["chunk_events"]))
            index = g["index"][()].astype(np.int64)
            all_devices = bool(g.attrs["all_devices"])
            self._check_record(name, shape, record, index, all_devices)
            edges = g["hist_edges"][()]
            stored = None if np.isnan(edges[0]) else (float(edges[0]), float(edges[-1]))
            if name in ranges and stored is not None and not np.allclose(ranges[name], stored, rtol=1e-12):
                raise ParameterError(f"tile {name!r} has hist_range {stored} in {self.path}, "
                                     f"not {ranges[name]}")
            t = _Tile(name, shape, index, all_devices, int(g.attrs["chunk_events"]), fdtype,
                      stored or ranges.get(name), int(g.attrs["hist_bins"]))
            if stored is None and t.hist_range is not None:
                g["hist_edges"][...] = np.linspace(t.hist_range[0], t.hist_range[1], t.bins + 1)
            self._tiles[name] = t

    def _check_record(self, name, shape, record, index, all_devices):
        spec = record.get(name, 0) if isinstance(record, dict) else record
        where = f"tile {name!r} of {self.path}"
        n = shape[0] * shape[1]
        if isinstance(spec, str):
            if spec != "all" or not all_devices:
                raise ParameterError(f"{where} records {index.shape[0]} chosen devices, not {spec!r}")
        elif isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            k = int(spec)
            if (k == n) != all_devices or index.shape[0] != k:
                raise ParameterError(f"{where} records {'all' if all_devices else index.shape[0]} "
                                     f"devices, not record={k} (the subset is taken from the file)")
        else:
            given = _normalise_index(spec, shape, name)
            if all_devices or given.shape != index.shape or not np.array_equal(given, index):
                raise ParameterError(f"{where} records different devices than the indices given "
                                     f"({index.shape[0]} stored, {given.shape[0]} given)")

    def _rewind(self, f):
        seq, slot = (int(v) for v in f["checkpoint/current"][()])
        if slot < 0:
            raise HistoryError(f"{self.path} has no checkpoint to rewind to")
        s = f[f"checkpoint/slot{slot}"]
        w = json.loads(bytes(s["writer"][()]).decode())
        for name in self._shapes:
            g = f["tiles"][name]
            rows = int(w["rows"][name])
            for ds in ("g", "event", "time", "energy", "summary", "hist"):
                if ds in g:
                    g[ds].resize(rows, axis=0)
            g["pulses"][...] = s[f"counts/{name}/pulses"][()]
            g["disturbed"][...] = s[f"counts/{name}/disturbed"][()]
            g["counted_through"][()] = int(w["last_event"][name])
        mrows = int(w["metric_rows"])
        for ds in f["metrics"].values():
            ds.resize(mrows, axis=0)
            g["energy_total"][()] = float(w["energy"][name])
        f["last_event"][()] = int(w["global_last_event"])

    def _load_state(self, f):
        for name, t in self._tiles.items():
            g = f["tiles"][name]
            n = min(g[ds].shape[0] for ds in ("event", "time", "energy", "summary", "hist")
                    + (("g",) if "g" in g else ()))
            for ds in ("g", "event", "time", "energy", "summary", "hist"):
                if ds in g and g[ds].shape[0] != n:   # a kill between appends: keep whole rows
                    g[ds].resize(n, axis=0)
            t.rows = n
            t.pulses[...] = g["pulses"][()]
            t.disturbed[...] = g["disturbed"][()]
            t.last_event = int(g["counted_through"][()])
            t.energy = float(g["energy_total"][()])
            if n and int(g["event"][n - 1]) > t.last_event:   # rows flushed after the counts
                t.last_event = int(g["event"][n - 1])
                t.energy = float(g["energy"][n - 1])
        m = f["metrics"]
        n = m["step"].shape[0]
        for ds in m.values():
            n = min(n, ds.shape[0])
        for ds in m.values():
            if ds.shape[0] != n:
                ds.resize(n, axis=0)
        self._metric_count = self._metric_scheduled = n
        self._metric_names = [k for k in m if k != "step"]
        if n:
            self._last_step = int(m["step"][n - 1])
        self._last_event = int(f["last_event"][()])

    def _bind(self):
        """(Re)take handles on the datasets after the file was (re)opened."""
        f = self._f
        self._ds = {name: {k: v for k, v in f["tiles"][name].items()} for name in self._tiles}
        self._metrics_grp = f["metrics"]
        self._root_last = f["last_event"]
        self._current = f["checkpoint/current"]

    def _restructure(self, fn):
        """Run ``fn(file)`` with SWMR off: HDF5 forbids creating objects in SWMR mode.

        The file is flushed, reopened without SWMR, changed, flushed and put back in
        SWMR mode. A kill inside this window can damage the file; it is short and
        happens only when a metric name or a checkpoint's structure is new.
        """
        self._f.flush()
        self._f.close()
        self._f = None
        f = h5py.File(self.path, "r+", libver="latest")
        try:
            fn(f)
            f.flush()
            # A History reader open on this file in this process keeps HDF5's shared
            # file open, so the reopened file is still in SWMR mode: the objects were
            # then created in SWMR mode, which HDF5 does not guarantee for readers in
            # other processes (same risk as the window above, no worse).
            if not f.swmr_mode:
                f.swmr_mode = True
        except BaseException:
            f.close()
            raise
        self._f = f
        self._bind()

    # ------------------------------------------------------------------ recording

    def _check_open(self):
        if self._closed:
            raise HistoryError(f"the HistoryWriter of {self.path} is closed")
        self._worker.check()

    @staticmethod
    def _counts(arr, shape, what, tile):
        """Checked count map and an upper bound of its entries."""
        a = np.asarray(arr)
        if a.shape != shape:
            raise ParameterError(f"{what} for tile {tile!r} must have shape {shape}, got {a.shape}")
        if a.dtype.kind == "b":
            return a, 1
        if a.dtype.kind not in "iu":
            raise ParameterError(f"{what} for tile {tile!r} must be integer counts or bool, got {a.dtype}")
        if a.dtype.kind == "i" and a.size and a.min() < 0:
            raise ParameterError(f"{what} for tile {tile!r} has negative counts (min {a.min()}); pass "
                                 f"the number of pulses, e.g. abs() of a signed update")
        if a.dtype.itemsize <= 2:
            return a, int(np.iinfo(a.dtype).max)
        bound = int(a.max()) if a.size else 0
        if bound > np.iinfo(np.int32).max:
            raise ParameterError(f"{what} for tile {tile!r}: {bound} in one event is not a pulse count")
        return a, bound

    def record(self, event: int, tile: str, g, *, pulses=None, disturbed=None,
               time: float | None = None, energy: float | None = None) -> None:
        """Record the state of ``tile`` after programming event ``event``.

        Parameters
        ----------
        event : int
            Global event number; strictly increasing per tile.
        tile : str
        g : ndarray (M, N), S
            The tile's physical conductances after the event. Copied; the caller
            may change it as soon as this returns.
        pulses : ndarray (M, N) of int or bool, optional
            Pulses applied to each device in this event, added to the cumulative
            pulse map (at every event, whatever the stride).
        disturbed : ndarray (M, N) of bool or int, optional
            Devices half-selected (disturbed) in this event, added to the
            cumulative disturb map.
        time : float, optional
            Simulated time of the event, s (stored with the row; nan if absent).
        energy : float, optional
            Programming energy of this event, J; accumulated, and the running total
            is stored with each row.
        """
        self._check_open()
        t = self._tiles.get(tile)
        if t is None:
            raise ParameterError(f"unknown tile {tile!r}; the history has {sorted(self._tiles)}")
        event = _as_int(event, "event")
        if event <= t.last_event:
            raise ParameterError(f"event {event} for tile {tile!r} is not after its last event "
                                 f"{t.last_event} (events must increase; to replay from a checkpoint "
                                 f"open the history with mode='a', rewind=True)")
        g = np.asarray(g)
        if g.shape != t.shape or g.dtype.kind not in "fiu":
            raise ParameterError(f"g for tile {tile!r} must be a real array of shape {t.shape}, "
                                 f"got {g.dtype} {g.shape}")
        if pulses is not None:
            pulses, p_bound = self._counts(pulses, t.shape, "pulses", tile)
        if disturbed is not None:
            disturbed, d_bound = self._counts(disturbed, t.shape, "disturbed", tile)
        try:
            time = np.nan if time is None else float(time)
            energy = 0.0 if energy is None else float(energy)
        except (TypeError, ValueError):
            raise ParameterError(f"time and energy must be real numbers, got {time!r}, {energy!r}") from None
        row = event % self.stride == 0
        if row and t.hist_range is None:
            self._set_range_from(t, g)
        # everything is checked: from here on the state changes
        with self._lock:
            if pulses is not None:
                t.add_counts("pulses", pulses, p_bound)
            if disturbed is not None:
                t.add_counts("disturbed", disturbed, d_bound)
            t.energy += energy
            t.last_event = event
            if event > self._last_event:
                self._last_event = event
                self._events_since_flush += 1
            if row:
                b = t.cur if t.cur is not None else self._take_batch(t)
                np.copyto(b.g[b.n], g.reshape(-1), casting="same_kind")
                b.event[b.n] = event
                b.time[b.n] = time
                b.energy[b.n] = t.energy
                b.n += 1
                if b.n == b.cap:
                    self._submit_batch(t)
            if (_time.monotonic() - self._last_flush >= self.flush_every
                    or (self.flush_every_events is not None
                        and self._events_since_flush >= self.flush_every_events)):
                self._schedule_flush()

    def _set_range_from(self, t: _Tile, g):
        v = g[np.isfinite(g)]
        if v.size == 0:
            raise ParameterError(f"tile {t.name!r}: no finite conductance to take the histogram range "
                                 f"from; pass hist_range")
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else (abs(hi) if hi != 0 else 1.0)
        lo2, hi2 = lo - span / 2, hi + span / 2
        if lo >= 0 > lo2:
            lo2 = 0.0 if hi2 > 0 else lo2
        t.hist_range = (lo2, hi2)
        self._worker.submit(self._write_edges, t.name, np.linspace(lo2, hi2, t.bins + 1))

    def _write_edges(self, name, edges):
        self._ds[name]["hist_edges"][...] = edges

    def _take_batch(self, t: _Tile) -> _Batch:
        while True:
            try:
                b = t.pool.get(timeout=0.05)
                break
            except queue.Empty:
                self._worker.check()
        b.n = 0
        b.cap = t.T - (t.rows % t.T)      # end each batch on a chunk boundary
        t.cur = b
        return b

    def _submit_batch(self, t: _Tile):
        b = t.cur
        t.cur = None
        r0 = t.rows
        t.rows += b.n
        self._worker.submit(self._write_batch, t, b, r0)

    def _write_batch(self, t: _Tile, b: _Batch, r0: int):
        try:
            k = b.n
            ds = self._ds[t.name]
            if ds["event"].shape[0] != r0:
                raise HistoryError(f"tile {t.name!r}: expected {r0} rows on file, found "
                                   f"{ds['event'].shape[0]}")
            hist = np.empty((k, t.bins), dtype=np.int32)
            summ = np.empty(k, dtype=SUMMARY_DTYPE)
            # range ends rounded like the stored values (rounding is monotonic), so a
            # device exactly at g_min or g_max is not pushed outside by float32 rounding
            lo, hi = (float(t.dtype.type(v)) for v in t.hist_range)
            summarize_rows(b.g[:k], lo, hi, hist, summ)
            r1 = r0 + k
            if t.n_rec:
                data = b.g[:k] if t.all else np.take(b.g[:k], t.flat, axis=1)
                ds["g"].resize(r1, axis=0)
                if self._direct and k == t.T and r0 % t.T == 0:
                    self._write_chunks(ds["g"], data, r0)
                else:
                    ds["g"][r0:r1] = data
            for name, arr in (("summary", summ), ("hist", hist), ("time", b.time[:k]),
                              ("energy", b.energy[:k]), ("event", b.event[:k])):
                d = ds[name]
                d.resize(r1, axis=0)
                d[r0:r1] = arr
        finally:
            t.pool.put(b)

    @staticmethod
    def _write_chunks(d, data, r0):
        """Write whole unfiltered chunks of rows ``r0 ..`` straight to the file.

        ``H5Dwrite_chunk`` skips HDF5's selection and conversion machinery: for the
        full-tile case it halves the cost of appending a batch (and, like
        ``H5Dwrite``, h5py runs it without the GIL).
        """
        T, cols = d.chunks
        n = data.shape[1]
        for c0 in range(0, n, cols):
            block = data[:, c0:c0 + cols]
            if block.shape[1] < cols:              # edge chunk: stored full size
                pad = np.zeros((T, cols), dtype=data.dtype)
                pad[:, :block.shape[1]] = block
                block = pad
            d.id.write_direct_chunk((r0, c0), np.ascontiguousarray(block))

    # ------------------------------------------------------------------ metrics

    def metrics(self, step: int, **values) -> None:
        """Append one row of training metrics at ``step``.

        Each name becomes the 1-D float64 dataset ``/metrics/<name>``, aligned with
        ``/metrics/step``; a name missing from a row is stored as nan there.
        Steps must not decrease.
        """
        self._check_open()
        step = _as_int(step, "step")
        if self._last_step is not None and step < self._last_step:
            raise ParameterError(f"metrics step {step} is before the previous step {self._last_step}")
        if not values:
            raise ParameterError("metrics() needs at least one name=value")
        row = {}
        for k, v in values.items():
            if "/" in k:
                raise ParameterError(f"metric name {k!r} contains '/'")
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                raise ParameterError(f"metric {k!r} must be a real scalar, got {v!r}") from None
        with self._lock:
            self._last_step = step
            self._metric_rows.append((step, row))

    def _write_metrics(self, rows):
        if not rows:
            return
        names = list(self._metric_names)
        new = [k for _, r in rows for k in r if k not in names]
        new = list(dict.fromkeys(new))
        if new:
            n0 = self._metric_count

            def create(f):
                for k in new:
                    f["metrics"].create_dataset(k, data=np.full(n0, np.nan), maxshape=(None,),
                                                chunks=(_SMALL_CHUNK,))
            self._restructure(create)
            names += new
            self._metric_names = names
        m = self._metrics_grp
        n0 = self._metric_count
        n1 = n0 + len(rows)
        cols = {k: np.full(len(rows), np.nan) for k in names}
        for i, (_, r) in enumerate(rows):
            for k, v in r.items():
                cols[k][i] = v
        for k in names:
            m[k].resize(n1, axis=0)
            m[k][n0:n1] = cols[k]
        m["step"].resize(n1, axis=0)           # last: readers take the shortest length
        m["step"][n0:n1] = np.array([s for s, _ in rows], dtype=np.int64)
        self._metric_count = n1

    # ------------------------------------------------------------------ flushing

    def _schedule_flush(self):
        """Hand every buffered row, the counts and the metrics to the worker (lock held)."""
        for t in self._tiles.values():
            if t.cur is not None and t.cur.n:
                self._submit_batch(t)
        counts = {}
        for name, t in self._tiles.items():
            t.fold()
            counts[name] = ((t.pulses.copy(), t.disturbed.copy()) if t.counts_dirty else None,
                            (t.last_event, t.energy))
            t.counts_dirty = False
        rows, self._metric_rows = self._metric_rows, []
        self._metric_scheduled += len(rows)
        self._worker.submit(self._write_flush, counts, rows, self._last_event)
        self._last_flush = _time.monotonic()
        self._events_since_flush = 0

    def _write_flush(self, counts, metric_rows, last_event):
        self._write_metrics(metric_rows)
        # A barrier: the rows' new extents are HDF5 metadata, held in the library's
        # cache until a flush, while the small count datasets below may reach the OS at
        # once. Without this flush a kill here could leave counts (and "counted_through")
        # ahead of the rows on disk, and a resumed writer would skip the missing rows.
        self._f.flush()
        for name, (maps, through) in counts.items():
            ds = self._ds[name]
            if maps is not None:
                ds["pulses"][...] = maps[0]
                ds["disturbed"][...] = maps[1]
            ds["counted_through"][()] = through[0]
            ds["energy_total"][()] = through[1]
        self._root_last[()] = last_event
        self._f.flush()

    def _on_idle(self):
        """Worker thread, no job for ``flush_every`` s: flush what the caller buffered."""
        if self._closed or not self._lock.acquire(blocking=False):
            return
        try:
            if _time.monotonic() - self._last_flush < self.flush_every:
                return
            pending = any(t.cur is not None and t.cur.n for t in self._tiles.values())
            if not (pending or self._metric_rows or self._events_since_flush
                    or any(t.counts_dirty for t in self._tiles.values())):
                self._last_flush = _time.monotonic()
                return
            self._schedule_flush()      # queued jobs; this thread runs them next
        finally:
            self._lock.release()

    def flush(self) -> None:
        """Write everything buffered and flush the file; returns when it is on disk
        (in the OS's hands: a killed process loses none of it)."""
        self._check_open()
        with self._lock:
            self._schedule_flush()
        self._worker.wait()

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, state: dict, meta: dict | None = None) -> None:
        """Store a checkpoint of the run, replacing the previous one atomically.

        The writer flushes first, and saves with the checkpoint its own counters
        (rows, pulse maps, energy), so ``HistoryWriter(..., mode='a', rewind=True)``
        can roll the history back to exactly this point.

        Parameters
        ----------
        state : dict[str, array_like]
            Named numeric arrays (conductances, optimiser state...); names without '/'.
        meta : dict, optional
            JSON-able (epoch, step, the generator's ``bit_generator.state``...).

        Notes
        -----
        Two slots, ``/checkpoint/slot0`` and ``slot1``, alternate: the new checkpoint
        is written into the slot not in use, flushed, and only then does the small
        ``/checkpoint/current`` = (sequence, slot) switch to it, and is flushed. A kill
        at any moment leaves either the old or the new checkpoint whole.
        """
        self._check_open()
        if not isinstance(state, dict):
            raise ParameterError("checkpoint state must be a dict {name: array}")
        arrays = {}
        for k, v in state.items():
            if not isinstance(k, str) or not k or "/" in k:
                raise ParameterError(f"checkpoint names must be non-empty strings without '/': {k!r}")
            a = np.asarray(v)
            if a.dtype.kind not in "biufcSU":
                raise ParameterError(f"checkpoint entry {k!r} has dtype {a.dtype}; store numbers "
                                     f"(or put it in meta)")
            if a.dtype.kind == "U":
                a = np.char.encode(a, "utf-8")
            arrays[k] = a if a.flags.c_contiguous else a.copy(order="C")   # keeps 0-d arrays 0-d
        meta_json = _json({} if meta is None else meta, "checkpoint meta")
        with self._lock:
            self._schedule_flush()
            writer = {"rows": {n: t.rows for n, t in self._tiles.items()},
                      "last_event": {n: t.last_event for n, t in self._tiles.items()},
                      "energy": {n: t.energy for n, t in self._tiles.items()},
                      "metric_rows": self._metric_scheduled, "global_last_event": self._last_event,
                      "created": _now_iso()}
            counts = {n: (t.pulses.copy(), t.disturbed.copy()) for n, t in self._tiles.items()}  # folded
            self._worker.submit(self._write_checkpoint, arrays, meta_json, writer, counts)
        self._worker.wait()

    def _slot_fits(self, slot: str, arrays) -> bool:
        if slot not in self._f["checkpoint"]:
            return False
        st = self._f["checkpoint"][slot]["state"]
        if set(st) != set(arrays):
            return False
        return all(st[k].shape == a.shape and st[k].dtype == a.dtype for k, a in arrays.items())

    def _build_slots(self, f, slots, arrays):
        ck = f["checkpoint"]
        for slot in slots:
            if slot in ck:
                del ck[slot]
            s = ck.create_group(slot)
            st = s.create_group("state")
            for k, a in arrays.items():
                st.create_dataset(k, shape=a.shape, dtype=a.dtype)
            for k in ("meta", "writer"):
                s.create_dataset(k, shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(4096,))
            for name, t in self._tiles.items():
                for c in ("pulses", "disturbed"):
                    s.create_dataset(f"counts/{name}/{c}", data=np.zeros(t.shape, dtype=np.int64))

    def _write_checkpoint(self, arrays, meta_json, writer, counts):
        seq, slot = (int(v) for v in self._current[()])
        target = 0 if slot != 0 else 1
        name = f"slot{target}"
        if not self._slot_fits(name, arrays):
            slots = [name]
            other = f"slot{1 - target}"
            if slot < 0 and not self._slot_fits(other, arrays):
                slots.append(other)             # first checkpoint: make both slots at once
            self._restructure(lambda f: self._build_slots(f, slots, arrays))
        s = self._f["checkpoint"][name]
        for k, a in arrays.items():
            if a.size:
                s["state"][k][...] = a
        for k, text in (("meta", meta_json), ("writer", json.dumps(writer))):
            raw = np.frombuffer(text.encode(), dtype=np.uint8)
            s[k].resize(raw.size, axis=0)
            s[k][:] = raw
        for tname, (p, d) in counts.items():
            s[f"counts/{tname}/pulses"][...] = p
            s[f"counts/{tname}/disturbed"][...] = d
        self._f.flush()
        self._current[...] = np.array([seq + 1, target], dtype=np.int64)
        self._f.flush()

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Write everything buffered, flush and close the file (idempotent).

        A background failure not yet raised to the caller is raised here, after the
        file is closed.
        """
        if self._closed:
            return
        self._closed = True
        _OPEN_WRITERS.discard(self)
        reported_before = self._worker.reported
        err = None
        try:
            if self._worker.error is None:
                with self._lock:
                    self._schedule_flush()
            self._worker.wait()
        except BaseException as exc:
            err = exc
        finally:
            self._worker.stop()
            try:
                if self._f is not None:
                    self._f.close()
            finally:
                self._f = None
                self._release_lock()
        if err is not None and not (isinstance(err, HistoryError) and reported_before):
            raise err

    def _release_lock(self):
        if self._write_lock is not None:
            self._write_lock.release()
            self._write_lock = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    @property
    def tiles(self) -> dict:
        """Tile name -> shape."""
        return dict(self._shapes)

    def recorded(self, tile: str) -> np.ndarray:
        """(i, j) of the devices of ``tile`` with a full trace, shape (k, 2)."""
        return self._tiles[tile].index.copy()

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<HistoryWriter {self.path!r} tiles={sorted(self._shapes)} {state}>"


def open_history(path, shapes: dict, ranges: dict, *, seed, source: str, record="all", stride: int = 1,
                 mode: str = "w", rewind: bool = False, **options) -> "HistoryWriter":
    """A :class:`HistoryWriter` for an instrument's arrays (a chip's tiles, a network's crossbars).

    ``shapes`` and ``ranges`` (g_min, g_max) per array; the random choice of recorded
    devices uses its own generator derived from ``seed``, so recording never changes a
    run; provenance (netlist ``source``, seed, version, git commit) is stored.
    """
    if record == "all":   # compressing every device at every event costs more than it saves
        options.setdefault("compression", None)
    return HistoryWriter(path, shapes, record=record, stride=stride,
                         rng=np.random.default_rng([seed or 0, 0x5EED]),
                         provenance=provenance(netlist_text=source, seed=seed),
                         hist_range=ranges, mode=mode, rewind=rewind, **options)
