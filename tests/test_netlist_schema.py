"""The schema: it matches the dataclasses it maps onto, it is enforced, and the README shows it."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from circuits.chip import ProgramSettings
from circuits.netlist import NetlistError, parse_netlist, schema
from circuits.neurons import NeuronParams

README = Path(__file__).parents[1] / "netlists" / "README.md"


def test_readme_tables_are_generated_from_the_schema():
    text = README.read_text(encoding="utf-8")
    start = text.index(schema.TABLES_BEGIN) + len(schema.TABLES_BEGIN) + 1
    stop = text.index(schema.TABLES_END)
    assert text[start:stop] == schema.markdown_tables(), \
        "netlists/README.md is out of date: run python -m circuits.netlist"


@pytest.mark.parametrize("mtype", list(schema.MODEL_TYPES))
def test_model_parameters_are_the_dataclass_fields(mtype):
    element = schema.MODEL_TYPES[mtype]
    fields = {f.name: f.default for f in dataclasses.fields(element.cls)}
    own = {k: p for k, p in element.params.items() if k not in ("preset", "beta")}
    assert set(own) == set(fields)
    assert {k: p.default for k, p in own.items()} == fields


def test_group_parameters_are_the_neuron_fields():
    fields = {f.name: f.default for f in dataclasses.fields(NeuronParams)}
    params = dict(schema.GROUP.params)
    del params["size"]
    assert set(params) == set(fields)
    for name, p in params.items():
        if not p.required:
            assert p.default == fields[name], name


def test_program_defaults_are_those_of_program_settings():
    settings = ProgramSettings()
    for name, p in schema.PROGRAM.params.items():
        if hasattr(settings, name):
            expected = getattr(settings, name)
            assert p.default == (expected.lower() if isinstance(expected, str) else expected), name


def _card(kind: str, name: str, value: str) -> str:
    head = "t\n.model dev exponential\nNa size=2\n"
    if kind in schema.MODEL_TYPES:
        return head + f".model m {kind} {name}={value}\n"
    if kind == "N":
        base = {"size": "2", "activation": "stochastic", "noise": "1", name: value}
        return head + "Nb " + " ".join(f"{k}={v}" for k, v in base.items()) + "\n"
    if kind == "X":
        return head + f"Xw a a model=dev sense=load {name}={value}\n"
    if kind == ".drn":
        base = {"inputs": "2", "hidden": "2", "outputs": "2", "model": "dev", name: value}
        return "t\n.model dev exponential\n.drn " + " ".join(f"{k}={v}" for k, v in base.items()) + "\n"
    return head + f".program {name}={value}\n"


CASES = [(kind, p) for kind, el in {**schema.ELEMENTS, **schema.MODEL_TYPES}.items()
         for p in el.params.values() if p.kind in (schema.FLOAT, schema.INT)]


@pytest.mark.parametrize("kind, param", CASES, ids=[f"{k}-{p.name}" for k, p in CASES])
def test_documented_bounds_are_enforced(kind, param):
    for bound, open_, step in ((param.low, param.low_open, -1), (param.high, param.high_open, 1)):
        if math.isinf(bound):
            continue
        outside = bound if open_ else bound + step * max(abs(bound), 1) * 1e-6
        if param.kind == schema.INT:
            outside = bound + step
        with pytest.raises(NetlistError) as info:
            parse_netlist(_card(kind, param.name, repr(outside)))
        assert f"{param.name} = " in info.value.reason and "outside" in info.value.reason
    if not param.inf_ok:
        with pytest.raises(NetlistError, match="outside the allowed range|must be an integer"):
            parse_netlist(_card(kind, param.name, "inf"))


def test_model_keywords_are_reserved_names():
    assert schema.MODEL_KEYWORDS == {"none", "passive", "linear"}


def test_readme_examples_parse():
    import re
    text = README.read_text(encoding="utf-8")
    deck = re.search(r"```\n(Two-layer.*?)```", text, re.S).group(1)
    net = parse_netlist(deck)
    assert [(t.params["rows"], t.params["cols"]) for t in net.tiles.values()] == [(17, 9), (9, 4)]
    error = re.search(r"```\n(chip.net:.*?)```", text, re.S).group(1).split("\n")
    with pytest.raises(NetlistError) as info:
        parse_netlist("t\n.model dev exponential\nNa size=1\nNb size=1\n\n\n" + error[1] + "\n",
                      "chip.net")
    assert str(info.value).split("\n") == error[:3]
