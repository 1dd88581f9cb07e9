"""Durable writes and verified caches: a truncated or damaged cache is rebuilt, never fatal.

Each cache (DTN's pretrained f, the printed-digits rendering; the judges have their own tests in
test_metrics_judges.py) is written, damaged three ways, and read again: the result must equal a
fresh build, with a warning.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from xdomain import io
from xdomain.data.printed import load_printed
from xdomain.methods.base import DataSpec
from xdomain.methods.dtn import DTN

DAMAGE = {
    "truncate": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "flip_byte": lambda p: p.write_bytes(
        p.read_bytes()[:100] + bytes([p.read_bytes()[100] ^ 1]) + p.read_bytes()[101:]
    ),
    "no_sidecar": lambda p: p.with_name(p.name + ".sha256").unlink(),
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path / "cache"))


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    io.atomic_write_bytes(target, b"old")

    def full(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        io.atomic_write(target, full)
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_temporary_names_are_unique(tmp_path):
    seen = []
    for _ in range(2):
        io.atomic_write(tmp_path / "x", lambda tmp: seen.append(tmp.name) or tmp.write_text("1"))
    assert seen[0] != seen[1]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_verified_detects_damage(tmp_path, damage):
    path = io.write_verified(tmp_path / "c.bin", lambda tmp: tmp.write_bytes(os.urandom(300)))
    assert io.verified(path)
    DAMAGE[damage](path)
    assert not io.verified(path)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_f_cache_is_retrained(tmp_path, damage):
    spec = DataSpec(num_classes_a=10, num_classes_b=10)
    cfg = DTN.Config(width_f=4, width_g=4, width_d=4, feat_dim=8, f_steps=3, f_batch=8)
    x = torch.rand(32, 3, 32, 32) * 2 - 1
    y = torch.arange(32) % 10
    first = DTN(cfg, spec)
    path = first.load_or_train_f(x, y)
    assert not first.f_from_cache and first.f_pretrain_seconds > 0
    DAMAGE[damage](path)
    again = DTN(cfg, spec)
    with pytest.warns(UserWarning, match="cached f"):
        again.load_or_train_f(x, y)
    assert not again.f_from_cache
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.f.state_dict().values(), again.f.state_dict().values(), strict=True)
    )
    third = DTN(cfg, spec)
    third.load_or_train_f(x, y)  # the rebuilt cache is whole again
    assert third.f_from_cache


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_printed_digits_cache_is_rendered_again(tmp_path, damage):
    first = load_printed(0, "test", 40, 32)
    (npz,) = (tmp_path / "cache" / "data").glob("*.npz")
    DAMAGE[damage](npz)
    with pytest.warns(UserWarning, match="cache"):
        again = load_printed(0, "test", 40, 32)
    assert (again.images == first.images).all() and (again.labels == first.labels).all()
    assert io.verified(npz)


def test_concurrent_writers_of_one_cache_never_collide(tmp_path):
    # torchrun starts one process per GPU and each builds the same cache entry at once; threads
    # race the same way on the temporary names and the rename
    from concurrent.futures import ThreadPoolExecutor

    path, data = tmp_path / "same.bin", os.urandom(50_000)

    def writer(_: int) -> None:
        for _ in range(10):
            io.write_verified(path, lambda tmp: tmp.write_bytes(data))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(writer, range(4)))
    assert path.read_bytes() == data and io.verified(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.bin", "same.bin.sha256"]


def _disk_full(path: str) -> None:
    """A writer that gets half way and then finds the disk full."""
    Path(path).write_bytes(b"half a file")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_f_cache_write_failure_is_a_warning_not_a_crash(tmp_path, monkeypatch):
    import safetensors.torch as st_mod  # the shared cache (`io.cached_safetensors`) writes with it

    spec = DataSpec(num_classes_a=10, num_classes_b=10)
    cfg = DTN.Config(width_f=4, width_g=4, width_d=4, feat_dim=8, f_steps=3, f_batch=8)
    x, y = torch.rand(32, 3, 32, 32) * 2 - 1, torch.arange(32) % 10
    monkeypatch.setattr(st_mod, "save_file", lambda tensors, path: _disk_full(path))
    m = DTN(cfg, spec)
    with pytest.warns(UserWarning, match="could not cache f"):
        m.load_or_train_f(x, y)
    assert m.f_from_cache is False
    assert not list((tmp_path / "cache" / "dtn").iterdir())  # no half file, no temporary


def test_printed_cache_write_failure_is_a_warning_not_a_crash(tmp_path, monkeypatch):
    import numpy as np

    fresh = load_printed(0, "test", 12, 32)
    for p in (tmp_path / "cache" / "data").iterdir():
        p.unlink()
    monkeypatch.setattr(np, "savez", lambda f, **arrays: _disk_full(f.name))
    with pytest.warns(UserWarning, match="could not cache"):
        again = load_printed(0, "test", 12, 32)
    assert (again.images == fresh.images).all()
    assert not list((tmp_path / "cache" / "data").iterdir())
