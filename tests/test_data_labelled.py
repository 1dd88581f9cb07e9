"""Labelled folders: CelebA's attribute file and official split, and one class per subfolder."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from xdomain.data.celeba import load_celeba, split_lines
from xdomain.data.classfolders import load_class_folders
from xdomain.data.sources import load_labelled
from xdomain.errors import DataError
from xdomain.labels import RAFD_EXPRESSIONS

torch.set_num_threads(1)

NAMES = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Male"]
NAMES += ["Smiling", "Young"]
KW: dict[str, Any] = {
    "image_size": 16,
    "channels": 1,
    "on_bad_file": "error",
    "max_pixels": 10_000_000,
    "augment": False,
    "n": None,
}


def _png(path: Path, level: int) -> Path:
    """A 20x24 RGB file of one colour whose red and green are `level`: the grey it turns into
    identifies the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((24, 20, 3), np.uint8)
    pixels[..., :2] = level
    Image.fromarray(pixels).save(path)
    return path


def _grey(level: int) -> float:
    """The [-1, 1] value of `_png(level)` at channels=1 (ITU-R 601 luma of (l, l, 0))."""
    return ((level * 299 + level * 587 + 500) // 1000) / 127.5 - 1.0


def _levels(ds: Any) -> list[float]:
    x, _ = ds.tensors()
    return [float(v) for v in x[:, 0, 8, 8]]


def _rows(count: int) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(0)
    return [
        (f"{i:06d}.jpg", [int(v) for v in rng.choice([1, -1], len(NAMES))]) for i in range(count)
    ]


def _celeba(
    root: Path, rows: list[tuple[str, list[int]]], *, images: str = "images", make: Any = None
) -> Path:
    """A fake CelebA root: the attribute file (double spaces, as the real one) and an image
    per row (level = row number * 8 % 256), or only for the file names in `make`."""
    lines = [str(len(rows)), " ".join(NAMES)]
    lines += [name + "  " + " ".join(f"{v:2d}" for v in vals) for name, vals in rows]
    root.mkdir(parents=True, exist_ok=True)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / images).mkdir(exist_ok=True)
    for i, (name, _) in enumerate(rows):
        if make is None or name in make:
            _png(root / images / name, i * 8 % 256)
    return root


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg


# ----------------------------------------------------------------------------- celeba split
@pytest.mark.parametrize("count", [30, 2003])
def test_split_lines_is_the_official_shuffle(count: int) -> None:
    lines = [f"{i:06d}.jpg 1 -1" for i in range(count)]
    state = random.getstate()
    try:
        official = list(lines)
        random.seed(1234)
        random.shuffle(official)
    finally:
        random.setstate(state)
    train, test = split_lines(lines)
    assert test + train == official
    assert test == [ln for i, ln in enumerate(official) if (i + 1) < 2000]
    assert len(test) == min(count, 1999) and len(train) == max(0, count - 1999)


def test_celeba_labels_columns_and_pixels(tmp_path: Path) -> None:
    rows = _rows(30)
    root = _celeba(tmp_path / "celeba", rows)
    ds = load_celeba(str(root), "test", attrs=[], **KW)  # < 2000 lines: all of them are test
    assert ds.name == "celeba"
    assert [(a.name, a.kind, a.values) for a in ds.schema.attributes] == [
        ("hair", "group", ("black", "blond", "brown")),
        ("male", "binary", ()),
        ("young", "binary", ()),
    ]
    _, order = split_lines(list(range(30)))
    cols = [NAMES.index(c) for c in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")]
    want = torch.tensor([[float(rows[i][1][c] == 1) for c in cols] for i in order])
    assert torch.equal(ds.labels, want)
    assert ds[0][0].shape == (1, 16, 16) and ds[0][1].shape == (5,)
    assert _levels(ds) == pytest.approx([_grey(i * 8) for i in order], abs=1.5 / 127.5)
    three = load_celeba(str(root), "test", attrs=["Smiling", "Gray_Hair"], **{**KW, "n": 4})
    assert [a.name for a in three.schema.attributes] == ["smiling", "gray_hair"]
    assert len(three) == 4 and torch.equal(
        three.labels, torch.tensor([[float(rows[i][1][c] == 1) for c in (6, 4)] for i in order[:4]])
    )
    rgb = load_celeba(str(root), "test", attrs=["Male"], **{**KW, "channels": 3, "n": 2})
    assert rgb[0][0].shape == (3, 16, 16)


def test_celeba_train_split_and_n_cap(tmp_path: Path) -> None:
    rows = _rows(2003)
    train, test = split_lines(list(range(2003)))
    make = {rows[i][0] for i in train + test[:3]}  # the rest are never opened
    root = _celeba(tmp_path / "c", rows, images="img_align_celeba", make=make)
    ds = load_celeba(str(root), "train", attrs=["Male"], **KW)
    assert len(ds) == 4
    assert _levels(ds) == pytest.approx([_grey(i * 8 % 256) for i in train], abs=1.5 / 127.5)
    assert ds.labels[:, 0].tolist() == [float(rows[i][1][5] == 1) for i in train]
    capped = load_celeba(str(root), "test", attrs=["Male"], **{**KW, "n": 3})
    assert _levels(capped) == pytest.approx([_grey(i * 8 % 256) for i in test[:3]], abs=0.02)


def test_celeba_errors(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    root.mkdir()
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "test", attrs=[], **KW)
    _one_line(exc, str(root / "list_attr_celeba.txt"), "not found")
    (root / "list_attr_celeba.txt").write_text("1\n" + " ".join(NAMES) + "\n")
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "test", attrs=[], **KW)
    _one_line(exc, "img_align_celeba", "images")
    rows = _rows(30)
    _celeba(root, rows)
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "test", attrs=["Male", "Bald"], **KW)
    _one_line(exc, "Bald", "data.celeba_attrs", " ".join(NAMES))
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "train", attrs=[], **KW)  # 30 lines: all test
    _one_line(exc, "train split", "list_attr_celeba.txt", "empty")
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "val", attrs=[], **KW)
    _one_line(exc, "val", "train, test")
    text = (root / "list_attr_celeba.txt").read_text().splitlines()
    (root / "list_attr_celeba.txt").write_text("\n".join([*text[:7], "000005.jpg 1 -1", *text[8:]]))
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "test", attrs=[], **KW)
    _one_line(exc, "line 8", "malformed", "list_attr_celeba.txt")


def test_celeba_missing_and_bad_images(tmp_path: Path) -> None:
    rows = _rows(30)
    root = _celeba(tmp_path / "celeba", rows)
    _, order = split_lines(list(range(30)))
    gone, bad = rows[order[2]][0], rows[order[5]][0]
    (root / "images" / gone).unlink()
    (root / "images" / bad).write_bytes(b"not an image")
    with pytest.raises(DataError) as exc:
        load_celeba(str(root), "test", attrs=["Male"], **KW)
    _one_line(exc, str(root / "images" / gone), "missing", "on_bad_file=skip")
    ds = load_celeba(str(root), "test", attrs=["Male"], **{**KW, "on_bad_file": "skip"})
    keep = [i for k, i in enumerate(order) if k not in (2, 5)]
    assert len(ds) == 28
    assert _levels(ds) == pytest.approx([_grey(i * 8) for i in keep], abs=1.5 / 127.5)
    assert ds.labels[:, 0].tolist() == [float(rows[i][1][5] == 1) for i in keep]
    n5 = load_celeba(str(root), "test", attrs=["Male"], **{**KW, "on_bad_file": "skip", "n": 5})
    assert _levels(n5) == pytest.approx([_grey(i * 8) for i in keep[:5]], abs=1.5 / 127.5)


# ----------------------------------------------------------------------------- class folders
def _classes(root: Path, counts: dict[str, int]) -> dict[str, list[int]]:
    """`root/<class>/<k>.png` for each class; returns each class's file levels in order."""
    levels, level = {}, 0
    for name, count in counts.items():
        levels[name] = []
        for k in range(count):
            _png(root / name / f"{k:03d}.png", level)
            levels[name].append(level)
            level += 4
    return levels


def test_class_folders_holdout(tmp_path: Path) -> None:
    root = tmp_path / "seasons"
    levels = _classes(root, {"autumn": 21, "summer": 2, "winter": 5})
    test = load_class_folders(str(root), "test", **KW)
    train = load_class_folders(str(root), "train", **KW)
    assert test.name == train.name == "seasons"
    assert test.schema.attributes[0].name == "class"
    assert test.schema.attributes[0].values == ("autumn", "summer", "winter")
    held = [levels["autumn"][9], levels["autumn"][19], levels["summer"][1], levels["winter"][4]]
    assert _levels(test) == pytest.approx([_grey(v) for v in held], abs=1.5 / 127.5)
    assert test.labels.argmax(1).tolist() == [0, 0, 1, 2]
    assert len(train) == 28 - 4 and train.labels.sum(0).tolist() == [19.0, 1.0, 4.0]
    rest = [v for c in levels.values() for v in c if v not in held]
    assert _levels(train) == pytest.approx([_grey(v) for v in rest], abs=1.5 / 127.5)
    capped = load_class_folders(str(root), "train", **{**KW, "n": 20})
    assert len(capped) == 20 and capped.labels.argmax(1).tolist() == [0] * 19 + [1]


def test_class_folders_rafd_layout_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "RaFD"
    for split, count in (("train", 2), ("test", 1)):
        _classes(root / split, dict.fromkeys(RAFD_EXPRESSIONS, count))
    test = load_class_folders(str(root), "test", **KW)
    assert test.name == "rafd" and test.schema.attributes[0].name == "expression"
    assert test.schema.attributes[0].values == RAFD_EXPRESSIONS
    assert len(test) == 8 and test.labels.argmax(1).tolist() == list(range(8))
    train = load_class_folders(str(root), "train", **{**KW, "channels": 3})
    assert len(train) == 16 and train[0][0].shape == (3, 16, 16)
    _png(root / "train" / "bored" / "000.png", 10)
    with pytest.raises(DataError) as exc:
        load_class_folders(str(root), "test", **KW)
    _one_line(exc, str(root / "test"), "bored", "test/")
    partial = tmp_path / "half"
    _classes(partial / "train", {"a": 2, "b": 2})
    with pytest.raises(DataError) as exc:
        load_class_folders(str(partial), "train", **KW)
    _one_line(exc, str(partial), "no test/")
    few = tmp_path / "few"
    _classes(few, {"a": 3, "b": 1})
    with pytest.raises(DataError) as exc:
        load_class_folders(str(few), "train", **KW)
    _one_line(exc, str(few / "b"), ">= 2 images")
    seven = tmp_path / "seven"  # 7 of RaFD's 8: a plain class set, not rafd
    _classes(seven, dict.fromkeys(RAFD_EXPRESSIONS[:7], 2))
    assert load_class_folders(str(seven), "test", **KW).name == "seven"


def test_class_folders_skip_keeps_labels_aligned(tmp_path: Path) -> None:
    root = tmp_path / "ab"
    levels = _classes(root, {"a": 3, "b": 3})
    (root / "a" / "001.png").write_bytes(b"broken")
    with pytest.raises(DataError) as exc:
        load_class_folders(str(root), "train", **KW)
    _one_line(exc, str(root / "a" / "001.png"), "on_bad_file=skip")
    ds = load_class_folders(str(root), "train", **{**KW, "on_bad_file": "skip"})
    assert ds.labels.argmax(1).tolist() == [0, 1, 1]
    want = [levels["a"][0], levels["b"][0], levels["b"][1]]
    assert _levels(ds) == pytest.approx([_grey(v) for v in want], abs=1.5 / 127.5)


# ----------------------------------------------------------------------------- dispatcher
def test_load_labelled_dispatches(tmp_path: Path) -> None:
    common = {**KW, "seed": 0, "celeba_attrs": ["Blond_Hair", "Male"]}
    root = _celeba(tmp_path / "celeba", _rows(30))
    ds = load_labelled(f"celeba:{root}", "test", **common)
    assert ds.schema.describe() == "blond_hair (0|1), male (0|1)" and len(ds) == 30
    x, y = ds[(3, 7)]
    assert x.shape == (1, 16, 16) and y.shape == (2,)
    folders = tmp_path / "pets"
    _classes(folders, {"cat": 10, "dog": 10})
    ds = load_labelled(f"folders:{folders}", "train", **{**common, "augment": True, "n": 5})
    assert ds.name == "pets" and len(ds) == 5 and ds.augment
    assert ds[(0, 1)][0].shape == (1, 16, 16)
