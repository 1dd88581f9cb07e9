"""Checkpoints: exact round trips, atomic layout, clear errors for truncated or foreign files."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from helpers import checkpoint_state

from xdomain import checkpoint as ckpt
from xdomain.errors import CheckpointError


def _save(root, step, keep_last=2, **state):
    model = {"w": torch.arange(6.0).view(2, 3)}
    tensors, full = checkpoint_state(**state)
    return ckpt.save_checkpoint(root, step, model, tensors, full, keep_last=keep_last)


def test_round_trip_and_latest(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (10, 20, 30):
        _save(root, step)
    assert (root / "latest").read_text().strip() == "step-0000030"
    assert sorted(p.name for p in root.glob("step-*")) == ["step-0000020", "step-0000030"]
    path, state, model, _train = ckpt.load_checkpoint(tmp_path)  # a run dir resolves to latest
    assert path.name == "step-0000030" and state["step"] == 30
    assert torch.equal(model["w"], torch.arange(6.0).view(2, 3))


def test_optimizer_state_round_trip_is_exact():
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = torch.optim.Adam([p], lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
    tensors, meta = ckpt.optimizer_to_flat("g", opt.state_dict())
    meta = json.loads(json.dumps(meta))  # must survive JSON
    tensors = {k: v.clone() for k, v in tensors.items()}  # as if read back from the file
    p2 = torch.nn.Parameter(p.detach().clone())
    opt2 = torch.optim.Adam([p2], lr=5.0)
    opt2.load_state_dict(ckpt.optimizer_from_flat("g", meta, tensors))
    for o, q in ((opt, p), (opt2, p2)):
        o.zero_grad()
        (q**2).sum().backward()
        o.step()
    assert torch.equal(p, p2)


def test_rng_state_round_trip():
    tensors, meta = ckpt.rng_state()
    meta = json.loads(json.dumps(meta))
    a = (torch.rand(3), np.random.rand(2), random.random())
    ckpt.set_rng_state(tensors, meta)
    b = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_leftover_temp_dir_from_a_kill_is_ignored(tmp_path):
    root = tmp_path / "checkpoints"
    _save(root, 5)
    (root / ".tmp-step-0000010-999").mkdir()  # what a SIGKILL mid-save leaves
    _path, state, _, _ = ckpt.load_checkpoint(root)
    assert state["step"] == 5


def test_truncated_weights_give_a_clear_error(tmp_path):
    root = tmp_path / "checkpoints"
    path = _save(root, 5)
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is truncated or corrupt"):
        ckpt.load_checkpoint(root)


def test_foreign_directory_and_json(tmp_path):
    with pytest.raises(CheckpointError, match="not an xdomain checkpoint"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not an xdomain checkpoint"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing")


def test_latest_pointing_to_a_missing_step(tmp_path):
    root = tmp_path / "checkpoints"
    _save(root, 5)
    (root / "latest").write_text("step-0000099\n")
    with pytest.raises(CheckpointError, match="missing or incomplete"):
        ckpt.load_checkpoint(tmp_path)
