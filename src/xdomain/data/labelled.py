"""Labelled data sets (StarGAN): images with a label vector under a `LabelSchema`.

A source spec names one labelled data set (`data.sources`, one entry per data set of the mask
vector):

- `digits-styled`        printed digits rendered with a background colour from a named palette
                         (categorical `bg`), `bold` and `italic` (binary): the style labels come
                         from the renderer, so they are exact (`xdomain.data.printed.render_styled`)
- `digits-handwritten`   scikit-learn's handwritten digits labelled by class (categorical `digit`)
- `celeba:<root>`        CelebA: `list_attr_celeba.txt` and its image folder, with the official
                         split rule (`xdomain.data.celeba`)
- `folders:<root>`       one class per subfolder: RaFD's `train/<class>/`, `test/<class>/` layout,
                         or one folder per domain with a deterministic held-out share
                         (`xdomain.data.classfolders`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from xdomain.data.dataset import DomainDataset, Key, split_key
from xdomain.data.printed import BG_PALETTE
from xdomain.errors import ConfigError, DataError
from xdomain.labels import LabelSchema, categorical_schema

DIGIT_NAMES = tuple(str(d) for d in range(10))
PREFIXES = ("celeba:", "folders:")
BUILT_IN = ("digits-styled", "digits-handwritten")


def styled_schema() -> LabelSchema:
    from xdomain.labels import Attribute

    return LabelSchema(
        "digits-styled",
        (
            Attribute("bg", "categorical", tuple(BG_PALETTE)),
            Attribute("bold", "binary"),
            Attribute("italic", "binary"),
        ),
    )


@dataclass
class LabelledSet(Dataset):
    """Items `(x, label)`: x (C, S, S) in [-1, 1] from `images`, label float (width,).

    `identity` is an optional int64 (N,) label that no schema holds but evaluation needs (the
    digit class of a styled digit: translation must keep it)."""

    images: DomainDataset
    labels: Tensor  # float32 (N, width)
    schema: LabelSchema
    identity: Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.labels.shape != (n, self.schema.width):
            raise DataError(
                f"data: {self.schema.dataset}: {n} images but labels of shape"
                f" {tuple(self.labels.shape)} (want ({n}, {self.schema.width}))"
            )

    @property
    def name(self) -> str:
        return self.schema.dataset

    @property
    def augment(self) -> bool:
        return bool(self.images.augment)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Key) -> tuple[Tensor, Tensor]:
        index, _ = split_key(key)
        x, _ = self.images[key]
        return x, self.labels[index % len(self)]

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All items un-augmented: float32 (N, C, S, S) and float32 (N, width) labels."""
        x, _ = self.images.tensors()
        return x, self.labels.clone()


def one_hot(index: Tensor, n: int) -> Tensor:
    return torch.nn.functional.one_hot(index.long(), n).float()


def load_labelled(source: str, split: str, **kw: Any) -> LabelledSet:
    """One labelled data set from its spec (see the module docstring). `kw`: image_size,
    channels, seed, on_bad_file, max_pixels, augment, n, celeba_attrs, center_crop (folders
    only: the built-in digits are rendered at their size)."""
    source = str(source)
    size, channels, n = kw["image_size"], kw["channels"], kw.get("n")
    if kw.get("center_crop") and not source.startswith(PREFIXES):
        raise ConfigError(
            f"data: center_crop={kw['center_crop']} does nothing for '{source}' (built-in sets"
            " are rendered at the image size); use 0 — a crop applies to celeba: and folders:"
        )
    if source == "digits-styled":
        from xdomain.data.printed import bg_classes, load_printed
        from xdomain.data.sources import _nchw

        r = load_printed(kw.get("seed", 0), split, n, size, styled=True)
        images = DomainDataset(
            source,
            _nchw(r.images, channels),
            channels=channels,
            image_size=size,
            labels=torch.from_numpy(r.labels.astype("int64")),
            num_classes=10,
        )
        bg = torch.from_numpy(bg_classes(r.bg))
        labels = torch.cat(
            [
                one_hot(bg, len(BG_PALETTE)),
                torch.from_numpy(r.bold.astype("float32"))[:, None],
                torch.from_numpy(r.italic.astype("float32"))[:, None],
            ],
            dim=1,
        )
        return LabelledSet(images, labels, styled_schema(), identity=images.labels)
    if source == "digits-handwritten":
        from xdomain.data.sources import load_domain

        images = load_domain(source, split, image_size=size, channels=channels, n=n)
        assert images.labels is not None
        schema = categorical_schema(source, "digit", DIGIT_NAMES)
        return LabelledSet(images, one_hot(images.labels, 10), schema)  # its class is its label
    names = ("image_size", "channels", "on_bad_file", "max_pixels", "augment", "n")
    common = {k: kw[k] for k in names} | {"center_crop": kw.get("center_crop", 0)}
    if source.startswith("celeba:"):
        from xdomain.data.celeba import load_celeba

        return load_celeba(source[len("celeba:") :], split, attrs=kw["celeba_attrs"], **common)
    if source.startswith("folders:"):
        from xdomain.data.classfolders import load_class_folders

        return load_class_folders(source[len("folders:") :], split, **common)
    raise DataError(
        f"data.sources: unknown labelled source '{source}'; valid: {', '.join(BUILT_IN)},"
        " celeba:<root> (list_attr_celeba.txt + images), folders:<root> (one subfolder per class)"
    )
