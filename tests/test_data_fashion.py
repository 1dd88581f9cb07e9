"""The `fashion` source: the hand-written IDX parser on tiny files made here, and the real
Fashion-MNIST files (Debian's dataset-fashion-mnist) when they are installed."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from xdomain.data import EMBEDDED, load_domain
from xdomain.data import fashion as fashion_mod
from xdomain.data.fashion import FASHION_CLASSES, parse_fashion_spec
from xdomain.errors import DataError
from xdomain.fingerprint import source_fingerprint

torch.set_num_threads(1)

_override = os.environ.get(fashion_mod.ENV_VAR, "").strip()
REAL_DIR = Path(_override).expanduser() if _override else fashion_mod.DEFAULT_DIR
HAVE_REAL = all(
    fashion_mod.find_file(REAL_DIR, stem) is not None
    for pair in fashion_mod.FILES.values()
    for stem in pair
)
real = pytest.mark.skipif(
    not HAVE_REAL,
    reason=f"Fashion-MNIST files not found in {REAL_DIR}: `apt-get install dataset-fashion-mnist`"
    f" or set {fashion_mod.ENV_VAR} to a folder holding the four files",
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path / "cache"))


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """An IDX file (gzipped when the name ends in .gz): magic, big-endian sizes, raw bytes."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def tiny_set(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Five train and three test images with known pixels and labels; train gzipped, test plain
    (both are accepted). Returns split -> (images (N, 28, 28) uint8, labels (N,))."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    made = {
        "train": (rng.integers(0, 256, (5, 28, 28)), np.array([9, 0, 7, 7, 3])),
        "test": (rng.integers(0, 256, (3, 28, 28)), np.array([7, 1, 9])),
    }
    for split, (images, labels) in made.items():
        suffix = ".gz" if split == "train" else ""
        images_stem, labels_stem = fashion_mod.FILES[split]
        write_idx(folder / f"{images_stem}{suffix}", images, fashion_mod.IMAGES_MAGIC)
        write_idx(folder / f"{labels_stem}{suffix}", labels, fashion_mod.LABELS_MAGIC)
    return {k: (v[0].astype(np.uint8), v[1].astype(np.int64)) for k, v in made.items()}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    folder = tmp_path / "fmnist"
    made = tiny_set(folder)
    monkeypatch.setenv(fashion_mod.ENV_VAR, str(folder))
    return folder, made


# --- specs ------------------------------------------------------------------------------------


def test_embedded_names_and_spec_parsing():
    assert "fashion" in EMBEDDED
    assert len(FASHION_CLASSES) == 10 and FASHION_CLASSES[7] == "sneaker"
    assert parse_fashion_spec("fashion") == tuple(range(10))
    assert parse_fashion_spec("fashion:sneaker,ankle_boot") == (7, 9)
    assert parse_fashion_spec("fashion: Ankle-Boot , SNEAKER,sneaker") == (7, 9)
    assert parse_fashion_spec("fashion:t-shirt") == (0,)


def test_unknown_class_lists_valid_names():
    with pytest.raises(DataError, match=r"unknown fashion class 'sneakers'") as err:
        load_domain("fashion:sneakers,bag", "train")
    message = str(err.value)
    assert "\n" not in message and all(name in message for name in FASHION_CLASSES)
    with pytest.raises(DataError, match="names no class"):
        parse_fashion_spec("fashion:")


def test_split_is_checked_for_fashion_specs():
    with pytest.raises(DataError, match=r"split='val'.*train, test"):
        load_domain("fashion:bag", "val")


def test_unknown_source_mentions_fashion_classes():
    with pytest.raises(DataError, match=r"fashion, fashion:<classes>\) nor an existing folder"):
        load_domain("svhn", "train")


# --- the parser, on tiny hand-made files -------------------------------------------------------


def test_tiny_set_loads_exactly(tiny):
    _, made = tiny
    images, labels = made["train"]
    ds = load_domain("fashion", "train", image_size=28, channels=1)
    assert len(ds) == 5 and ds.num_classes == 10 and ds.classes == tuple(range(10))
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
    assert ds.labels.tolist() == labels.tolist()
    test = load_domain("fashion", "test", image_size=28, channels=1)  # uncompressed files
    assert torch.equal(test.images[:, 0], torch.from_numpy(made["test"][0]))
    assert test.labels.tolist() == [7, 1, 9]
    # a subset keeps file order and the original ids; n keeps the first n of the subset
    sneakers = load_domain("fashion:sneaker", "train", image_size=28, channels=1)
    assert sneakers.labels.tolist() == [7, 7] and sneakers.classes == (7,)
    assert torch.equal(sneakers.images[:, 0], torch.from_numpy(images[2:4]))
    first = load_domain("fashion:sneaker,ankle_boot", "train", image_size=28, channels=1, n=1)
    assert first.labels.tolist() == [9]
    assert torch.equal(first.images[0, 0], torch.from_numpy(images[0]))
    with pytest.raises(DataError, match="no items"):
        load_domain("fashion:bag", "train")


def test_resize_keeps_a_flat_image_flat(tmp_path, monkeypatch):
    folder = tmp_path / "flat"
    tiny_set(folder)
    write_idx(
        folder / "train-images-idx3-ubyte.gz",
        np.full((5, 28, 28), 77, dtype=np.uint8),
        fashion_mod.IMAGES_MAGIC,
    )
    monkeypatch.setenv(fashion_mod.ENV_VAR, str(folder))
    ds = load_domain("fashion", "train", image_size=40, channels=3)
    assert ds.images.shape == (5, 3, 40, 40) and bool((ds.images == 77).all())


def test_a_replaced_file_is_read_again(tiny):
    folder, _ = tiny
    before = load_domain("fashion", "test", image_size=28).labels.tolist()
    labels_path = folder / "t10k-labels-idx1-ubyte"
    write_idx(labels_path, np.array([2, 2, 2]), fashion_mod.LABELS_MAGIC)  # same size
    st = labels_path.stat()
    os.utime(labels_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = load_domain("fashion", "test", image_size=28).labels.tolist()
    assert before == [7, 1, 9] and after == [2, 2, 2]


def test_missing_folder_gives_the_install_hint(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(fashion_mod.ENV_VAR, str(empty))
    with pytest.raises(DataError) as err:
        load_domain("fashion", "train")
    message = str(err.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte" in message and str(empty) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "github.com/zalandoresearch/fashion-mnist" in message
    assert fashion_mod.ENV_VAR in message


def test_truncated_plain_file_names_the_file(tiny):
    folder, _ = tiny
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte holds \d+ bytes") as err:
        load_domain("fashion", "test")
    assert "\n" not in str(err.value)


def test_foreign_file_is_refused(tiny):
    folder, _ = tiny
    # a labels file where the images should be: the magic number tells them apart
    shutil.copy(folder / "t10k-labels-idx1-ubyte", folder / "t10k-images-idx3-ubyte")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is not an IDX file.*2051"):
        load_domain("fashion", "test")
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04")  # a zip, not IDX at all
    with pytest.raises(DataError, match="is not an IDX file"):
        load_domain("fashion", "test")
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")  # header cut
    with pytest.raises(DataError, match="too short for an IDX header"):
        load_domain("fashion", "test")


def test_wrong_image_size_or_count_is_refused(tiny):
    folder, _ = tiny
    images_path = folder / "t10k-images-idx3-ubyte"
    write_idx(images_path, np.zeros((3, 32, 32)), fashion_mod.IMAGES_MAGIC)
    with pytest.raises(DataError, match="32x32 images, not 28x28"):
        load_domain("fashion", "test")
    write_idx(images_path, np.zeros((4, 28, 28)), fashion_mod.IMAGES_MAGIC)
    with pytest.raises(DataError, match=r"4 images but .* 3 labels"):
        load_domain("fashion", "test")


# --- fingerprint -------------------------------------------------------------------------------


def test_fingerprint_follows_the_files(tiny):
    folder, _ = tiny
    first = source_fingerprint("fashion:sneaker")
    assert first.startswith("fashion:sneaker ") and source_fingerprint("fashion:sneaker") == first
    assert source_fingerprint("fashion:Sneaker") == first  # same data, same fingerprint
    assert source_fingerprint("fashion") != first
    path = folder / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.array([9, 0, 7, 7, 4]), fashion_mod.LABELS_MAGIC)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert source_fingerprint("fashion:sneaker") != first


def test_fingerprint_of_missing_files_does_not_raise(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion_mod.ENV_VAR, str(tmp_path / "nowhere"))
    assert source_fingerprint("fashion").startswith("fashion fashion-mnist ")
    assert source_fingerprint("fashion:nope").startswith("fashion:nope ")


# --- the real files ----------------------------------------------------------------------------


@real
@pytest.mark.parametrize(("size", "channels"), [(28, 1), (28, 3), (32, 1), (32, 3)])
def test_real_shapes_dtypes_ranges(size, channels):
    ds = load_domain("fashion", "test", image_size=size, channels=channels, n=64)
    assert len(ds) == 64 and ds.num_classes == 10 and ds.classes == tuple(range(10))
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (64, channels, size, size)
    assert ds.labels.dtype == torch.int64 and set(ds.labels.tolist()) <= set(range(10))
    x, label = ds[0]
    assert x.dtype == torch.float32 and x.shape == (channels, size, size)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0 and isinstance(label, int)
    # white garments on black: dark borders, bright pixels somewhere in every image
    assert int(ds.images.amax(dim=(1, 2, 3)).min()) > 128
    if channels == 3:
        assert torch.equal(ds.images[:, 0], ds.images[:, 2])
    native = load_domain("fashion", "test", image_size=28, channels=1, n=64)
    # the resize keeps each image's brightness (antialiased bilinear averages, never invents)
    mean_now = ds.images.float().mean(dim=(1, 2, 3))
    mean_native = native.images.float().mean(dim=(1, 2, 3))
    assert float((mean_now - mean_native).abs().max()) < 3.0


@real
def test_real_subset_labels_and_classes():
    ds = load_domain("fashion:sneaker,ankle_boot", "test", image_size=28, channels=1)
    assert set(ds.labels.tolist()) == {7, 9} and ds.classes == (7, 9)
    assert len(ds) == 2000 and ds.num_classes == 10
    boots = ds.subset(ds.labels == 9)
    assert len(boots) == 1000 and boots.classes == (7, 9)


@real
def test_real_counts():
    assert len(load_domain("fashion:sneaker", "train", image_size=28, channels=1)) == 6000
    assert len(load_domain("fashion:sneaker", "test", image_size=28, channels=1)) == 1000
    test = load_domain("fashion", "test", image_size=28, channels=1)
    assert len(test) == 10_000 and torch.bincount(test.labels).tolist() == [1000] * 10


@real
def test_real_is_deterministic_and_ignores_the_seed():
    a = load_domain("fashion:bag,coat", "train", n=50, seed=0)
    b = load_domain("fashion:bag,coat", "train", n=50, seed=7)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    fashion_mod._parse_pair.cache_clear()  # parsed again from the file: still the same
    c = load_domain("fashion:bag,coat", "train", n=50)
    assert torch.equal(a.images, c.images) and torch.equal(a.labels, c.labels)


@real
def test_real_truncated_gz_copy_names_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "cut"
    folder.mkdir()
    for stem in fashion_mod.FILES["test"]:
        data = fashion_mod.find_file(REAL_DIR, stem).read_bytes()
        data = data if data.startswith(b"\x1f\x8b") else gzip.compress(data)  # gzip it if plain
        if "images" in stem:
            data = data[: len(data) // 2]
        (folder / f"{stem}.gz").write_bytes(data)
    monkeypatch.setenv(fashion_mod.ENV_VAR, str(folder))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz is not a readable gzip") as e:
        load_domain("fashion", "test")
    assert "\n" not in str(e.value) and "apt-get install dataset-fashion-mnist" in str(e.value)
