"""The hardware boundary: learning rules see the chip only through its instrument interface.

Rules in ``learning/`` may import the standard library, numpy/scipy, other
``learning`` modules and the public names of the ``circuits`` package. They may
not import ``crossbar`` (the device physics), reach into the chip's internals,
or touch any conductance.
"""
import ast
from pathlib import Path

import pytest

LEARNING = Path(__file__).resolve().parents[1] / "learning"
ALLOWED_MODULES = {"__future__", "dataclasses", "typing", "math", "itertools", "functools", "collections",
                   "numpy", "scipy", "learning", "circuits", "json", "time", "pathlib", "enum", "abc",
                   "warnings", "contextlib", "copy", "os", "gzip",
                   "numba"}   # a compiler for the policies' array loops; it reaches no hardware state
FORBIDDEN_ATTRIBUTES = {"g", "_tiles", "tile", "weights", "arrays", "device", "conductance", "g_plus",
                        "g_minus", "state_dict", "load_state_dict"}


def violations(source: str, name: str = "<src>"):
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top not in ALLOWED_MODULES or alias.name.startswith("circuits."):
                    found.append(f"{name}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            top = mod.split(".")[0]
            if node.level == 0 and (top not in ALLOWED_MODULES or mod.startswith("circuits.")):
                found.append(f"{name}:{node.lineno}: from {mod} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{name}:{node.lineno}: attribute .{node.attr}")
    return found


def test_checker_catches_what_it_should():
    bad = ("import crossbar\nfrom crossbar.tile import Tile\nfrom circuits.chip import ChipTile\n"
           "x = chip._tiles['W'].tile.g\n")
    assert len(violations(bad)) == 6
    assert violations("import numpy as np\nfrom circuits import OuterProductWrite\nchip.read('W', x)\n") == []


@pytest.mark.parametrize("path", sorted(LEARNING.rglob("*.py")), ids=lambda p: p.name)
def test_learning_uses_only_the_chip_interface(path):
    assert violations(path.read_text(), str(path.relative_to(LEARNING.parent))) == []


def test_there_are_rules_to_check():
    assert len(list(LEARNING.rglob("*.py"))) >= 2
