"""User image folders: one folder = one domain, plus the layouts users already have.

Every file is decoded once, fully, when the dataset is built: a truncated JPEG found at step
40k of a run costs the run, found at construction it costs a one-line message. Small folders
keep the decoded pixels in memory so training never decodes again; large ones decode per item.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from xdomain.data.dataset import DomainDataset, to_channels
from xdomain.data.images import (
    IMAGE_EXTENSIONS,
    BadImage,
    bad_file_message,
    decode_file,
    fit_square,
)
from xdomain.errors import DataError

log = logging.getLogger(__name__)

ON_BAD_FILE = ("error", "skip")
MEMORY_BUDGET = 512 * 2**20  # bytes of decoded pixels kept in memory per dataset
LOAD_RATIO = 286 / 256  # CycleGAN: resize to 286, random crop 256
UNPAIRED = ("trainA", "trainB", "testA", "testB")


def image_files(folder: Path) -> list[Path]:
    """Image files in or below `folder`, sorted by relative path; hidden files are ignored.

    Hidden entries (".DS_Store", macOS "._x.png" resource forks, ".ipynb_checkpoints/") are
    never images the user meant to train on.
    """
    files = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def load_size(image_size: int) -> int:
    """Side of the square that augmentation crops from (CycleGAN's 286 for 256)."""
    return max(image_size + 1, round(image_size * LOAD_RATIO))


class FolderDataset(DomainDataset):
    """Images of one folder, validated at construction; labels unknown (-1)."""

    def __init__(
        self,
        folder: Path,
        *,
        image_size: int,
        channels: int,
        on_bad_file: str,
        max_pixels: int,
        augment: bool,
        n: int | None,
        files: list[Path] | None = None,
        center_crop: int = 0,
        half: str = "",
    ) -> None:
        # `files`: an explicit list, in its order (labelled sets whose index file names them)
        files = image_files(folder) if files is None else list(files)
        per_item = channels * (image_size**2 + (load_size(image_size) ** 2 if augment else 0))
        count = len(files) if n is None else min(n, len(files))
        in_memory = count * per_item <= MEMORY_BUDGET
        kept: list[Path] = []
        sizes: list[tuple[int, int]] = []  # (H, W) of each kept file as decoded
        skipped: list[str] = []
        base: list[np.ndarray] = []  # uint8 (C, S, S) each, when in memory
        big: list[np.ndarray] = []  # uint8 (C, L, L) each, when in memory and augmenting
        self.image_size, self.channels = image_size, channels
        self.max_pixels = max_pixels
        # the central crop x crop pixels first (StarGAN's CenterCrop: 178 for CelebA, 256 for
        # RaFD), then the usual fit to the square; 0: none
        self.center_crop = center_crop
        # aligned pairs (pix2pix's `AB` files: A left, B right): "left" or "right" keeps that
        # half of every image; "": the whole image
        if half not in ("", "left", "right"):
            raise ValueError(f"half must be '', 'left' or 'right', got {half!r}")
        self.half = half
        bar = tqdm(files, desc=f"checking {folder.name}", unit="img", delay=1.0, leave=False)
        for path in bar:
            if n is not None and len(kept) >= n:
                break
            try:
                pixels = self._read(path)
            except BadImage as exc:
                if on_bad_file == "error":
                    raise DataError(bad_file_message(path, exc.reason)) from None
                skipped.append(str(path))
                continue
            kept.append(path)
            sizes.append(pixels.shape[:2])
            if in_memory:
                b, g = self._prepare(pixels, augment)
                base.append(b)
                if g is not None:
                    big.append(g)
        bar.close()
        if skipped:
            log.warning(
                "data: skipped %d bad image file(s) in '%s' (data.on_bad_file=skip); the first: %s",
                len(skipped),
                folder,
                skipped[0],
            )
        if not kept:
            what = f"all {len(skipped)} image files are unreadable" if skipped else "no images"
            exts = " ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
            raise DataError(f"data: folder '{folder}' has {what} — put images ({exts}) in it")
        self.files = kept
        self.sizes = sizes
        self._big = torch.from_numpy(np.stack(big)) if big else None  # uint8 (N, C, L, L)
        super().__init__(
            str(folder),
            torch.from_numpy(np.stack(base)) if in_memory else None,  # uint8 (N, C, S, S)
            channels=channels,
            image_size=image_size,
            length=len(kept),
            skipped=skipped,
            augment=augment,
        )

    def _read(self, path: Path) -> np.ndarray:
        """Decode `path` (`decode_file`) and check it fits this dataset, or raise `BadImage`."""
        pixels = decode_file(path, max_pixels=self.max_pixels)
        if self.half and pixels.shape[1] < 2:
            raise BadImage(
                f"image is {pixels.shape[1]} px wide, so its A and B halves (A left, B right)"
                " would be 0 px wide"
            )
        return pixels

    def _prepare(self, pixels: np.ndarray, augment: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Decoded (H, W, 1|3) -> centred (C, S, S) and, to augment from, (C, L, L)."""
        pixels = to_channels(pixels, self.channels)
        if self.half:
            w = pixels.shape[1] // 2
            pixels = pixels[:, :w] if self.half == "left" else pixels[:, w : 2 * w]
        if self.center_crop:
            h, w = pixels.shape[:2]
            ch, cw = min(self.center_crop, h), min(self.center_crop, w)
            top, left = (h - ch) // 2, (w - cw) // 2
            pixels = pixels[top : top + ch, left : left + cw]
        base = fit_square(pixels, self.image_size).transpose(2, 0, 1)
        if not augment:
            return np.ascontiguousarray(base), None
        big = fit_square(pixels, load_size(self.image_size)).transpose(2, 0, 1)
        return np.ascontiguousarray(base), np.ascontiguousarray(big)

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        path = self.files[index]
        try:
            pixels = self._read(path)
        except BadImage as exc:  # the file changed since construction
            raise DataError(bad_file_message(path, exc.reason)) from None
        return self._prepare(pixels, self.augment)

    def _pixels(self, index: int, aug_seed: int | None) -> Tensor:
        """uint8 (C, S, S): centred, or flipped and randomly cropped as drawn from `aug_seed`."""
        if aug_seed is None:
            if self.images is not None:
                return self.images[index]
            return torch.from_numpy(self._decode(index)[0])
        if self._big is not None:
            big = self._big[index]
        else:
            decoded = self._decode(index)[1]
            assert decoded is not None
            big = torch.from_numpy(decoded)
        g = torch.Generator().manual_seed(aug_seed)
        span = big.shape[-1] - self.image_size + 1
        flip = bool(torch.rand((), generator=g) < 0.5)
        top = int(torch.randint(0, span, (), generator=g))
        left = int(torch.randint(0, span, (), generator=g))
        crop = big[:, top : top + self.image_size, left : left + self.image_size]
        return crop.flip(-1) if flip else crop


def folder_layout(root: str | Path) -> dict[str, str]:
    """The unpaired layout `root/{trainA,trainB,testA,testB}` -> those four folder paths."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data: '{base}' is not a folder — expected {'/, '.join(UNPAIRED)}/ in it")
    missing = [name for name in UNPAIRED if not (base / name).is_dir()]
    if missing:
        raise DataError(
            f"data: '{base}' lacks {', '.join(m + '/' for m in missing)} — the unpaired layout "
            f"needs {', '.join(u + '/' for u in UNPAIRED)} under it (testA/testB may hold a few "
            "held-out images of each domain)"
        )
    return {name: str(base / name) for name in UNPAIRED}


def _has_image(folder: Path) -> bool:
    return any(True for _ in image_files(folder))


def domain_folders(root: str | Path) -> list[str]:
    """One-folder-per-domain layout: the sorted subfolders of `root` that contain images."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data: '{base}' is not a folder — expected one subfolder per domain")
    found = [
        str(p)
        for p in sorted(base.iterdir())
        if p.is_dir() and not p.name.startswith(".") and _has_image(p)
    ]
    if not found:
        raise DataError(
            f"data: '{base}' has no subfolders with images — create one subfolder per domain "
            "(e.g. photo/, painting/) holding its images"
        )
    return found
