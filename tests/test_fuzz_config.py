"""Fuzzed configs: whatever the recipe text or override, `load_config` returns a RunConfig or raises
an `XDomainError` whose message is one line under 300 characters. Any other exception is a bug.

Deterministic (`derandomize=True`, no example database) and short: a few seconds in all.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from helpers import fuzz
from hypothesis import given
from hypothesis import strategies as st

from xdomain.config import RunConfig, load_config, recipe_names
from xdomain.errors import XDomainError
from xdomain.methods import METHODS
from xdomain.sections import DataConfig, EvalConfig, TrainConfig

FUZZ = fuzz(200)

RECIPE_TEXTS = [
    resources.files("xdomain").joinpath("recipes", f"{n}.yaml").read_text() for n in recipe_names()
]


def _keys() -> list[str]:
    keys = ["method", "seed", "description", "base", "model", "data", "train", "eval"]
    for section, cls in (("data", DataConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    for m in METHODS.values():
        keys += [f"model.{f.name}" for f in dataclasses.fields(m.Config)]
    return [*keys, "train.steps.x", "model.lr_g.a.b", "a..b", ".x", "x."]


KEYS = _keys()

# YAML texts that have broken parsers or converters before
TRICKY = [
    "",
    "~",
    "null",
    "2e-4",
    "1E+3",
    ".5",
    "-.5",
    ".nan",
    "-.inf",
    "0b_",
    "0x_",
    "0o8",
    "2001-13-45",
    "2001-12-14",
    "1" * 5000,
    "9" * 400,
    "x" * 100_000,
    "[",
    "{",
    "{a: 1, a: 2}",
    "&a [*a]",
    "*undefined",
    "!!python/object/apply:os.system ['true']",
    "!!binary '%%%'",
    "!!float abc",
    "!!int 1.5",
    "<<: 5",
    "- a",
    "a: b: c",
    "'unterminated",
    "\t",
    "\x00",
    "\u2028",
    "[" * 3000 + "]" * 3000,
    "{a: " * 300 + "1" + "}" * 300,
    "---\na: 1\n---\nb: 2",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=20),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# a value as YAML text: JSON (a YAML subset) of a random value, a tricky text or random unicode
value_texts = st.one_of(
    values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(TRICKY),
    st.text(max_size=30),
)
base_refs = st.one_of(
    st.sampled_from(
        ["dtn-digits", "discogan-toy", "r.yaml", "./r.yaml", "../r.yaml", "/", ".", "..", "nope"]
    ),
    st.text(max_size=20),
)


@st.composite
def mutated_recipes(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(RECIPE_TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        line = lines[i] if lines else ""
        indent = line[: len(line) - len(line.lstrip())]
        op = draw(
            st.sampled_from(["delete", "duplicate", "value", "insert", "base", "nest", "unicode"])
        )
        if op == "delete" and lines:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "value" and ":" in line:
            lines[i] = f"{line.split(':', 1)[0]}: {draw(value_texts)}"
        elif op == "insert":
            key = draw(st.one_of(st.sampled_from(KEYS).map(lambda k: k.split(".")[-1]), st.text()))
            lines.insert(i, f"{indent}{key}: {draw(value_texts)}")
        elif op == "base":
            lines.insert(0, f"base: {json.dumps(draw(base_refs), ensure_ascii=False)}")
        elif op == "nest":
            depth = draw(st.integers(1, 400))
            lines.insert(i, f"{indent}deep: " + "{a: " * depth + "1" + "}" * depth)
        else:
            lines.insert(i, draw(st.text(max_size=40)))
    return "\n".join(lines)


overrides = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), value_texts),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=15), st.text(max_size=15)),
    st.text(max_size=30),
)


def _outcome(call: Any) -> None:
    """`call()` returns a RunConfig or raises an XDomainError with a one-line, short message."""
    try:
        cfg = call()
    except XDomainError as e:
        msg = str(e)
        assert msg and len(msg.splitlines()) == 1 and "\n" not in msg, repr(msg)
        assert len(msg) < 300, f"{len(msg)} characters: {msg}"
    else:
        assert isinstance(cfg, RunConfig)


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "r.yaml"


@FUZZ
@given(text=mutated_recipes())
def test_mutated_builtin_recipes(recipe_file: Path, text: str) -> None:
    recipe_file.write_text(text, encoding="utf-8")
    _outcome(lambda: load_config(str(recipe_file)))


@FUZZ
@given(text=st.one_of(st.text(), st.sampled_from(TRICKY)))
def test_random_recipe_texts(recipe_file: Path, text: str) -> None:
    recipe_file.write_text(text, encoding="utf-8", errors="surrogatepass")
    _outcome(lambda: load_config(str(recipe_file)))


@fuzz(50)
@given(raw=st.binary(max_size=200))
def test_random_recipe_bytes(recipe_file: Path, raw: bytes) -> None:
    recipe_file.write_bytes(raw)
    _outcome(lambda: load_config(str(recipe_file)))


@FUZZ
@given(items=st.lists(overrides, min_size=1, max_size=4))
def test_random_overrides(items: list[str]) -> None:
    _outcome(lambda: load_config("dtn-digits", items))
