"""File-level helpers: the writer's lock and recovery of a file whose writer died.

Why these exist
---------------
* HDF5 marks a file "open for writing" in its superblock (format v3, the one SWMR
  needs) and clears the mark on close. A writer killed with SIGKILL leaves the mark,
  and HDF5 then refuses to open the file except as a SWMR reader ("file is already
  open for write (may use <h5clear file> to clear file consistency flags)"). h5py
  does not ship ``h5clear``; :func:`clear_status_flags` does what ``h5clear -s``
  does: zero the flag byte and rewrite the superblock checksum.
* Clearing the mark is only safe when no writer is alive. HDF5's own file lock does
  not tell: a SWMR writer gives it up, so another process can even open a live run
  with mode ``'w'`` and truncate it. The writer therefore holds an advisory
  open-file-description lock (``F_OFD_SETLK``, Linux) on one byte far past the end
  of the file for as long as it is open; the kernel drops it when the process dies.
  A lock of this kind survives HDF5 closing and reopening its own descriptor, which
  a classic POSIX ``lockf`` lock would not.

Where ``F_OFD_SETLK`` is missing (macOS, Windows) there is no lock: recovery then
assumes the writer is dead.
"""
from __future__ import annotations

import os
import struct

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

SIGNATURE = b"\x89HDF\r\n\x1a\n"
_LOCK_OFFSET = 1 << 62     # a byte no file will ever reach
_F_WRLCK = 1
_F_UNLCK = 2


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5 metadata."""
    m = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m      # noqa: E702
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m      # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m      # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m     # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m     # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m      # noqa: E702
        i += 12
        n -= 12
    if n == 0:
        return c
    tail = data[i:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m     # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & m     # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m     # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m     # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m      # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m     # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m     # noqa: E702
    return c


def _superblock(fh):
    """(raw bytes up to the checksum, checksum offset) of a v2/v3 superblock at 0."""
    raw = fh.read(48)
    if raw[:8] != SIGNATURE:
        raise ValueError("not an HDF5 file (or it has a user block)")
    version, size_of_offsets = raw[8], raw[9]
    if version < 2:
        raise ValueError(f"superblock version {version} has no status flags to clear")
    n = 12 + 4 * size_of_offsets
    return raw, n


def status_flags(path) -> int:
    """The file-consistency flags of an HDF5 superblock v2/v3 (0 when closed cleanly)."""
    with open(path, "rb") as fh:
        raw, _ = _superblock(fh)
    return raw[11]


def clear_status_flags(path) -> bool:
    """Zero the "open for write / SWMR write" flags, as ``h5clear -s`` does.

    Returns whether anything changed. Only call this when no writer is alive.
    """
    with open(path, "r+b") as fh:
        raw, n = _superblock(fh)
        if raw[11] == 0:
            return False
        head = bytearray(raw[:n])
        head[11] = 0
        fh.seek(0)
        fh.write(bytes(head) + lookup3(bytes(head)).to_bytes(4, "little"))
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _flock(kind):
    # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len,
    # pid_t l_pid (0 for OFD locks); native alignment pads after l_whence.
    return struct.pack("@hhqqi4x", kind, os.SEEK_SET, _LOCK_OFFSET, 1, 0)


def ofd_locks_available() -> bool:
    return fcntl is not None and hasattr(fcntl, "F_OFD_SETLK")


class WriterLock:
    """Advisory lock that a live :class:`HistoryWriter` holds on its file."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._fd = None

    def acquire(self) -> bool:
        """Take the lock; False if another live writer holds it."""
        if not ofd_locks_available():
            return True
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(_F_WRLCK))
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            try:
                fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _flock(_F_UNLCK))
            finally:
                os.close(self._fd)
                self._fd = None


def writer_alive(path) -> bool:
    """Whether a live writer holds the lock on ``path`` (False where locks are missing)."""
    if not os.path.exists(path):
        return False
    lock = WriterLock(path)
    if lock.acquire():
        lock.release()
        return False
    return True
