"""Fuzzed checkpoints: whatever `state.json` holds, `xdomain.load` raises an `XDomainError` whose
message is one line under 300 characters, or returns the checkpoint's own model: its weights are
the file's, bit for bit, and it translates a fixed input exactly as the intact checkpoint does.
Any other exception, or a model that loads but differs, is a bug.

The mutations start from a real (toy) checkpoint: replace or delete a field at a random path,
swap in random JSON, or cut the file. Deterministic (`derandomize=True`) and short.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TOY, fuzz
from hypothesis import given
from hypothesis import strategies as st

import xdomain
from xdomain.config import load_config
from xdomain.errors import XDomainError
from xdomain.train import Trainer

FUZZ = fuzz(150)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["dtn", "discogan", "step-0000020", "x" * 5000]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fuzz") / "run"
    Trainer(load_config("discogan-toy", TOY), run).fit()
    return run / "checkpoints" / "step-0000020"


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys/indices) into a JSON document, the root included."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(state: dict, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    node = state
    for k in path[:-1]:
        node = node[k]
    if delete and isinstance(node, dict):
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return state


POINTS = torch.linspace(-1, 1, 16).view(8, 2)  # (8, 2): fixed inputs of the 2-D toy


@pytest.fixture(scope="module")
def intact(toy_ckpt) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(the weights, the translation of POINTS) of the unmutated checkpoint."""
    m = xdomain.load(toy_ckpt)
    return {k: v.clone() for k, v in m.state_dict().items()}, m.translate(POINTS)


def _check_load(ckpt: Path, intact: tuple[dict[str, torch.Tensor], torch.Tensor]) -> None:
    try:
        m = xdomain.load(ckpt)
    except XDomainError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 300, msg[:400]
        return
    weights, y = intact
    got = m.state_dict()
    assert set(got) == set(weights)
    assert all(torch.equal(got[k], weights[k]) for k in weights)
    assert torch.equal(m.translate(POINTS), y)  # the same model, not merely a model


@FUZZ
@given(data=st.data(), value=JSON, delete=st.booleans())
def test_mutated_state_json(toy_ckpt, intact, tmp_path_factory, data, value, delete):
    state = json.loads((toy_ckpt / "state.json").read_text())
    paths = _paths(state)
    path = paths[data.draw(st.integers(0, len(paths) - 1))]
    copy = tmp_path_factory.mktemp("ck") / "ck"
    shutil.copytree(toy_ckpt, copy)
    (copy / "state.json").write_text(json.dumps(_mutate(state, path, value, delete)))
    _check_load(copy, intact)


@FUZZ
@given(cut=st.integers(0, 10_000), junk=st.binary(max_size=50))
def test_cut_or_garbled_state_json(toy_ckpt, intact, tmp_path_factory, cut, junk):
    text = (toy_ckpt / "state.json").read_bytes()
    copy = tmp_path_factory.mktemp("ck") / "ck"
    shutil.copytree(toy_ckpt, copy)
    (copy / "state.json").write_bytes(text[: cut % (len(text) + 1)] + junk)
    _check_load(copy, intact)
