"""Embedded sources: determinism, shapes, labels, splits and the render cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xdomain.data import EMBEDDED, DomainDataset, load_domain
from xdomain.data import printed as printed_mod
from xdomain.data.handwritten import split_indices
from xdomain.errors import DataError

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path / "cache"))


def test_embedded_names():
    assert EMBEDDED == (
        "digits-printed",
        "digits-styled",
        "digits-handwritten",
        "digits-printed-system",
        "fashion",
    )


def test_printed_shapes_labels_attrs():
    ds = load_domain("digits-printed", "train", n=24)
    assert isinstance(ds, DomainDataset) and len(ds) == 24
    x, label = ds[3]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert isinstance(label, int) and 0 <= label <= 9
    assert ds.num_classes == 10 and ds.labels is not None and ds.labels.dtype == torch.int64
    assert set(ds.attrs) == {"font", "fg", "bg", "bold", "italic"}
    assert ds.attrs["fg"].shape == (24, 3) and ds.attrs["font"].shape == (24,)
    assert int(ds.attrs["font"].max()) < len(ds.attr_names["font"])
    xs, ys = ds.tensors()
    assert xs.shape == (24, 3, 32, 32) and ys.dtype == torch.int64
    assert torch.equal(xs[3], x) and int(ys[3]) == label


def test_printed_contrast_between_fg_and_bg():
    ds = load_domain("digits-printed", "test", n=40)
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    diff = (ds.attrs["fg"].double() @ luma - ds.attrs["bg"].double() @ luma).abs()
    assert float(diff.min()) >= printed_mod.MIN_CONTRAST - 1


def test_printed_deterministic_per_seed_split_index():
    fonts, _ = printed_mod.digit_fonts()
    a = printed_mod.render_one(fonts, 0, "train", 5, 32)[0]
    b = printed_mod.render_one(fonts, 0, "train", 5, 32)[0]
    other_seed = printed_mod.render_one(fonts, 1, "train", 5, 32)[0]
    other_split = printed_mod.render_one(fonts, 0, "test", 5, 32)[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, other_seed)
    assert not np.array_equal(a, other_split)
    # An item does not depend on how many items are loaded.
    small = load_domain("digits-printed", "train", n=6)
    large = load_domain("digits-printed", "train", n=9)
    assert torch.equal(small.tensors()[0], large.tensors()[0][:6])
    assert np.array_equal(small.images[5].permute(1, 2, 0).numpy(), a)


def test_printed_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(printed_mod, "DEFAULT_SIZE", {"train": 12, "test": 4})
    first = load_domain("digits-printed", "train")
    files = sorted((tmp_path / "cache" / "data").glob("digits-printed-*.npz"))
    assert len(files) == 1 and len(first) == 12

    def no_render(*args, **kwargs):
        raise AssertionError("should load from the cache")

    monkeypatch.setattr(printed_mod, "render", no_render)
    again = load_domain("digits-printed", "train")
    head = load_domain("digits-printed", "train", n=5)  # a slice of the default-size cache
    assert torch.equal(first.images, again.images)
    assert torch.equal(first.labels, again.labels)
    assert all(torch.equal(first.attrs[k], again.attrs[k]) for k in first.attrs)
    assert torch.equal(head.images, first.images[:5])
    assert sorted((tmp_path / "cache" / "data").glob("digits-printed-*.npz")) == files
    assert not list((tmp_path / "cache" / "data").glob("*.tmp"))


def test_printed_channels_one_is_luma():
    rgb = load_domain("digits-printed", "test", n=4)
    grey = load_domain("digits-printed", "test", n=4, channels=1)
    assert grey[0][0].shape == (1, 32, 32)
    px = rgb.images.to(torch.int64)
    luma = (px[:, 0] * 299 + px[:, 1] * 587 + px[:, 2] * 114 + 500) // 1000
    assert torch.equal(grey.images[:, 0].to(torch.int64), luma)


def test_printed_other_image_size():
    ds = load_domain("digits-printed", "test", n=3, image_size=48)
    assert ds[0][0].shape == (3, 48, 48)


def test_handwritten_split_is_fixed():
    train, test = split_indices("train"), split_indices("test")
    assert len(train) == 1400 and len(test) == 397
    assert len(np.union1d(train, test)) == 1797 and not np.intersect1d(train, test).size
    a = load_domain("digits-handwritten", "train", n=10, seed=0)
    b = load_domain("digits-handwritten", "train", n=10, seed=123)  # the split ignores seed
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert len(load_domain("digits-handwritten", "test")) == 397


def test_handwritten_looks_like_mnist():
    ds = load_domain("digits-handwritten", "train", n=50, channels=1)
    x, y = ds.tensors()
    assert x.shape == (50, 1, 32, 32) and set(y.tolist()) <= set(range(10))
    assert ds.num_classes == 10
    # White ink on black with a margin: borders are black, the centre has ink.
    assert float(x[:, :, :3].max()) == -1.0 and float(x[:, :, :, -3:].max()) == -1.0
    assert float(x.amax(dim=(1, 2, 3)).min()) > 0.9
    rgb = load_domain("digits-handwritten", "train", n=5)
    assert rgb[0][0].shape == (3, 32, 32)
    assert torch.equal(rgb[0][0][0], rgb[0][0][2])


def test_key_forms_and_no_augment_for_digits():
    ds = load_domain("digits-handwritten", "train", n=5, augment=True)
    assert torch.equal(ds[(2, 7)][0], ds[2][0])
    assert torch.equal(ds[-1][0], ds[4][0])
    with pytest.raises(IndexError):
        ds[5]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"spec": "svhn"}, "digits-printed, digits-styled, digits-handwritten"),
        ({"spec": "digits-printed", "channels": 2}, "channels=2"),
        ({"spec": "digits-printed", "split": "val"}, "train, test"),
        ({"spec": "digits-printed", "on_bad_file": "ignore"}, "error, skip"),
    ],
)
def test_bad_arguments(kwargs, needle):
    args = {"spec": "digits-printed", "split": "train", **kwargs}
    with pytest.raises(DataError, match=needle):
        load_domain(args.pop("spec"), args.pop("split"), **args)


def test_holdout_fonts_leave_training_and_stay_in_test():
    from xdomain.datamodule import build_data, heldout_fonts_mask
    from xdomain.errors import ConfigError
    from xdomain.sections import DataConfig

    families = "DejaVu Serif,Lato"
    cfg = DataConfig(n_a=300, n_b=64, holdout_fonts=families)
    data = build_data(cfg)
    full = load_domain("digits-printed", "train", n=300)
    held_full = heldout_fonts_mask(full, cfg)
    # training keeps exactly the items in other fonts, in order, with their labels and attrs
    assert 0 < int(held_full.sum()) < 300 and len(data.train_a) == int((~held_full).sum())
    assert torch.equal(data.train_a.labels, full.labels[~held_full])
    assert torch.equal(data.train_a.images, full.images[~held_full])
    assert not bool(heldout_fonts_mask(data.train_a, cfg).any())
    names = data.train_a.attr_names["font"]
    kept = {names[i] for i in data.train_a.attrs["font"].tolist()}
    assert not any(n.startswith(("DejaVuSerif", "Lato")) for n in kept), kept
    # the test split is whole: the held-out fonts are there to be scored
    assert bool(heldout_fonts_mask(data.test_a, cfg).any()) and len(data.test_a) == 2000
    with pytest.raises(ConfigError, match=r"unknown font family 'Nope'; valid: .*Lato"):
        build_data(DataConfig(n_a=300, n_b=64, holdout_fonts="Nope"))
    with pytest.raises(ConfigError, match=r"needs data.a = digits-printed"):
        build_data(DataConfig(a="digits-handwritten", n_a=300, n_b=64, holdout_fonts="Lato"))


def test_holdout_fonts_change_the_data_fingerprint_only_when_set():
    from xdomain.fingerprint import data_fingerprint
    from xdomain.sections import DataConfig

    plain = data_fingerprint(DataConfig())["id"]
    assert data_fingerprint(DataConfig(holdout_fonts=""))["id"] == plain
    assert data_fingerprint(DataConfig(holdout_fonts="Lato"))["id"] != plain
