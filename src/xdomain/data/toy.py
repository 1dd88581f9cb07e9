"""`toy-gmm:*`: 2-D Gaussian mixtures for the DiscoGAN toy experiment (Kim et al. 2017, Fig. 4).

A spec names where the K equal-weight isotropic modes sit:

    toy-gmm:<shape><K>[:<key>=<value>,...]

    shape   line    K centres evenly on the segment from (-r, 0) to (r, 0)
            circle  K centres evenly on the circle of radius r, the first at angle 0
            arc     K centres evenly on an arc of radius r from angle 0 to `span` degrees
    keys    r (default 2), sigma (default 0.1), span (arc only, degrees, default 270)

e.g. `toy-gmm:line10`, `toy-gmm:circle10`, `toy-gmm:arc10:span=270,sigma=0.05`. The defaults
follow the well-known reproduction (radius 2, sigma 0.1); a 270-degree arc of 10 modes is the
12-position circle with a gap of that reproduction.

Items are `(x float32 (2,), mode index)`, like the image sources' `(image, label)`. Points depend
only on (spec, seed, split), so train and test are independent draws from the same mixture.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from xdomain.data.dataset import Key, split_key
from xdomain.errors import DataError

PREFIX = "toy-gmm:"
SHAPES = ("line", "circle", "arc")
DEFAULT_SIZE = {"train": 100_000, "test": 10_000}
SPLIT_ID = {"train": 0, "test": 1}
_KEYS = {"r": 2.0, "sigma": 0.1, "span": 270.0}
_GRAMMAR = (
    "toy-gmm:<shape><K>[:key=value,...] with shape one of line, circle, arc; K >= 1; keys r "
    "(radius / half-length, default 2), sigma (default 0.1), span (arc degrees, default 270); "
    "e.g. toy-gmm:line10, toy-gmm:circle10, toy-gmm:arc10:span=180"
)


@dataclass(frozen=True)
class Geometry:
    """A parsed spec: where the modes are and how wide they are."""

    shape: str
    k: int
    r: float = 2.0
    sigma: float = 0.1
    span: float = 270.0

    def centers(self) -> np.ndarray:
        """(K, 2) float64 mode centres."""
        i = np.arange(self.k, dtype=np.float64)
        if self.shape == "line":
            # a single mode sits at the origin rather than at -r
            x = np.linspace(-self.r, self.r, self.k) if self.k > 1 else np.zeros(1)
            return np.stack([x, np.zeros_like(x)], axis=1)
        if self.shape == "circle":
            theta = 2 * math.pi * i / self.k
        else:  # arc: both ends are modes, so K modes make K-1 gaps
            theta = np.radians(self.span) * (i / max(self.k - 1, 1))
        return self.r * np.stack([np.cos(theta), np.sin(theta)], axis=1)


def parse_spec(spec: str) -> Geometry:
    """`toy-gmm:arc10:span=180` -> Geometry('arc', 10, span=180.0); errors list the grammar."""
    if not spec.startswith(PREFIX):
        raise DataError(f"'{spec}' is not a toy spec; expected {_GRAMMAR}")
    body, _, opts = spec[len(PREFIX) :].partition(":")
    m = re.fullmatch(r"([a-z]+)(\d+)", body)
    if m is None or m.group(1) not in SHAPES or int(m.group(2)) < 1:
        raise DataError(f"data spec '{spec}': unknown toy geometry '{body}'; expected {_GRAMMAR}")
    values = dict(_KEYS)
    for item in filter(None, opts.split(",")):
        key, sep, raw = item.partition("=")
        if not sep or key not in _KEYS or (key == "span" and m.group(1) != "arc"):
            valid = "r, sigma, span" if m.group(1) == "arc" else "r, sigma"
            raise DataError(
                f"data spec '{spec}': bad option '{item}'; valid keys for {m.group(1)}: {valid}"
                f" (grammar: {_GRAMMAR})"
            )
        try:
            values[key] = float(raw)
        except ValueError:
            raise DataError(f"data spec '{spec}': '{key}' must be a number, got '{raw}'") from None
    if values["sigma"] <= 0 or values["r"] <= 0:
        raise DataError(f"data spec '{spec}': r and sigma must be > 0")
    return Geometry(m.group(1), int(m.group(2)), **values)


def _stream_seed(spec: str, split: str, seed: int) -> np.random.SeedSequence:
    # the spec text is hashed in so two geometries drawn with one seed share no noise
    digest = int.from_bytes(hashlib.sha256(spec.encode()).digest()[:4], "little")
    return np.random.SeedSequence([seed, SPLIT_ID[split], digest])


class ToyGMM(Dataset):
    """One split of a 2-D Gaussian mixture, held in memory as `points` (N, 2) and `labels` (N,)."""

    augment = False  # the sampler need not derive per-item augmentation seeds for points

    def __init__(self, spec: str, split: str, *, seed: int = 0, n: int | None = None) -> None:
        if split not in SPLIT_ID:
            raise DataError(f"toy split '{split}' is unknown; valid splits: train, test")
        self.geometry = parse_spec(spec)
        self.name = spec
        self.split = split
        g = self.geometry
        n = DEFAULT_SIZE[split] if n is None else int(n)
        if n < 1:
            raise DataError(f"{spec}: n must be >= 1, got {n}")
        rng = np.random.default_rng(_stream_seed(spec, split, seed))
        # balanced modes (up to one item), in random order so any prefix is balanced too
        labels = rng.permutation(np.arange(n) % g.k)
        centers = g.centers()
        pts = centers[labels] + g.sigma * rng.standard_normal((n, 2))
        self.centers = torch.from_numpy(centers).float()  # (K, 2)
        self.sigma = g.sigma
        self.num_classes = g.k
        self.points = torch.from_numpy(pts).float()  # (N, 2)
        self.labels = torch.from_numpy(labels).long()  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"ToyGMM({self.name!r}, split={self.split!r}, n={len(self)})"

    def __getitem__(self, key: Key) -> tuple[Tensor, int]:
        index, _ = split_key(key)  # no augmentation: the aug seed is accepted and ignored
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} items")
        return self.points[index], int(self.labels[index])

    def __getitems__(self, keys: list[Key]) -> list[tuple[Tensor, int]]:
        # DataLoader's batched fetch: one gather instead of 200 Python-level lookups per batch
        idx = torch.tensor([split_key(k)[0] for k in keys], dtype=torch.long)
        return list(zip(self.points[idx], self.labels[idx].tolist(), strict=True))

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All items at once: X (N, 2) float32, y (N,) int64."""
        return self.points, self.labels


def load_toy(spec: str, split: str, *, seed: int = 0, n: int | None = None) -> ToyGMM:
    """The `split` ('train' or 'test') of the mixture named by `spec` (see the module docstring)."""
    return ToyGMM(spec, split, seed=seed, n=n)
