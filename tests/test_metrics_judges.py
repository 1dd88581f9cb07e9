"""Judges on sklearn's 8x8 digits (upsampled to 32x32): accuracy, determinism and the cache.

One real judge is trained for the whole module (about 10 s on one thread); the cache tests copy its
files and use a 3-step stand-in trainer where they only need to see that retraining happens.
"""

from __future__ import annotations

import errno
import json
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import xdomain.metrics.judges as judges
from xdomain.errors import DataError
from xdomain.metrics.fid import extract_features, fid
from xdomain.metrics.judges import (
    Judge,
    JudgeArch,
    TrainConfig,
    get_judge,
    judge_hash,
    label_accuracy,
    train_judge,
)

torch.set_num_threads(1)

Split = tuple[torch.Tensor, torch.Tensor]


@pytest.fixture(scope="module")
def digits() -> tuple[Split, Split]:
    """(train, test): 1400 / 397 digits as (N, 1, 32, 32) floats in [-1, 1] and (N,) labels."""
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None]  # (1797, 1, 8, 8), values 0..16
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False) / 8.0 - 1.0
    y = torch.tensor(d.target, dtype=torch.long)
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


@pytest.fixture(scope="module")
def cached(
    digits: tuple[Split, Split], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Judge, Path, float]]:
    """The digits judge, trained once into a private cache: (judge, cache root, seconds)."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDOMAIN_CACHE", str(root))
        t0 = time.perf_counter()
        judge = get_judge("digits", *digits, num_classes=10)
        seconds = time.perf_counter() - t0
    print(
        f"\ndigits judge: held-out accuracy {judge.heldout_accuracy:.4f}, trained in {seconds:.1f}s"
    )
    yield judge, root, seconds


def _forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("get_judge trained although a valid cache entry exists")

    monkeypatch.setattr(judges, "_train", fail)


def _count_quick_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace training by a 3-step run (enough to produce a valid judge) and count the calls."""
    calls: list[int] = []
    real = judges._train

    def quick(*args: object, num_classes: int, cfg: TrainConfig, **kw: str) -> tuple[Judge, float]:
        calls.append(1)
        return real(*args, num_classes=num_classes, cfg=replace(cfg, steps=3), **kw)

    monkeypatch.setattr(judges, "_train", quick)
    return calls


def _same_weights(a: Judge, b: Judge) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_digits_judge_is_accurate_and_ready_to_score(cached: tuple[Judge, Path, float]) -> None:
    judge, root, seconds = cached
    assert judge.heldout_accuracy >= 0.97
    assert seconds < 60
    assert not judge.training
    assert not any(p.requires_grad for p in judge.parameters())
    files = sorted(p.name for p in (root / "judges").iterdir())
    assert len(files) == 2 and files[0].startswith("digits-")
    assert files[0].endswith(".json") and files[1].endswith(".safetensors")
    meta = json.loads((root / "judges" / files[0]).read_text())
    assert files[0] == f"digits-{meta['hash'][:16]}.json"
    assert meta["heldout_accuracy"] == judge.heldout_accuracy
    assert meta["num_classes"] == 10 and meta["arch"]["in_channels"] == 1
    assert {"created", "weights_sha256", "judge_version"} <= meta.keys()


def test_second_call_loads_from_cache(
    cached: tuple[Judge, Path, float],
    digits: tuple[Split, Split],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judge, root, _ = cached
    monkeypatch.setenv("XDOMAIN_CACHE", str(root))
    _forbid_training(monkeypatch)
    loaded = get_judge("digits", *digits, num_classes=10)
    assert _same_weights(loaded, judge)
    assert loaded.heldout_accuracy == judge.heldout_accuracy
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    test_x, test_y = digits[1]
    assert label_accuracy(loaded, test_x, test_y) == judge.heldout_accuracy


def _use_copy_of_cache(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point XDOMAIN_CACHE at a private copy of the session's judge cache (tests may damage it)."""
    shutil.copytree(root / "judges", tmp_path / "judges")
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path))


@pytest.mark.parametrize(
    "damage",
    ["truncate_weights", "flip_weight_byte", "garble_json", "delete_json", "delete_weights"],
)
def test_damaged_cache_is_retrained_with_a_warning(
    damage: str,
    cached: tuple[Judge, Path, float],
    digits: tuple[Split, Split],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, root, _ = cached
    _use_copy_of_cache(root, tmp_path, monkeypatch)
    weights = next((tmp_path / "judges").glob("*.safetensors"))
    sidecar = weights.with_suffix(".json")
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "flip_weight_byte":
        raw = bytearray(weights.read_bytes())
        raw[-10] ^= 0xFF
        weights.write_bytes(bytes(raw))
    elif damage == "garble_json":
        sidecar.write_text('{"hash": ')
    elif damage == "delete_json":  # half an entry: once retrained without a word
        sidecar.unlink()
    else:
        weights.unlink()

    calls = _count_quick_training(monkeypatch)
    with pytest.warns(RuntimeWarning, match="unusable"):
        judge = get_judge("digits", *digits, num_classes=10)
    assert calls == [1]
    assert not judge.training
    # the rebuilt judge is the one a fresh training gives (the 3-step stand-in here)
    assert _same_weights(judge, get_judge("digits", *digits, num_classes=10, cache=False))

    # The rewritten entry is whole again: the next call loads it without training or warnings.
    _forbid_training(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = get_judge("digits", *digits, num_classes=10)
    assert _same_weights(again, judge)
    assert not list((tmp_path / "judges").glob("*.tmp"))


def test_cache_false_neither_reads_nor_writes(
    digits: tuple[Split, Split], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path))
    calls = _count_quick_training(monkeypatch)
    get_judge("digits", *digits, num_classes=10, cache=False)
    assert calls == [1]
    assert not list((tmp_path / "judges").iterdir())


def test_cache_write_failure_is_a_warning_and_the_bar_names_the_judge(
    digits: tuple[Split, Split],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path))
    _count_quick_training(monkeypatch)

    def disk_full(tensors: object, path: str) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(judges, "save_file", disk_full)
    with pytest.warns(RuntimeWarning, match="could not cache judge"):
        judge = get_judge("digits-handwritten", *digits, num_classes=10)
    assert not judge.training  # the evaluation goes on with the judge it trained
    assert not list((tmp_path / "judges").iterdir())  # no half file, no temporary
    assert "training the digits-handwritten judge" in capsys.readouterr().err


def test_hash_follows_content_and_hyperparameters(digits: tuple[Split, Split]) -> None:
    (tx, ty), test = digits
    cfg = TrainConfig()
    base = judge_hash((tx, ty), test, 10, cfg)
    assert judge_hash((tx.clone(), ty.clone()), test, 10, cfg) == base  # content, not identity
    changed = tx.clone()
    changed[0, 0, 0, 0] += 1e-3
    assert judge_hash((changed, ty), test, 10, cfg) != base
    relabeled = ty.clone()
    relabeled[0] = (relabeled[0] + 1) % 10
    assert judge_hash((tx, relabeled), test, 10, cfg) != base
    assert judge_hash((tx.double(), ty), test, 10, cfg) != base  # dtype is part of the content
    assert judge_hash((tx[:-1], ty[:-1]), test, 10, cfg) != base
    assert judge_hash(test, (tx, ty), 10, cfg) != base  # train and test are not interchangeable
    assert judge_hash((tx, ty), test, 11, cfg) != base
    assert judge_hash((tx, ty), test, 10, replace(cfg, steps=cfg.steps + 1)) != base
    assert len(base) == 64


def test_changed_data_gets_its_own_cache_file(
    cached: tuple[Judge, Path, float],
    digits: tuple[Split, Split],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, root, _ = cached
    _use_copy_of_cache(root, tmp_path, monkeypatch)
    (tx, ty), test = digits
    calls = _count_quick_training(monkeypatch)
    get_judge("digits", (tx[:1000], ty[:1000]), test, num_classes=10)
    assert calls == [1]
    assert len(list((tmp_path / "judges").glob("digits-*.safetensors"))) == 2


def test_training_is_deterministic_and_leaves_global_rng_alone(
    digits: tuple[Split, Split],
) -> None:
    (tx, ty), (vx, vy) = digits
    args = (tx[:256], ty[:256], vx[:64], vy[:64])
    state = torch.get_rng_state()
    a, acc_a = train_judge(*args, num_classes=10, seed=0, steps=15, batch_size=16)
    assert torch.equal(torch.get_rng_state(), state)
    b, acc_b = train_judge(*args, num_classes=10, seed=0, steps=15, batch_size=16)
    c, _ = train_judge(*args, num_classes=10, seed=1, steps=15, batch_size=16)
    assert _same_weights(a, b) and acc_a == acc_b
    assert not _same_weights(a, c)


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32), (3, 48), (1, 64)])
def test_judge_shapes(channels: int, size: int) -> None:
    judge = Judge(JudgeArch(in_channels=channels, num_classes=7)).eval()
    x = torch.rand(5, channels, size, size) * 2 - 1
    assert judge(x).shape == (5, 7)
    assert judge.features(x).shape == (5, JudgeArch().feature_dim)
    torch.testing.assert_close(judge(x.double()), judge(x))  # cast to the judge's dtype


def test_augmentation_is_identity_without_jitter() -> None:
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    still = TrainConfig(max_shift_px=0.0, max_scale=0.0, max_rotate_deg=0.0)
    torch.testing.assert_close(judges._augment(x, still, torch.Generator().manual_seed(0)), x)
    moved = judges._augment(x, TrainConfig(), torch.Generator().manual_seed(0))
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    assert moved.min() >= -1 - 1e-6 and moved.max() <= 1 + 1e-6  # bilinear never overshoots


def test_judge_features_separate_real_from_noise(
    cached: tuple[Judge, Path, float], digits: tuple[Split, Split]
) -> None:
    judge, _, _ = cached
    (tx, _), (vx, vy) = digits
    real_a = extract_features(judge.features, tx[:397])
    real_b = extract_features(judge.features, vx)
    noise = extract_features(judge.features, torch.rand(397, 1, 32, 32) * 2 - 1)
    assert fid(real_b, real_b) == pytest.approx(0.0, abs=1e-6)
    assert fid(real_a, real_b) < 0.2 * fid(real_b, noise)
    # Eval mode: accuracy does not depend on the batch size, and the mode is restored.
    assert label_accuracy(judge, vx, vy, batch_size=7) == label_accuracy(judge, vx, vy)
    judge.train()
    label_accuracy(judge, vx, vy)
    assert judge.training
    judge.eval()


def test_bad_inputs_are_data_errors(digits: tuple[Split, Split]) -> None:
    (tx, ty), test = digits
    small = F.interpolate(tx[:10], size=16)
    with pytest.raises(DataError, match="28 to 64"):
        train_judge(small, ty[:10], small, ty[:10], num_classes=10)
    with pytest.raises(DataError, match="labels"):
        train_judge(tx[:10], ty[:10] + 10, *test, num_classes=10)
    with pytest.raises(DataError, match="integer labels"):
        train_judge(tx[:10], ty[:10].float(), *test, num_classes=10)
    with pytest.raises(DataError, match="name"):
        get_judge("../escape", (tx, ty), test, num_classes=10)
