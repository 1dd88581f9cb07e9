"""Paired data (pix2pix, BicycleGAN): item i of domain a belongs with item i of domain b.

A spec (`data.paired`) names one paired set:

- `glyphs2digits`             a printed digit plate's ink mask -> the same plate in random ink and
                              plate colours (`xdomain.data.printed.render_glyph_pairs`): one shape,
                              many valid colourings, the multimodal task
- `edges2fashion[:<classes>]` edges of a Fashion-MNIST item (Sobel, thresholded, black on white as
                              edges2shoes) -> the item; the edges are computed once and cached
- a folder in the layout of the pix2pix data sets: `train/`, `test/` (or `val/`) of aligned
  `AB` images, A the left half and B the right (edges2shoes, facades, maps)
- a folder `trainA/ trainB/ testA/ testB/` whose files pair by name (`x.png` in trainA with
  `x.jpg` in trainB): paired folders

`data.direction=BtoA` swaps the two sides. Both sides of an item are drawn with one key
`(index, aug_seed)`, so they get one index and, for folders, one crop and one flip.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from xdomain.data.dataset import DomainDataset, Key, split_key
from xdomain.data.folders import UNPAIRED, FolderDataset, image_files
from xdomain.errors import DataError

BUILT_IN = ("glyphs2digits", "edges2fashion")
DIRECTIONS = ("AtoB", "BtoA")
EDGES_VERSION = 1  # bump when `sobel_edges` changes: it invalidates the cached edges
EDGE_THRESHOLD = 0.6  # Sobel magnitude (image in [0, 1]) above which a pixel is an edge


@dataclass
class PairedSet(Dataset):
    """Items `(a, a_label, b, b_label)`; a and b are `DomainDataset`s of equal length whose item
    i belong together. One key draws both, so both sides get the same augmentation."""

    a: DomainDataset
    b: DomainDataset
    name: str

    def __post_init__(self) -> None:
        if len(self.a) != len(self.b):
            raise DataError(
                f"data: paired set '{self.name}' has {len(self.a)} a items but {len(self.b)} b"
                " items; every a image needs its b image"
            )

    @property
    def augment(self) -> bool:
        return bool(self.a.augment)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, key: Key) -> tuple[Tensor, int, Tensor, int]:
        index, aug = split_key(key)
        xa, ya = self.a[(index, aug)]  # (C, S, S) in [-1, 1]
        xb, yb = self.b[(index, aug)]  # the same crop and flip, drawn from the same seed
        return xa, ya, xb, yb


def is_paired_spec(spec: str) -> bool:
    return spec in BUILT_IN or spec.startswith("edges2fashion:")


def load_paired(spec: str, split: str, *, direction: str = "AtoB", **kw: Any) -> PairedSet:
    """One split of a paired set (see the module docstring). `kw`: image_size, channels, seed,
    on_bad_file, max_pixels, augment, n."""
    if direction not in DIRECTIONS:
        raise DataError(f"data.direction={direction!r} is not valid — use AtoB or BtoA")
    spec = str(spec)
    if spec == "glyphs2digits":
        pair = _glyphs(split, **kw)
    elif spec == "edges2fashion" or spec.startswith("edges2fashion:"):
        pair = _edges2fashion(spec, split, **kw)
    else:
        pair = _folders(spec, split, **kw)
    if direction == "BtoA":
        pair = PairedSet(pair.b, pair.a, pair.name)
    return pair


def _in_memory(name: str, pixels: np.ndarray, labels: np.ndarray | None, kw: Any) -> DomainDataset:
    from xdomain.data.sources import _nchw

    c, s = kw["channels"], kw["image_size"]
    return DomainDataset(
        name,
        _nchw(pixels, c),
        channels=c,
        image_size=s,
        labels=None if labels is None else torch.from_numpy(labels.astype("int64")),
        num_classes=0 if labels is None else 10,
    )


def _glyphs(split: str, **kw: Any) -> PairedSet:
    from xdomain.data.printed import load_glyph_pairs

    _check_split(split)
    p = load_glyph_pairs(kw.get("seed", 0), split, kw.get("n"), kw["image_size"])
    # the digit class rides along on both sides: evaluation checks the digit survives
    a = _in_memory("glyphs2digits:masks", p.masks, p.labels, kw)
    b = _in_memory("glyphs2digits:digits", p.images, p.labels, kw)
    return PairedSet(a, b, "glyphs2digits")


def sobel_edges(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) grey images -> uint8 (N, S, S) edge maps: black edges on white, as the
    edges2shoes sketches. The magnitude of a 3x3 Sobel (image in [0, 1], zero padding: an
    item's silhouette against the black Fashion-MNIST background is an edge) over a fixed
    threshold."""
    x = torch.from_numpy(images).float()[:, None] / 255.0  # (N, 1, S, S)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    weight = torch.stack([kx, kx.t()])[:, None]  # (2, 1, 3, 3)
    g = torch.nn.functional.conv2d(x, weight, padding=1)  # (N, 2, S, S)
    edge = g.pow(2).sum(1).sqrt() > EDGE_THRESHOLD  # (N, S, S)
    return np.where(edge.numpy(), 0, 255).astype(np.uint8)


def _edges2fashion(spec: str, split: str, **kw: Any) -> PairedSet:
    from xdomain.data.fashion import fashion_dir, load_fashion
    from xdomain.io import verified, write_verified
    from xdomain.paths import cache_dir

    _check_split(split)
    classes = spec.split(":", 1)[1] if ":" in spec else ""
    fashion_spec = f"fashion:{classes}" if classes else "fashion"
    size = kw["image_size"]
    pixels, labels, _ = load_fashion(fashion_spec, split, kw.get("n"), size)  # (N, S, S, 1)
    stat = [
        (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(fashion_dir().iterdir())
    ]
    key = f"edges|v{EDGES_VERSION}|{fashion_spec}|{split}|{len(pixels)}|{size}|{stat}"
    path = cache_dir("data") / (
        f"edges2fashion-{split}-{len(pixels)}-{size}px-"
        f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    )
    edges = None
    if path.exists() and verified(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                edges = z["edges"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            warnings.warn(f"data: ignoring unreadable cache {path} ({exc})", stacklevel=2)
    if edges is None:
        edges = sobel_edges(pixels[..., 0])[..., None]  # (N, S, S, 1)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, edges=edges)

        try:
            write_verified(path, write)
        except OSError as exc:  # a full or read-only cache costs the next run a recompute
            warnings.warn(f"data: could not cache {path} ({exc})", stacklevel=2)
    a = _in_memory(f"edges2fashion:edges{':' + classes if classes else ''}", edges, labels, kw)
    b = _in_memory(fashion_spec, pixels, labels, kw)
    return PairedSet(a, b, spec)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise DataError(f"data: split={split!r} is not valid — use one of: train, test")


def _folder_kw(kw: Any) -> dict[str, Any]:
    names = ("image_size", "channels", "on_bad_file", "max_pixels", "augment", "n")
    return {k: kw[k] for k in names if k in kw}


def _folders(spec: str, split: str, **kw: Any) -> PairedSet:
    root = Path(spec).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data: paired source '{spec}' is neither a built-in paired set"
            f" ({', '.join(BUILT_IN)}, edges2fashion:<classes>) nor a folder"
        )
    if all((root / name).is_dir() for name in UNPAIRED):
        return _paired_folders(root, split, **kw)
    sub = root / split
    if split == "test" and not sub.is_dir():
        sub = root / "val"  # edges2shoes and maps ship train/ and val/
    if sub.is_dir():
        fk = _folder_kw(kw)
        a = FolderDataset(sub, half="left", **fk)
        b = FolderDataset(sub, half="right", **fk)
        if a.files != b.files:  # a file unreadable on one side only cannot happen; be sure
            raise DataError(f"data: '{sub}': the A and B halves disagree on the files kept")
        _check_aligned(a)
        return PairedSet(a, b, root.name)
    want = "train/ and test/ (or val/)" if split == "test" else f"{split}/"
    raise DataError(
        f"data: '{root}' holds no paired layout — expected {want} of aligned AB images (A left,"
        f" B right) or {', '.join(u + '/' for u in UNPAIRED)} with files paired by name"
    )


def _check_aligned(ds: FolderDataset) -> None:
    """An aligned AB file is twice as wide as high; a plain photo here is a layout mistake. Every
    file is checked (as decoded): one photo among the pairs would be split into garbage."""
    for path, (h, w) in zip(ds.files, ds.sizes, strict=True):
        if w < 2 * h * 0.9:
            raise DataError(
                f"data: '{path}' is {w}x{h}, not an aligned AB pair (A and B side by side, twice"
                " as wide as high); put such pairs in train/ and test/, or use trainA/ trainB/"
                " testA/ testB/ with files paired by name"
            )


def _paired_folders(root: Path, split: str, **kw: Any) -> PairedSet:
    a_dir, b_dir = root / f"{split}A", root / f"{split}B"

    def by_stem(folder: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for p in image_files(folder):
            stem = p.relative_to(folder).with_suffix("").as_posix()
            if stem in out:
                raise DataError(
                    f"data: '{folder}' holds both '{out[stem].name}' and '{p.name}'; paired files"
                    " match by name without extension, so keep one"
                )
            out[stem] = p
        return out

    files_a, files_b = by_stem(a_dir), by_stem(b_dir)
    lonely_a = sorted(set(files_a) - set(files_b))
    lonely_b = sorted(set(files_b) - set(files_a))
    if lonely_a or lonely_b:
        side, stem, other = (a_dir, lonely_a[0], b_dir) if lonely_a else (b_dir, lonely_b[0], a_dir)
        raise DataError(
            f"data: '{side / stem}.*' has no partner in {other.name}/ ({len(lonely_a)} a and"
            f" {len(lonely_b)} b files unmatched); paired folders match files by name without"
            " extension: add the partner or remove the file"
        )
    stems = sorted(files_a)
    fk = _folder_kw(kw) | {"on_bad_file": "error"}  # skipping one side would unpair the rest
    if kw.get("on_bad_file") == "skip":
        warnings.warn(
            "data.on_bad_file=skip does not apply to paired folders (skipping one side would"
            " unpair the rest); a bad file is an error",
            stacklevel=3,
        )
    a = FolderDataset(a_dir, files=[files_a[s] for s in stems], **fk)
    b = FolderDataset(b_dir, files=[files_b[s] for s in stems], **fk)
    return PairedSet(a, b, root.name)
