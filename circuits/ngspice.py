"""Run ngspice on a :class:`~circuits.spice.Deck` and read its operating point.

The deck is written with tight tolerances (:data:`TIGHT_OPTIONS`; ngspice's
defaults, RELTOL = 1e-3, are far too loose to compare solvers) and run as
``ngspice -b -n -r out.raw deck.cir``. The binary rawfile holds every node
voltage and every V/E branch current as IEEE doubles, so nothing is lost to
printing, and it is written in one pass for any circuit size (tens of
thousands of nodes). Note that ngspice's own sparse solver (Sparse 1.3,
Markowitz ordering) scales poorly: a 128 x 128 crossbar with wire resistance
(~33k nodes) takes on the order of a minute, mostly in matrix reordering.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from crossbar.errors import CrossbarError

from .mna import OperatingPoint, _check_topology

__all__ = ["NgspiceError", "TIGHT_OPTIONS", "ngspice_available", "run_ngspice", "read_rawfile"]

#: Options added to every deck run by :func:`run_ngspice`. They only decide
#: when ngspice stops iterating; since Newton converges quadratically, the
#: iterate it returns is accurate to ~1e-13 relative either way. Tighter
#: settings backfire: at RELTOL = 1e-12 with ABSTOL = 1e-18, rounding noise in
#: the junction currents of circuits with a few hundred diodes keeps ngspice's
#: convergence test failing; it then spends minutes in gmin/source stepping
#: and either aborts ("Timestep too small") or returns a worse answer.
#: GMIN is left at its default (1e-12 S), which our solver copies.
TIGHT_OPTIONS = {"reltol": 1e-11, "abstol": 1e-15, "vntol": 1e-13}

_DEFAULT_EXECUTABLE = "ngspice"


class NgspiceError(CrossbarError, RuntimeError):
    """ngspice is missing, failed, timed out, or wrote no usable results.

    The message includes the tail of ngspice's stderr/stdout.
    """


def _executable(executable: str | None) -> str:
    return executable or os.environ.get("MEMX_NGSPICE", _DEFAULT_EXECUTABLE)


def ngspice_available(executable: str | None = None) -> bool:
    """True if the ngspice executable (``$MEMX_NGSPICE`` or ``ngspice``) is on PATH."""
    return shutil.which(_executable(executable)) is not None


def read_rawfile(path) -> tuple[dict[str, float], dict[str, float]]:
    """Node voltages and branch currents from an ngspice rawfile of an ``.op``.

    Handles the binary format (default) and the ASCII one. Returns
    ``(voltages, currents)`` keyed by lower-case node / element name.
    """
    data = Path(path).read_bytes()
    marker = re.search(rb"^(Binary|Values):\s*\n", data, flags=re.M)
    if marker is None:
        raise NgspiceError(f"{path}: not an ngspice rawfile (no 'Binary:' or 'Values:' section)")
    header = data[:marker.start()].decode("ascii", errors="replace")
    fields = dict(re.findall(r"^([A-Za-z. ]+):[ \t]*(.*)$", header, flags=re.M))
    try:
        nvars = int(fields["No. Variables"])
        npoints = int(fields["No. Points"])
    except (KeyError, ValueError):
        raise NgspiceError(f"{path}: rawfile header lacks the variable/point counts") from None
    if "complex" in fields.get("Flags", ""):
        raise NgspiceError(f"{path}: complex rawfile; expected a DC operating point")
    if npoints < 1:
        raise NgspiceError(f"{path}: rawfile has no data points (the analysis failed)")
    var_block = re.split(r"^Variables:", header, maxsplit=1, flags=re.M)[-1]
    names = re.findall(r"^[ \t]*\d+[ \t]+(\S+)[ \t]+\S+", var_block, flags=re.M)
    if len(names) != nvars:
        raise NgspiceError(f"{path}: expected {nvars} variables, found {len(names)}")
    if marker.group(1) == b"Binary":
        body = data[marker.end():]
        if len(body) < 8 * nvars:
            raise NgspiceError(f"{path}: truncated binary rawfile")
        values = np.frombuffer(body, dtype="<f8", count=nvars)  # first (only) point
    else:
        text = data[marker.end():].decode("ascii").split()
        # ASCII layout: point index, then one value per variable.
        values = np.array([float(t) for t in text[1:1 + nvars]])
    voltages, currents = {}, {}
    for name, value in zip(names, values.tolist()):
        low = name.lower()
        m_v = re.fullmatch(r"v\((.+)\)", low)
        m_i = re.fullmatch(r"i\((.+)\)", low) or re.fullmatch(r"(.+)#branch", low)
        if m_i:
            currents[m_i.group(1)] = value
        elif m_v:
            voltages[m_v.group(1)] = value
        elif "#" not in low:       # older ngspice: bare node names
            voltages[low] = value
    return voltages, currents


def run_ngspice(deck, timeout: float | None = 600.0, *, options: dict | None = None,
                executable: str | None = None, keep_dir: str | os.PathLike | None = None,
                check_topology: bool = True) -> OperatingPoint:
    """DC operating point of ``deck`` computed by ngspice.

    Parameters
    ----------
    deck : Deck
        The circuit.
    timeout : float or None
        Wall-clock limit for ngspice, s.
    options : dict, optional
        ``.options`` entries overriding :data:`TIGHT_OPTIONS` and the deck's own.
    executable : str, optional
        ngspice binary; default ``$MEMX_NGSPICE`` or ``ngspice``.
    keep_dir : path, optional
        Write ``deck.cir``/``op.raw`` there and keep them (for debugging);
        by default a temporary directory is used and removed.
    check_topology : bool
        Run the same floating-node / voltage-loop checks as our solver first.
        ngspice itself "solves" a floating node after gmin stepping and
        returns an arbitrary voltage with exit code 0, so this is on by default.

    Returns
    -------
    OperatingPoint
        Same API as :meth:`Deck.operating_point`, with ``solver="ngspice"``.

    Raises
    ------
    NgspiceError
        ngspice not found, non-zero exit, timeout, no rawfile, or a
        "singular matrix" warning; the message carries ngspice's stderr.
    FloatingNodeError, CircuitError
        From the topology check (see ``check_topology``).
    """
    if check_topology:
        _check_topology(deck)
    exe = shutil.which(_executable(executable))
    if exe is None:
        raise NgspiceError(f"ngspice executable {_executable(executable)!r} not found on PATH")
    # Deck options first, then ours, so loose tolerances in a deck never leak
    # into a cross-check; explicit ``options`` win over both.
    merged = {**deck.options, **TIGHT_OPTIONS, **(options or {})}
    if keep_dir is not None:
        os.makedirs(keep_dir, exist_ok=True)
        return _run_in(deck, Path(keep_dir), exe, merged, timeout)
    with tempfile.TemporaryDirectory(prefix="memx-ngspice-") as tmp:
        return _run_in(deck, Path(tmp), exe, merged, timeout)


def _run_in(deck, workdir: Path, exe: str, options: dict, timeout) -> OperatingPoint:
    cir, raw = workdir / "deck.cir", workdir / "op.raw"
    cir.write_text(deck.to_spice(options=options), encoding="utf-8")
    if raw.exists():
        raw.unlink()
    env = dict(os.environ)
    env.pop("SPICE_ASCIIRAWFILE", None)   # keep the exact binary format
    # -n: ignore the user's .spiceinit, whose settings would change results.
    cmd = [exe, "-b", "-n", "-r", str(raw), str(cir)]
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NgspiceError(f"{deck.path}: ngspice did not finish within {timeout} s") from None
    except OSError as err:
        raise NgspiceError(f"cannot run {exe}: {err}") from err

    def tail(text: str, n: int = 40) -> str:
        return "\n".join(text.strip().splitlines()[-n:])

    # ngspice recovers from a singular matrix by gmin/source stepping and
    # still exits with 0; such a result is not an operating point to trust.
    if proc.returncode != 0 or not raw.exists() or "singular matrix" in proc.stderr:
        raise NgspiceError(f"{deck.path}: ngspice failed (exit code {proc.returncode}).\n"
                           f"--- stderr ---\n{tail(proc.stderr)}\n"
                           f"--- stdout ---\n{tail(proc.stdout, 15)}")
    try:
        voltages, currents = read_rawfile(raw)
    except NgspiceError as err:
        raise NgspiceError(f"{err}\n--- ngspice stderr ---\n{tail(proc.stderr)}") from None
    nodes = deck.nodes()
    missing = [n for n in nodes if n not in voltages]
    branches = [el.name.lower() for el in deck.elements if el.letter in "VE"]
    missing += [b for b in branches if b not in currents]
    if missing:
        raise NgspiceError(f"{deck.path}: ngspice rawfile lacks {', '.join(missing[:10])}\n"
                           f"--- stderr ---\n{tail(proc.stderr)}")
    return OperatingPoint(deck, {n: voltages[n] for n in nodes},
                          {b: currents[b] for b in branches}, solver="ngspice")
