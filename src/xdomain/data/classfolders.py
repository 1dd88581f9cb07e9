"""One class per subfolder (RaFD, or any set of domain folders) as a labelled set.

Two layouts:

- `root/train/<class>/` and `root/test/<class>/`: the split is the user's (RaFD as the official
  StarGAN code reads it with ImageFolder); the classes are the sorted subfolders of train/.
- `root/<class>/`, one folder per domain: every 10th file of a class (sorted, index % 10 == 9)
  is held out for test (a class of 2..9 files: its last one, so every class is tested), so the
  split is fixed by the files alone and needs no seed.

The label is the one-hot class (a categorical schema). The classes are named after the
folders: dataset = the root folder's name, attribute `class`; when they are exactly RaFD's 8
expressions the attribute is `expression` and the dataset `rafd`, the official RaFD model's
terms, so its checkpoint and targets like `expression=happy` fit.
"""

from __future__ import annotations

from pathlib import Path

import torch

from xdomain.data.celeba import kept_rows
from xdomain.data.folders import FolderDataset, domain_folders, image_files
from xdomain.data.labelled import LabelledSet, one_hot
from xdomain.errors import DataError, short
from xdomain.labels import (
    RAFD_EXPRESSIONS,
    case_clash,
    categorical_schema,
    listing,
    unspellable,
)

SPLITS = ("train", "test")
HOLDOUT_EVERY = 10  # layout (b): file index % 10 == 9 of each class is test


def _check_names(parent: Path, names: list[str]) -> None:
    """Every class is a value of a target (`class=<folder name>`): refuse a folder name that a
    target cannot spell, or two that it cannot tell apart, before any of them is used."""
    for name in names:
        why = unspellable(name)
        if why is not None:
            raise DataError(
                f"data: class folder {short(name)} in '{parent}' cannot be named in a target"
                f" class=<folder> ({why}) — rename the folder"
            )
    clash = case_clash(names)
    if clash is not None:
        raise DataError(
            f"data: class folders '{clash[0]}' and '{clash[1]}' in '{parent}' differ only in case,"
            " which a target (matched ignoring case) cannot tell apart — rename one folder"
        )


def _class_names(parent: Path) -> list[str]:
    names = [Path(p).name for p in domain_folders(parent)]
    _check_names(parent, names)
    return names


def _split_folders(base: Path, split: str) -> dict[str, list[Path]]:
    """Layout (a): class name -> sorted files of `base/<split>/<class>/`; test must have the
    classes of train, or the one-hot columns would mean different things in the two."""
    classes = _class_names(base / "train")
    have = _class_names(base / "test")
    if have != classes:
        missing = [c for c in classes if c not in have]
        extra = [c for c in have if c not in classes]
        parts = [f"lacks {listing(missing, limit=60)} of train/"] if missing else []
        parts += [f"has {listing(extra, limit=60)}, not in train/"] if extra else []
        raise DataError(
            f"data: '{base / 'test'}' {' and '.join(parts)} — give test/ one subfolder per"
            " class of train/"
        )
    return {c: image_files(base / split / c) for c in classes}


def _holdout(base: Path, split: str) -> dict[str, list[Path]]:
    """Layout (b): class name -> its files of `split` under the deterministic 10% hold-out."""
    out = {}
    for folder in (base / name for name in _class_names(base)):
        files = image_files(folder)
        if len(files) < 2:
            raise DataError(
                f"data: class folder '{folder}' has {len(files)} image — put >= 2 images in it"
                " (a class needs train and test images: every 10th file, or the last of fewer"
                " than 10, is held out)"
            )
        test = [f for i, f in enumerate(files) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
        if not test:
            test = files[-1:]  # < 10 images: the last one, so every class is in test
        held = set(test)
        out[folder.name] = test if split == "test" else [f for f in files if f not in held]
    return out


def load_class_folders(
    root: str,
    split: str,
    *,
    image_size: int,
    channels: int,
    on_bad_file: str,
    max_pixels: int,
    augment: bool,
    n: int | None,
    center_crop: int = 0,
) -> LabelledSet:
    """The `split` (train/test) of the class folders under `root`, ordered class by class, files
    sorted; `n` keeps the first n items. Bad files follow data.on_bad_file (skip drops them with
    their labels)."""
    if split not in SPLITS:
        raise DataError(f"data: folders: split={split!r} is not valid — use one of: train, test")
    base = Path(root).expanduser()
    has = [s for s in SPLITS if (base / s).is_dir()]
    if len(has) == 1:
        raise DataError(
            f"data: '{base}' has {has[0]}/ but no {'test' if has[0] == 'train' else 'train'}/"
            " — give it train/<class>/ and test/<class>/, or only one subfolder per class"
        )
    layout_a = bool(has)
    per_class = _split_folders(base, split) if layout_a else _holdout(base, split)
    classes = list(per_class)
    if len(classes) < 2:
        raise DataError(
            f"data: '{base}' has one class ({classes[0]}) — a labelled set needs >= 2 class"
            " subfolders"
        )
    if tuple(classes) == RAFD_EXPRESSIONS:  # both sorted: the official model's column order
        schema = categorical_schema("rafd", "expression", classes)
    else:
        schema = categorical_schema(base.resolve().name, "class", classes)
    files = [f for c in classes for f in per_class[c]]
    ids = torch.tensor([k for k, c in enumerate(classes) for _ in per_class[c]])
    if not files:
        raise DataError(f"data: the {split} split of '{base}' has no images — add images")
    images = FolderDataset(
        base,
        image_size=image_size,
        channels=channels,
        on_bad_file=on_bad_file,
        max_pixels=max_pixels,
        augment=augment,
        n=n,
        files=files,
        center_crop=center_crop,
    )
    labels = one_hot(ids[kept_rows(files, images.files)], len(classes))
    return LabelledSet(images, labels, schema)
