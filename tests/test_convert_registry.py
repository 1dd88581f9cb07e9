"""The converter registry: `--from` is rendered from it, each entry names a real method and a
repository module that implements it, and the table itself loads without torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from xdomain.cli import build_parser
from xdomain.convert import official, registry
from xdomain.errors import XDomainError
from xdomain.methods import METHODS


def _convert_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["convert"]


def test_cli_from_choices_and_help_come_from_the_registry():
    action = next(a for a in _convert_parser()._actions if a.dest == "family")
    assert action.choices == list(registry.CONVERTERS)
    for c in registry.CONVERTERS.values():
        assert f"{c.repository} ({c.name}: {c.files})" in action.help
    attrs = next(a for a in _convert_parser()._actions if a.dest == "attrs")
    assert attrs.help.startswith("stargan: the CelebA attributes") and "cyclegan" not in attrs.help


def test_every_converter_fills_a_method_and_a_repository_module_implements_it():
    # no reader that --from cannot reach, no --from without a reader
    assert list(official.READERS) == list(registry.CONVERTERS)
    modules = [m for m in vars(official).values() if isinstance(getattr(m, "READERS", None), dict)]
    assert sum(len(m.READERS) for m in modules) == len(official.READERS)  # no name taken twice
    for c in registry.CONVERTERS.values():
        assert c.method in METHODS, f"{c.name}: method {c.method!r} is not in METHODS"
        assert isinstance(official.READERS[c.name], registry.Reader)
        assert "\n" not in c.files and c.files.strip() == c.files


def test_the_registry_loads_without_torch():
    code = "import sys, xdomain.convert.registry; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_an_unknown_from_lists_the_valid_names(tmp_path):
    with pytest.raises(XDomainError, match="--from 'cycle' is unknown; valid: cyclegan, ") as e:
        official.convert("cycle", [], tmp_path / "o")
    assert ", ".join(registry.CONVERTERS) in str(e.value) and "\n" not in str(e.value)


def test_shapes_give_the_first_network_read_of_a_kind():
    nets = {"G_ba": {"ngf": 1}, "D_b": {"ndf": 2}, "G_ab": {"ngf": 3}, "D_a": {"ndf": 4}}
    shapes = registry.Shapes(nets)
    assert shapes.g == {"ngf": 1} and shapes.d == {"ndf": 2}
    assert shapes.get("D_a") == {"ndf": 4} and shapes.get("E") == shapes.first("E") == {}
    assert registry.Shapes({"G": {}}).d == {}  # no D file: the Config keeps its defaults
