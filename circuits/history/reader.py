"""Reading a run's history lazily: :class:`History` and :func:`read_checkpoint`.

Files are opened as SWMR readers, so a history can be read while its writer is still
running (each access sees what the writer had flushed) or after the writer was
killed, without clearing anything. Only what is asked for is read: a trace of one
device reads the chunks holding that device's column (``n_events x chunk width``
values), never the whole conductance dataset.
"""
from __future__ import annotations

import json
import os

import h5py
import numpy as np

from crossbar.errors import ParameterError

from .writer import FORMAT, FORMAT_VERSION, HistoryError

_ROW_DATASETS = ("event", "time", "energy", "summary", "hist", "g")


def _open(path) -> h5py.File:
    path = os.fspath(path)
    try:
        return h5py.File(path, "r", libver="latest", swmr=True)
    except OSError as exc:
        if "not already open for SWMR writing" in str(exc):
            raise HistoryError(
                f"{path}: its writer died while the file was out of SWMR mode (adding a metric "
                f"name or a checkpoint layout); run circuits.history.recover({path!r}) and "
                f"read it again") from exc
        raise HistoryError(f"cannot open {path} as a history: {exc}") from exc


def read_checkpoint(path):
    """The last complete checkpoint in a history file.

    Returns
    -------
    (state, meta) or None
        ``state``: dict of the arrays given to :meth:`HistoryWriter.checkpoint`;
        ``meta``: its JSON dict. None if the file has no checkpoint.
    """
    with _open(path) as f:
        seq, slot = (int(v) for v in f["checkpoint/current"][()])
        if slot < 0:
            return None
        s = f[f"checkpoint/slot{slot}"]
        state = {k: d[()] for k, d in s["state"].items()}
        meta = json.loads(bytes(s["meta"][()]).decode() or "{}")
    return state, meta


class History:
    """A history file, read lazily.

    Parameters
    ----------
    path : str or path-like

    Examples
    --------
    >>> with History("run.h5") as h:
    ...     g = h.trace("W1", 3, 7)            # (n_events,) S
    ...     counts, edges = h.histograms("W1")  # (n_events, n_bins), (n_bins + 1,)
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._f = _open(self.path)
        if self._f.attrs.get("format") != FORMAT:
            self._f.close()
            raise HistoryError(f"{self.path} is not a {FORMAT} file")
        if int(self._f.attrs["format_version"]) > FORMAT_VERSION:
            v = self._f.attrs["format_version"]
            self._f.close()
            raise HistoryError(f"{self.path} has format version {v}, newer than this reader")
        self._index_cache = {}
        self._handles = {}

    # ---------------------------------------------------------------- file

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<History {self.path!r} tiles={sorted(self.tiles)}>"

    @property
    def attrs(self) -> dict:
        """Root attributes (format, created, units, stride, dtype, compression...)."""
        return dict(self._f.attrs)

    @property
    def provenance(self) -> dict:
        """What produced the run (see :func:`~circuits.history.provenance`)."""
        return json.loads(self._f.attrs.get("provenance", "{}"))

    @property
    def resumes(self) -> list:
        """One entry (time, provenance) per resume of the run."""
        return json.loads(self._f.attrs.get("resumes", "[]"))

    @property
    def tiles(self) -> dict:
        """Tile name -> physical shape (M, N)."""
        return {k: tuple(int(s) for s in g.attrs["shape"]) for k, g in self._f["tiles"].items()}

    def last_event(self) -> int | None:
        """Last event counted by the writer as of its last flush (None if none)."""
        d = self._f["last_event"]
        d.refresh()
        e = int(d[()])
        return None if e < 0 else e

    # ---------------------------------------------------------------- per tile

    def _group(self, tile):
        try:
            return self._f["tiles"][tile]
        except KeyError:
            raise ParameterError(f"no tile {tile!r} in {self.path}; it has {sorted(self.tiles)}") from None

    def _ds(self, tile, name):
        """A per-event dataset, refreshed: one handle per dataset, so that the extent a
        refresh sees is the extent the following read uses (SWMR)."""
        key = (tile, name)
        if key not in self._handles:
            self._handles[key] = self._group(tile)[name]
        d = self._handles[key]
        d.refresh()
        return d

    def n_events(self, tile) -> int:
        """Rows (recorded events) of ``tile``: those complete in every per-event dataset."""
        g = self._group(tile)
        return min(self._ds(tile, name).shape[0] for name in _ROW_DATASETS if name in g)

    def events(self, tile) -> np.ndarray:
        """Global event number of each row, (n_events,) int64."""
        n = self.n_events(tile)
        return self._ds(tile, "event")[:n]

    def recorded(self, tile) -> np.ndarray:
        """(i, j) of the devices with a full trace, (n_recorded, 2)."""
        if tile not in self._index_cache:
            self._index_cache[tile] = self._group(tile)["index"][()].astype(np.int64)
        return self._index_cache[tile]

    def n_recorded(self, tile) -> int:
        return int(self._group(tile)["index"].shape[0])

    def _column(self, tile, i, j) -> int:
        g = self._group(tile)
        M, N = self.tiles[tile]
        i, j = int(i), int(j)
        if not (0 <= i < M and 0 <= j < N):
            raise ParameterError(f"device ({i}, {j}) is outside tile {tile!r} of shape {(M, N)}")
        if bool(g.attrs["all_devices"]):
            return i * N + j
        idx = self.recorded(tile)
        hit = np.flatnonzero((idx[:, 0] == i) & (idx[:, 1] == j))
        if hit.size == 0:
            some = ", ".join(f"({a}, {b})" for a, b in idx[:5])
            raise ParameterError(
                f"device ({i}, {j}) of tile {tile!r} was not recorded: the history traces "
                f"{idx.shape[0]} of its {M * N} devices ({some}{', ...' if idx.shape[0] > 5 else ''}; "
                f"see History.recorded). Summaries, histograms and pulse maps cover every device.")
        return int(hit[0])

    def trace(self, tile, i, j, rows=slice(None)) -> np.ndarray:
        """Conductance of device (i, j) at each recorded event, S, (n_events,) float.

        Reads only the chunks that hold this device. ``rows`` selects a slice of
        the events.
        """
        col = self._column(tile, i, j)
        n = self.n_events(tile)
        start, stop, step = rows.indices(n)
        if stop <= start:
            return np.empty(0, dtype=self._group(tile)["g"].dtype)
        return self._ds(tile, "g")[start:stop:step, col]

    def snapshot(self, tile, row: int = -1) -> np.ndarray:
        """Conductances of one recorded event as an (M, N) image, nan where not recorded."""
        g = self._group(tile)
        n = self.n_events(tile)
        r = row + n if row < 0 else row
        if not 0 <= r < n:
            raise ParameterError(f"row {row} is out of range: tile {tile!r} has {n} events")
        M, N = self.tiles[tile]
        out = np.full((M, N), np.nan)
        if "g" in g:
            idx = self.recorded(tile)
            out[idx[:, 0], idx[:, 1]] = self._ds(tile, "g")[r]
        return out

    def histograms(self, tile, rows=slice(None)):
        """Conductance histogram of every device of ``tile`` at each recorded event.

        ``rows`` (a slice) selects events, e.g. ``slice(None, None, 10)``.

        Returns
        -------
        counts : ndarray (n_events, n_bins) int
        edges : ndarray (n_bins + 1,), S
            Devices outside the edges are counted in ``summary(tile)['below'/'above']``.
        """
        g = self._group(tile)
        sl = slice(*rows.indices(self.n_events(tile)))
        return self._ds(tile, "hist")[sl], g["hist_edges"][()]

    def summary(self, tile, rows=slice(None)) -> dict:
        """Per-event statistics over all devices of ``tile`` (``rows``: a slice of events).

        Returns a dict of (n_events,) arrays: ``event``, ``time`` (s, nan if not
        given), ``energy`` (cumulative, J), ``mean``, ``std``, ``min``, ``max`` (S),
        ``below``, ``above`` (devices outside the histogram range), ``nonfinite``.
        """
        sl = slice(*rows.indices(self.n_events(tile)))
        s = self._ds(tile, "summary")[sl]
        out = {name: self._ds(tile, name)[sl] for name in ("event", "time", "energy")}
        out.update({k: s[k] for k in s.dtype.names})
        return out

    def _map(self, tile, name):
        d = self._group(tile)[name]
        d.refresh()
        return d[()]

    def pulse_map(self, tile) -> np.ndarray:
        """Cumulative pulses applied to each device, (M, N) int64 (as of the last flush)."""
        return self._map(tile, "pulses")

    def disturb_map(self, tile) -> np.ndarray:
        """Cumulative half-select disturbs of each device, (M, N) int64."""
        return self._map(tile, "disturbed")

    # ---------------------------------------------------------------- run level

    def metrics(self) -> dict:
        """Training metrics: ``{'step': (n,) int64, name: (n,) float64, ...}``, aligned
        row by row; nan where a row did not give that metric."""
        m = self._f["metrics"]
        for d in m.values():
            d.refresh()
        n = min(d.shape[0] for d in m.values())
        return {k: d[:n] for k, d in m.items()}

    def checkpoint(self):
        """``(state, meta)`` of the last checkpoint, or None (see :func:`read_checkpoint`)."""
        return read_checkpoint(self.path)
