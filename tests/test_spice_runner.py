"""Parts of the ngspice runner that do not need ngspice itself."""
from __future__ import annotations

import stat

import pytest

from circuits import spice
from circuits.ngspice import NgspiceError, read_rawfile
from circuits.spice import ngspice_available, parse_deck, run_ngspice


def test_failing_executable(tmp_path):
    fake = tmp_path / "fake-ngspice"
    fake.write_text("#!/bin/sh\necho 'boom: license expired' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    deck = parse_deck("t\nV1 a 0 1\nR1 a 0 1k\n")
    with pytest.raises(NgspiceError, match="(?s)exit code 3.*boom: license expired"):
        run_ngspice(deck, executable=str(fake))
    with pytest.raises(NgspiceError, match="not found"):
        run_ngspice(deck, executable=str(tmp_path / "nowhere"))
    assert not ngspice_available(str(tmp_path / "nowhere"))


def test_ascii_rawfile(tmp_path):
    raw = tmp_path / "op.raw"
    raw.write_text("Title: t\nDate: x\nPlotname: Operating Point\nFlags: real\n"
                   "No. Variables: 3\nNo. Points: 1\nVariables:\n"
                   "\t0\tv(a)\tvoltage\n\t1\tv(b)\tvoltage\n\t2\tv1#branch\tcurrent\n"
                   "Values:\n 0\t1.234567890123457e+00\n\t-5.0e-01\n\t-1.0e-03\n")
    voltages, currents = read_rawfile(raw)
    assert voltages == {"a": 1.234567890123457, "b": -0.5}
    assert currents == {"v1": -1e-3}


def test_public_entry_point_reexports():
    assert spice.run_ngspice is run_ngspice
    assert spice.OperatingPoint.__name__ == "OperatingPoint"


def test_rawfile_problems_are_reported(tmp_path):
    raw = tmp_path / "bad.raw"
    raw.write_text("just some text\n")
    with pytest.raises(NgspiceError, match="not an ngspice rawfile"):
        read_rawfile(raw)
    raw.write_text("Title: t\nFlags: real\nNo. Variables: 1\nNo. Points: 0\nVariables:\n"
                   "\t0\tv(a)\tvoltage\nBinary:\n")
    with pytest.raises(NgspiceError, match="no data points"):
        read_rawfile(raw)
    raw.write_bytes(b"Title: t\nFlags: real\nNo. Variables: 2\nNo. Points: 1\nVariables:\n"
                    b"\t0\tv(a)\tvoltage\n\t1\ti(v1)\tcurrent\nBinary:\n" + b"\0" * 12)
    with pytest.raises(NgspiceError, match="truncated"):
        read_rawfile(raw)
