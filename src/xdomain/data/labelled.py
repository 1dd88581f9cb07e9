"""Labelled data sets (StarGAN): images with a label vector under a `LabelSchema`.

`xdomain.data.sources.load_labelled` reads a spec; a spec names one labelled data set
(`data.sources`, one entry per data set of the mask vector):

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

import torch
from torch import Tensor
from torch.utils.data import Dataset

from xdomain.data.dataset import DomainDataset, Key, split_key
from xdomain.data.printed import BG_PALETTE
from xdomain.errors import DataError
from xdomain.labels import LabelSchema

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
