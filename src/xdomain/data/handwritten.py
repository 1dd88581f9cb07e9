"""`digits-handwritten`: the UCI 8x8 digits bundled with scikit-learn, made to look like MNIST.

MNIST is white ink on black with a margin around a ~20 px digit; the UCI images are 8x8 counts
(0..16) of a 32x32 bitmap. A smooth (bicubic) upscale into the central 3/4 of the image plus a
mild contrast curve turns the blocky counts into stroke-like digits, so the DTN SVHN -> MNIST
protocol has a handwritten target without a download.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_SEED = 20_170_707  # fixed: the split never depends on the run or data seed
N_TRAIN = 1400  # of 1797; the remaining 397 are the test split
INNER = 0.75  # the 8x8 digit fills the central 3/4 (24 px of 32), like MNIST's margin


@functools.lru_cache(maxsize=1)
def _uci() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) float32 in [0, 1] and (1797,) int64 labels, in scikit-learn's order."""
    from sklearn.datasets import load_digits  # imported lazily: sklearn is slow to import

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def split_indices(split: str) -> np.ndarray:
    """Indices into the 1797 UCI images for `split`, from a permutation with a fixed seed."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(1797)
    return perm[:N_TRAIN] if split == "train" else perm[N_TRAIN:]


def load_handwritten(split: str, n: int | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, S, S, 1) white-on-black digits and int64 (N,) labels for `split`."""
    images, labels = _uci()
    idx = split_indices(split)
    if n is not None:
        idx = idx[:n]
    inner = max(8, round(size * INNER))
    small = torch.from_numpy(images[idx])[:, None]  # (N, 1, 8, 8)
    up = F.interpolate(small, size=(inner, inner), mode="bicubic", align_corners=False)
    # Contrast curve: bicubic blobs have soft shoulders; MNIST strokes are solid with thin
    # anti-aliased edges. A smoothstep over [0.15, 0.75] sharpens edges without aliasing.
    t = ((up - 0.15) / 0.6).clamp(0.0, 1.0)
    up = t * t * (3.0 - 2.0 * t)  # (N, 1, inner, inner)
    lo = (size - inner) // 2
    canvas = torch.zeros(len(idx), 1, size, size)
    canvas[:, :, lo : lo + inner, lo : lo + inner] = up
    pixels = (canvas * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)  # (N, S, S, 1)
    return pixels.numpy(), labels[idx]
