"""`DomainDataset`: one image domain, whatever its source, as `(x, label)` items.

Every source (rendered digits, scikit-learn digits, a user's folder) ends up as uint8 pixels at
the requested size and channel count; the float conversion to [-1, 1] happens per item so the
stored arrays stay 4x smaller. Augmentation is driven by an explicit `aug_seed` in the key instead
of global RNG state, so a sampler can make every epoch exactly reproducible, also across
DataLoader workers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from xdomain.errors import DataError

Key = int | tuple[int, int | None]


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Convert uint8 `(..., H, W, 1|3)` pixels to `channels` (1 or 3).

    Grey is replicated to RGB; RGB becomes luma with the ITU-R 601-2 weights that PIL's
    `convert("L")` uses, so embedded sources and user folders agree on what "grey" means.
    """
    have = pixels.shape[-1]
    if have == channels:
        return pixels
    if have == 1 and channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    if have == 3 and channels == 1:
        rgb = pixels.astype(np.uint32)
        luma = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000
        return luma.astype(np.uint8)[..., None]
    raise DataError(f"data: cannot convert {have}-channel pixels to channels={channels}")


def to_unit(pixels: Tensor) -> Tensor:
    """uint8 `(..., C, H, W)` -> float32 in [-1, 1] (0 -> -1, 255 -> 1)."""
    return pixels.to(torch.float32).div_(127.5).sub_(1.0)


def split_key(key: Key) -> tuple[int, int | None]:
    """Accept `index` or `(index, aug_seed)`; anything else is a caller bug worth a clear error."""
    if isinstance(key, tuple):
        if len(key) != 2:
            raise TypeError(f"dataset key must be index or (index, aug_seed), got {key!r}")
        index, aug_seed = key
        return int(index), None if aug_seed is None else int(aug_seed)
    return int(key), None


class DomainDataset(Dataset):
    """One domain of images in [-1, 1] with optional labels and per-item attributes.

    `images` holds every item, un-augmented, as uint8 `(N, C, S, S)`. Sources that cannot keep
    all pixels in memory (large folders) subclass this and override `_pixels`.
    """

    def __init__(
        self,
        name: str,
        images: Tensor | None,
        *,
        channels: int,
        image_size: int,
        length: int | None = None,
        labels: Tensor | None = None,
        num_classes: int = 0,
        attrs: dict[str, Tensor] | None = None,
        attr_names: dict[str, list[str]] | None = None,
        skipped: list[str] | None = None,
        augment: bool = False,
        classes: tuple[int, ...] | None = None,
    ) -> None:
        self.name = name
        self.images = images  # uint8 (N, C, S, S) or None when pixels are produced on demand
        self.channels = channels
        self.image_size = image_size
        self.labels = labels  # int64 (N,) or None
        self.num_classes = num_classes
        self.attrs = attrs or {}  # name -> int64 (N, ...)
        self.attr_names = attr_names or {}  # categorical attr -> names of its values
        self.skipped = skipped or []
        self.augment = augment
        # the label ids this domain draws from, when it is a subset of a larger label space
        # (e.g. fashion:sneaker,ankle_boot -> (7, 9) of num_classes=10); None: not recorded
        self.classes = classes
        self._length = len(images) if images is not None else int(length or 0)
        if images is not None:
            assert images.dtype == torch.uint8 and images.shape[1:] == (
                channels,
                image_size,
                image_size,
            ), f"{name}: images {tuple(images.shape)} {images.dtype}"
        if labels is not None:
            assert labels.shape == (self._length,), f"{name}: labels {tuple(labels.shape)}"

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return (
            f"DomainDataset({self.name!r}, n={len(self)}, channels={self.channels}, "
            f"image_size={self.image_size}, num_classes={self.num_classes}, "
            f"augment={self.augment})"
        )

    def __getitem__(self, key: Key) -> tuple[Tensor, int]:
        index, aug_seed = split_key(key)
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} items")
        index %= len(self)
        use_seed = aug_seed if self.augment else None
        x = to_unit(self._pixels(index, use_seed))  # (C, S, S)
        label = -1 if self.labels is None else int(self.labels[index])
        return x, label

    def _pixels(self, index: int, aug_seed: int | None) -> Tensor:
        """uint8 `(C, S, S)` for one item; embedded sources have no random part."""
        assert self.images is not None
        return self.images[index]

    def subset(self, keep: Tensor) -> DomainDataset:
        """The items where the boolean (N,) `keep` is true, with their labels and attributes."""
        assert self.images is not None, f"{self.name}: subset needs in-memory images"
        return DomainDataset(
            self.name,
            self.images[keep],
            channels=self.channels,
            image_size=self.image_size,
            labels=None if self.labels is None else self.labels[keep],
            num_classes=self.num_classes,
            attrs={k: v[keep] for k, v in self.attrs.items()},
            attr_names=self.attr_names,
            skipped=self.skipped,
            augment=self.augment,
            classes=self.classes,
        )

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All items un-augmented: float32 `(N, C, S, S)` in [-1, 1] and int64 `(N,)` labels."""
        if self.images is not None:
            x = to_unit(self.images)
        else:
            x = torch.stack([to_unit(self._pixels(i, None)) for i in range(len(self))])
        if self.labels is None:
            y = torch.full((len(self),), -1, dtype=torch.int64)
        else:
            y = self.labels.clone()
        return x, y
