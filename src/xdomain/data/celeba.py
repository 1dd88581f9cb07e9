"""CelebA for StarGAN: `list_attr_celeba.txt` and its image folder, with the official split.

The split is the one of yunjey/stargan (`data_loader.py`, `CelebA.preprocess`): the data lines
are shuffled with `random.seed(1234)` and the first 1999 of them are the test set, the rest
train. Reproducing it exactly keeps our numbers comparable with the paper's and lets an official
checkpoint be evaluated on images it never trained on.

Geometry: the official transform is CenterCrop(178) then Resize(128). Our `fit_square` rule
(resize the shorter side to the size, then centre crop) is the same on CelebA's aligned 178x218
images: 178 is the shorter side, so both keep the centred 178x178 square, scaled to the size. No
extra crop option is needed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import torch

from xdomain.data.folders import FolderDataset
from xdomain.data.labelled import LabelledSet
from xdomain.errors import ConfigError, DataError, listing, short
from xdomain.labels import CELEBA_HAIR, CELEBA_PAPER_ATTRS, celeba_schema, unspellable

log = logging.getLogger(__name__)

ATTR_FILE = "list_attr_celeba.txt"
IMAGE_DIRS = ("images", "img_align_celeba")
SPLIT_SEED = 1234
TEST_COUNT = 1999  # the official keeps line i (0-based, shuffled) for test when i + 1 < 2000
SPLITS = ("train", "test")
T = TypeVar("T")


def split_lines(lines: Sequence[T]) -> tuple[list[T], list[T]]:
    """The official split of the data lines (the file without its 2 header lines) -> (train,
    test). `random.Random(1234).shuffle` draws the same permutation as `random.seed(1234);
    random.shuffle`, without touching the global RNG; the permutation depends only on the count,
    so records parsed from the lines shuffle exactly as the lines do."""
    order = list(lines)
    random.Random(SPLIT_SEED).shuffle(order)
    return order[TEST_COUNT:], order[:TEST_COUNT]


def kept_rows(wanted: Sequence[Path], kept: Sequence[Path]) -> list[int]:
    """Indices into `wanted` of the files a `FolderDataset` kept (an ordered subsequence of
    `wanted`: skipped bad files drop out, `n` cuts the tail), so labels follow their images."""
    rows, j = [], 0
    for i, path in enumerate(wanted):
        if j < len(kept) and path == kept[j]:
            rows.append(i)
            j += 1
    assert j == len(kept), "FolderDataset kept a file it was not given"
    return rows


def _image_dir(base: Path) -> Path:
    for name in IMAGE_DIRS:
        if (base / name).is_dir():
            return base / name
    raise DataError(
        f"data: celeba: no image folder in '{base}' — put the aligned images in"
        f" {base / IMAGE_DIRS[0]}/ or {base / IMAGE_DIRS[1]}/"
    )


def _read_attrs(path: Path) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """The header's attribute names and (line number, file name, values) per data line."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines: an editor's, not data (the official would crash)
    if len(lines) < 2:
        raise DataError(
            f"data: celeba: '{path}' has {len(lines)} line(s) — want a count, the attribute"
            " names, then one 'file v1 ... vK' line per image"
        )
    names = lines[1].split()
    records = []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1", "0") for v in parts[1:]):
            raise DataError(
                f"data: celeba: '{path}' line {number} is malformed — want a file name and"
                f" {len(names)} values of 1 or -1 separated by spaces"
            )
        records.append((number, parts[0], parts[1:]))
    count = lines[0].strip()
    if not count.isdecimal() or int(count) != len(records):
        said = f"says {int(count)} images" if count.isdecimal() else f"is {short(count, 30)}"
        raise DataError(
            f"data: celeba: '{path}' line 1 {said} but {len(records)} data lines follow — line 1"
            f" must count them: restore the file if it is cut short, else set line 1 to"
            f" {len(records)}"
        )
    return names, records


def _check_selected(path: Path, names: list[str], selected: list[str]) -> None:
    """The selected columns exist once in the header and each becomes a target attribute of its
    own that a target can spell (`male=1`; the hair colours together `hair=blond`)."""
    for i, a in enumerate(selected):
        if a in selected[:i]:
            raise ConfigError(f"data.celeba_attrs names {short(a, 40)} twice; list each once")
    unknown = [a for a in selected if a not in names]
    if unknown:
        raise DataError(
            f"data.celeba_attrs: unknown attribute(s) {listing(unknown, limit=60)} in '{path}';"
            f" valid: {listing(names, ' ')}"
        )
    hair = [a for a in selected if a in CELEBA_HAIR]
    target: dict[str, str] = {}  # target attribute name -> the column it comes from
    for a in selected:
        if names.count(a) > 1:
            raise DataError(
                f"data: celeba: '{path}' line 2 names the attribute {short(a, 40)} twice, so its"
                " column is ambiguous — keep one of the two columns"
            )
        why = unspellable(a)
        if why is not None:
            raise DataError(
                f"data: celeba: attribute {short(a, 40)} (line 2 of '{path}') cannot be named in"
                f" a target ({why}) — rename it in the file"
            )
        if a in hair and len(hair) > 1 and a != hair[0]:
            continue  # one group `hair` of all selected hair colours
        name = "hair" if a in hair and len(hair) > 1 else a.lower()
        if name in target:
            raise DataError(
                f"data.celeba_attrs: {target[name]} and {a} of '{path}' would both be the target"
                f" attribute '{name}' — select one of them"
            )
        target[name] = a


def load_celeba(
    root: str,
    split: str,
    *,
    attrs: Sequence[str],
    image_size: int,
    channels: int,
    on_bad_file: str,
    max_pixels: int,
    augment: bool,
    n: int | None,
    center_crop: int = 0,
) -> LabelledSet:
    """CelebA's `split` (train/test) under `root` with labels for `attrs` (file column names;
    empty: the paper's five). `n` keeps the first n items of the split. A listed image that is
    missing is an error, or with on_bad_file=skip dropped with its labels, like a bad file."""
    if split not in SPLITS:
        raise DataError(f"data: celeba: split={split!r} is not valid — use one of: train, test")
    base = Path(root).expanduser()
    attr_path = base / ATTR_FILE
    if not attr_path.is_file():
        raise DataError(
            f"data: celeba: '{attr_path}' not found — put CelebA's {ATTR_FILE} (from Anno/) in"
            f" '{base}' next to its image folder"
        )
    image_dir = _image_dir(base)
    names, records = _read_attrs(attr_path)
    selected = [str(a) for a in attrs] or list(CELEBA_PAPER_ATTRS)
    _check_selected(attr_path, names, selected)
    schema, columns = celeba_schema(selected)
    index = [names.index(c) for c in columns]
    chosen = split_lines(records)[0 if split == "train" else 1]
    if not chosen:
        raise DataError(
            f"data: celeba: the {split} split of '{attr_path}' is empty ({len(records)} data"
            f" lines; the official split keeps the first {TEST_COUNT} shuffled ones for test)"
            " — use the full attribute file"
        )
    present, missing = [], 0
    for record in chosen:
        if n is not None and on_bad_file == "error" and len(present) >= n:
            break  # only the first n are used; FolderDataset stops there as well
        if (image_dir / record[1]).is_file():
            present.append(record)
        elif on_bad_file == "error":
            raise DataError(
                f"data: celeba: '{image_dir / record[1]}' (line {record[0]} of {ATTR_FILE})"
                " is missing — extract all images there, or set data.on_bad_file=skip to skip"
                " missing and bad files"
            )
        else:
            missing += 1
    if missing:
        log.warning("data: celeba: skipped %d missing image(s) of %s", missing, image_dir)
    if not present:
        raise DataError(
            f"data: celeba: none of the {split} images of '{attr_path}' is in '{image_dir}'"
            " — extract the images there"
        )
    files = [image_dir / r[1] for r in present]
    images = FolderDataset(
        image_dir,
        image_size=image_size,
        channels=channels,
        on_bad_file=on_bad_file,
        max_pixels=max_pixels,
        augment=augment,
        n=n,
        files=files,
        center_crop=center_crop,
    )
    values = [[r[2][i] == "1" for i in index] for r in present]
    labels = torch.tensor(values, dtype=torch.float32)[kept_rows(files, images.files)]
    return LabelledSet(images, labels.reshape(len(images), schema.width), schema)
