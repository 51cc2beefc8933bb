"""Per-device conductance histories of a chip's tiles, in HDF5: crash-safe and resumable.

Only the hardware layer writes histories (learning rules never see conductances):
after each programming event it calls :meth:`HistoryWriter.record` with the tile's
physical conductance array. Reading is separate: :class:`History`.

=============================  ==============================================================
:class:`HistoryWriter`         append histories during a run (context manager)
:class:`History`               read one lazily (also while it is being written)
:func:`provenance`             version, git commit, netlist and seed, for the root attributes
:func:`read_checkpoint`        ``(state, meta)`` of the last checkpoint, or None
:func:`last_event`             last event flushed to a file
:func:`recover`                clear the "open for write" mark a killed writer leaves
=============================  ==============================================================

File layout (format ``memx-history`` version 1)
-----------------------------------------------
Root attributes: ``format``, ``format_version``, ``created`` (ISO 8601, UTC),
``provenance`` (JSON), ``resumes`` (JSON list), ``units`` (JSON), ``stride``,
``dtype``, ``compression``. ``n`` is the number of recorded events of a tile,
``k`` its number of recorded devices, time is always the leading axis.

::

    /last_event                  ()          int64   last event counted at the last flush (-1: none)
    /tiles/<name>/               attrs: shape (M, N), all_devices, chunk_events, hist_bins
        g                        (n, k)      float32|float64, S   chunked (chunk_events, ~256 KiB),
                                                                   compressed, maxshape (None, k)
                                                                   (absent when k = 0)
        index                    (k, 2)      int     (i, j) of column c of g
        event                    (n,)        int64   global event number of each row
        time                     (n,)        float64 s, simulated time (nan: not given)
        energy                   (n,)        float64 J, cumulative programming energy of the tile
        summary                  (n,)        mean, std, min, max (S) over ALL M x N devices;
                                                     below, above (outside the histogram), nonfinite
        hist                     (n, bins)   int32   histogram of ALL devices at each row
        hist_edges               (bins + 1,) float64 S, fixed for the run
        pulses                   (M, N)      int64   cumulative pulses per device  } rewritten at
        disturbed                (M, N)      int64   cumulative half-select disturbs } each flush
        counted_through          ()          int64   last event included in pulses/disturbed
        energy_total             ()          float64 J, energy through counted_through
    /metrics/step                (m,)        int64   training step of each metrics row
    /metrics/<name>              (m,)        float64 (nan where a row did not give it)
    /checkpoint/current          (2,)        int64   (sequence, slot in use; -1: none)
    /checkpoint/slot0, slot1/    state/<name> (the arrays), meta (JSON bytes, uint8),
                                 writer (JSON: rows, metrics rows, energies at the checkpoint),
                                 counts/<tile>/pulses|disturbed

Rows are written whole: a reader takes the shortest of a tile's per-event datasets as
``n``, so a row is either complete or absent. All randomness (the ``record=<int>``
subsets) comes from the ``rng`` given to the writer.

Crash safety
------------
* The file uses the HDF5 1.10+ format (``libver='latest'``) and runs in SWMR
  (single-writer/multiple-reader) mode while rows are appended. In SWMR mode HDF5
  orders its metadata writes so that the file on disk is always consistent for a
  reader, which is also what is left when the writer is killed: everything flushed
  before a SIGKILL can be read (tested). Readers open it with ``swmr=True``, also
  while the run goes on.
* Rows are buffered in memory (two staging buffers per tile) and appended a chunk at
  a time; the file is flushed at least every ``flush_every`` seconds, on
  :meth:`~HistoryWriter.flush`, :meth:`~HistoryWriter.checkpoint` and on close. The
  ``with`` block closes it on any exception, ``KeyboardInterrupt`` included.
* HDF5 cannot create objects in SWMR mode. New metric names and a checkpoint with a
  new set of arrays therefore briefly reopen the file without SWMR; a kill inside
  that window (milliseconds, rare) is the one case that can damage the file.
* Checkpoints alternate between two slots and switch ``/checkpoint/current`` only
  after the new slot is flushed: a kill leaves the old or the new one, whole.
  (The usual "write a new group, then rename" is not possible in SWMR mode, and a
  rename is no more atomic than this on an HDF5 file.)
* A killed writer leaves the superblock marked "open for write"; SWMR readers do not
  mind, and ``mode='a'`` (or :func:`recover`) clears the mark after checking, with an
  OS lock the live writer holds, that no writer is alive. The same lock stops a
  second writer from truncating a live run.
"""
from .reader import History, read_checkpoint
from .writer import HistoryError, HistoryWriter, last_event, open_history, provenance, recover
from ._summary import SUMMARY_DTYPE

__all__ = ["History", "HistoryWriter", "HistoryError", "open_history", "provenance", "read_checkpoint",
           "last_event", "recover", "SUMMARY_DTYPE"]
