"""`fashion`: Fashion-MNIST from local IDX files, whole or as a subset of its 10 classes.

The files come from Debian's `dataset-fashion-mnist` package (`/usr/share/datasets/fashion-mnist`)
or from any folder named by `XDOMAIN_FASHION_MNIST` holding the same four files, gzipped or not.
Nothing is downloaded. The IDX format is parsed by hand (a 4-byte magic, one big-endian uint32
per dimension, then the raw uint8 data), so no extra dependency is needed and a truncated or
foreign file is caught before it becomes a misshapen array.

Spec: `fashion` (all classes) or `fashion:<class>[,<class>...]`. Items keep their original
label ids (0..9), so one judge trained on all ten classes can score any subset domain.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xdomain.errors import DataError

# The official label order: the id of a class is its index here.
FASHION_CLASSES: tuple[str, ...] = (
    "t_shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
ENV_VAR = "XDOMAIN_FASHION_MNIST"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
# split -> (images file, labels file), without the optional ".gz"
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
NATIVE = 28  # Fashion-MNIST images are 28x28
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"
_RESIZE_CHUNK = 8192  # images per interpolate call: bounds the float32 peak for the 60k train set

HOW_TO_GET = (
    "get the files with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, as root) or "
    "download the four files from https://github.com/zalandoresearch/fashion-mnist into a "
    f"folder and set {ENV_VAR} to it"
)


def is_fashion_spec(spec: str) -> bool:
    """True for `fashion` and `fashion:...` (valid or not: parsing reports what is wrong)."""
    return spec == "fashion" or spec.startswith("fashion:")


def parse_fashion_spec(spec: str) -> tuple[int, ...]:
    """`fashion` -> (0, ..., 9); `fashion:sneaker,Ankle-Boot` -> (7, 9): sorted unique label ids.

    Names are matched case-insensitively with `-` read as `_`.
    """
    if spec == "fashion":
        return tuple(range(len(FASHION_CLASSES)))
    if not spec.startswith("fashion:"):
        raise DataError(f"data: '{spec}' is not a fashion spec — use fashion or fashion:<classes>")
    names = [part.strip().lower().replace("-", "_") for part in spec[len("fashion:") :].split(",")]
    valid = ", ".join(FASHION_CLASSES)
    if not any(names):
        raise DataError(f"data: '{spec}' names no class — list some of: {valid}")
    ids = set()
    for name in names:
        if name not in FASHION_CLASSES:
            raise DataError(f"data: unknown fashion class '{name}' in '{spec}' — valid: {valid}")
        ids.add(FASHION_CLASSES.index(name))
    return tuple(sorted(ids))


def fashion_dir() -> Path:
    """The folder the files are read from: $XDOMAIN_FASHION_MNIST, else Debian's location."""
    override = os.environ.get(ENV_VAR, "").strip()
    return Path(override).expanduser() if override else DEFAULT_DIR


def find_file(folder: Path, stem: str) -> Path | None:
    """`stem.gz` or plain `stem` in `folder` (the gzipped name first, as distributed); else None."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _require(folder: Path, stem: str) -> Path:
    path = find_file(folder, stem)
    if path is None:
        where = f"{folder} (from {ENV_VAR})" if os.environ.get(ENV_VAR, "").strip() else folder
        raise DataError(
            f"data: Fashion-MNIST file {stem}[.gz] is missing from {where} — {HOW_TO_GET}"
        )
    return path


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name says)."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # truncated or corrupt stream
        raise DataError(
            f"data: {path} is not a readable gzip file ({e}) — replace it with an intact copy; "
            f"{HOW_TO_GET}"
        ) from None


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """A uint8 IDX file as an array of its declared shape; `magic` and `ndim` are what we expect.

    Layout: magic (big-endian int32: 0, 0, type 0x08 = ubyte, ndim), ndim big-endian uint32
    sizes, then prod(sizes) bytes. The byte count must match exactly: a short file is truncated,
    a long one is not what its header says.
    """
    data = _read_bytes(path)
    fix = f"replace it with an intact Fashion-MNIST file; {HOW_TO_GET}"
    header = 4 + 4 * ndim
    # the magic first: a foreign file is named as such even when it is shorter than our header
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found is not None and found != magic:
        raise DataError(
            f"data: {path} is not an IDX file of the expected kind (magic {found}, expected "
            f"{magic}) — {fix}"
        )
    if len(data) < header:
        raise DataError(f"data: {path} is too short for an IDX header ({len(data)} bytes) — {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)  # Python ints: a foreign header cannot overflow
    if len(data) != expected:
        raise DataError(
            f"data: {path} holds {len(data)} bytes but its header {dims} says {expected} "
            f"(truncated?) — {fix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _parse_pair(
    images_key: tuple[str, int, int], labels_key: tuple[str, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Parsed (N, 28, 28) uint8 images and (N,) int64 labels of one split.

    Keyed by (path, size, mtime) so that a replaced file is read again while repeated loads of
    the 26 MB train file within one process are parsed once.
    """
    images_path, labels_path = Path(images_key[0]), Path(labels_key[0])
    images = read_idx(images_path, IMAGES_MAGIC, 3)
    labels = read_idx(labels_path, LABELS_MAGIC, 1).astype(np.int64)
    fix = f"replace them with intact Fashion-MNIST files; {HOW_TO_GET}"
    if images.shape[1:] != (NATIVE, NATIVE):
        raise DataError(
            f"data: {images_path} holds {images.shape[1]}x{images.shape[2]} images, not "
            f"{NATIVE}x{NATIVE} — {fix}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"data: {images_path} holds {len(images)} images but {labels_path} "
            f"{len(labels)} labels — {fix}"
        )
    if len(labels) and int(labels.max()) >= len(FASHION_CLASSES):
        raise DataError(f"data: {labels_path} has label {int(labels.max())} outside 0..9 — {fix}")
    images.setflags(write=False)  # shared by every caller through the cache
    labels.setflags(write=False)
    return images, labels


def fashion_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """All of `split` in file order: (N, 28, 28) uint8 images and (N,) int64 labels (read-only)."""
    if split not in FILES:
        raise DataError(f"data: split={split!r} is not valid — use one of: {', '.join(FILES)}")
    folder = fashion_dir()
    images_stem, labels_stem = FILES[split]
    images_path, labels_path = _require(folder, images_stem), _require(folder, labels_stem)
    return _parse_pair(_stat_key(images_path), _stat_key(labels_path))


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, 28, 28) -> uint8 (N, size, size), antialiased bilinear, rounded."""
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for lo in range(0, len(images), _RESIZE_CHUNK):
        chunk = torch.from_numpy(images[lo : lo + _RESIZE_CHUNK]).to(torch.float32)[:, None]
        up = F.interpolate(
            chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )  # (n, 1, size, size) in 0..255 (non-negative weights; the clamp guards rounding)
        out[lo : lo + len(chunk)] = up[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def load_fashion(
    spec: str, split: str, n: int | None, size: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """uint8 (N, S, S, 1) white-on-black images, int64 (N,) labels (original ids) and the class
    ids of `spec`, for the official `split`. `n` keeps the first n matching items in file order.
    """
    classes = parse_fashion_spec(spec)
    images, labels = fashion_split(split)
    idx = np.flatnonzero(np.isin(labels, classes))
    if n is not None:
        idx = idx[:n]
    if not len(idx):
        raise DataError(f"data: '{spec}' has no items in the {split} split of {fashion_dir()}")
    picked = images[idx]  # (N, 28, 28), a copy: fancy indexing never aliases the cache
    if size != NATIVE:
        picked = _resize(picked, size)
    return picked[..., None], labels[idx].copy(), classes
