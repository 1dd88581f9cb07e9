"""User folders: explicit mode conversion, bad files, augmentation and the layout helpers."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xdomain.data import (
    convert_image,
    domain_folders,
    folder_layout,
    load_domain,
    read_image,
)
from xdomain.data import folders as folders_mod
from xdomain.errors import DataError

torch.set_num_threads(1)


def _unit(v: float) -> float:
    """A uint8 grey level as the dataset's [-1, 1] value."""
    return float(v) / 127.5 - 1.0


def _noise_png(path: Path, size: int = 40, seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid PNG header that claims width x height pixels, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    body = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def _one_line(exc: pytest.ExceptionInfo, path: Path, *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and "on_bad_file=skip" in msg, msg
    for needle in needles:
        assert needle in msg, msg


def test_grayscale_rgb_and_channels(tmp_path):
    grey = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))  # (32, 32) ramp
    Image.fromarray(grey, mode="L").save(tmp_path / "a_grey.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "b_rgb.png")
    ds = load_domain(str(tmp_path), "train", channels=3)
    assert len(ds) == 2 and ds.labels is None and ds.num_classes == 0 and ds.skipped == []
    x, label = ds[0]
    assert label == -1 and x.shape == (3, 32, 32)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert torch.allclose(x[0, 0], torch.tensor([_unit(v) for v in grey[0]]), atol=1e-6)
    one = load_domain(str(tmp_path), "test", channels=1)
    assert torch.equal(one[0][0], one[1][0]) and one[0][0].shape == (1, 32, 32)


def test_rgba_and_palette_composite_on_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent -> white
    rgba[:, 16:, :3] = 0
    rgba[:, 16:, 3] = 128  # black at alpha 128 -> 255 * 127/255 = 127
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a_rgba.png")
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.paste(1, (0, 0, 32, 16))
    pal.info["transparency"] = 0
    pal.save(tmp_path / "b_palette.png", transparency=0)
    ds = load_domain(str(tmp_path), "train")
    x = ds[0][0]
    assert torch.allclose(x[:, 5, 5], torch.ones(3))
    assert torch.allclose(x[:, 5, 20], torch.full((3,), _unit(127)), atol=1e-6)
    p = ds[1][0]
    assert torch.allclose(p[:, 5, 5], torch.tensor([_unit(10), _unit(20), _unit(30)]), atol=1e-6)
    assert torch.allclose(p[:, 25, 5], torch.ones(3))  # transparent palette entry -> white


def test_16bit_png_scaled_by_257(tmp_path):
    values = np.array([0, 257, 257 * 100, 257 * 200 + 100, 65535], np.uint16)
    img = np.zeros((32, 32), np.uint16)
    img[0, :5] = values
    Image.fromarray(img).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    x = load_domain(str(tmp_path), "train", channels=1)[0][0]
    expected = [_unit(v) for v in (0, 1, 100, 200, 255)]  # 51500/257 = 200.4 -> 200
    assert torch.allclose(x[0, 0, :5], torch.tensor(expected), atol=1e-6)


def test_float_and_int32_images(tmp_path):
    f = np.full((32, 32), 0.5, np.float32)
    f[0, 0] = 1.0
    Image.fromarray(f, mode="F").save(tmp_path / "f.tif")
    i = np.full((32, 32), 1000, np.int32)
    i[0, 0] = 65535
    Image.fromarray(i, mode="I").save(tmp_path / "i.tif")
    ds = load_domain(str(tmp_path), "train", channels=1)
    fx, ix = ds[0][0], ds[1][0]
    assert abs(float(fx[0, 1, 1]) - _unit(128)) < 1e-6 and float(fx[0, 0, 0]) == 1.0
    assert abs(float(ix[0, 1, 1]) - _unit(4)) < 1e-6  # 1000 / 257 = 3.9 -> 4


def test_resize_shorter_side_then_centre_crop(tmp_path):
    wide = np.zeros((64, 128, 3), np.uint8)
    wide[:, 32:96] = 255  # the centre half is white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    x = load_domain(str(tmp_path), "train", image_size=32)[0][0]
    assert x.shape == (3, 32, 32)
    assert float(x[:, :, 2:30].min()) > 0.95  # the centre crop is the white band


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
        ("text.png", lambda p: p.write_text("not really a png\n"), "not an image"),
        ("bomb.png", lambda p: _bomb_png(p, 60_000, 60_000), "too large"),
        ("big.png", lambda p: _bomb_png(p, 8_000, 8_000), "max_pixels"),
    ],
)
def test_bad_file_one_line_error(tmp_path, name, make, needle):
    _noise_png(tmp_path / "000_ok.png")
    bad = tmp_path / name
    make(bad)
    assert bad.stat().st_size < 2000  # a bomb is small on disk and must never be decoded
    with pytest.raises(DataError) as exc:
        load_domain(str(tmp_path), "train")
    _one_line(exc, bad, needle)


def test_truncated_png(tmp_path):
    full = _noise_png(tmp_path / "whole.png", size=64).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(full[: len(full) // 2])
    (tmp_path / "whole.png").unlink()
    with pytest.raises(DataError) as exc:
        load_domain(str(tmp_path), "train")
    _one_line(exc, cut, "truncated")


def test_skip_mode_counts_and_warns(tmp_path, caplog):
    _noise_png(tmp_path / "a.png", seed=1)
    (tmp_path / "sub").mkdir()
    _noise_png(tmp_path / "sub" / "b.png", seed=2)
    (tmp_path / "c.png").write_bytes(b"")
    (tmp_path / "d.jpg").write_text("hello")
    _bomb_png(tmp_path / "e.png", 60_000, 60_000)
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / "._a.png").write_bytes(b"\0\0")  # macOS resource fork: hidden, ignored
    with caplog.at_level(logging.WARNING, logger="xdomain.data"):
        ds = load_domain(str(tmp_path), "train", on_bad_file="skip")
    assert len(ds) == 2
    assert [Path(s).name for s in ds.skipped] == ["c.png", "d.jpg", "e.png"]
    warnings = [r for r in caplog.records if "skipped 3" in r.getMessage()]
    assert len(warnings) == 1


def test_empty_folder_and_all_bad(tmp_path):
    with pytest.raises(DataError, match="no images"):
        load_domain(str(tmp_path), "train")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="unreadable"):
        load_domain(str(tmp_path), "train", on_bad_file="skip")


def test_not_a_folder(tmp_path):
    f = _noise_png(tmp_path / "single.png")
    with pytest.raises(DataError, match="not a folder"):
        load_domain(str(f), "train")


def test_augment_reproducible(tmp_path):
    for i in range(3):
        _noise_png(tmp_path / f"{i}.png", size=50, seed=i)
    ds = load_domain(str(tmp_path), "train", augment=True, image_size=32)
    a, b = ds[(1, 1234)][0], ds[(1, 1234)][0]
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    outs = {ds[(1, s)][0].numpy().tobytes() for s in range(8)}
    assert len(outs) > 1
    plain = load_domain(str(tmp_path), "train", augment=False, image_size=32)
    assert torch.equal(ds[1][0], plain[1][0])  # no aug_seed: the centred view
    assert torch.equal(ds.tensors()[0], plain.tensors()[0])
    assert torch.equal(plain[(1, 1234)][0], plain[1][0])  # augment=False ignores the seed


def test_large_folder_decodes_per_item(tmp_path, monkeypatch):
    for i in range(3):
        _noise_png(tmp_path / f"{i}.png", size=45, seed=i)
    cached = load_domain(str(tmp_path), "train", augment=True)
    monkeypatch.setattr(folders_mod, "MEMORY_BUDGET", 0)
    lazy = load_domain(str(tmp_path), "train", augment=True)
    assert lazy.images is None and cached.images is not None
    assert torch.equal(lazy[(2, 99)][0], cached[(2, 99)][0])
    assert torch.equal(lazy.tensors()[0], cached.tensors()[0])


def test_n_caps_folder(tmp_path):
    for i in range(4):
        _noise_png(tmp_path / f"{i}.png", size=32, seed=i)
    assert len(load_domain(str(tmp_path), "train", n=2)) == 2


def test_read_and_convert_image(tmp_path):
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    rgba.save(tmp_path / "t.png")
    im = read_image(tmp_path / "t.png")
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)
    assert convert_image(im, 1).mode == "L"
    assert convert_image(Image.new("L", (4, 4)), 3).mode == "RGB"
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        read_image(tmp_path / "bad.png")


def test_folder_layout(tmp_path):
    for name in ("trainA", "trainB", "testA"):
        (tmp_path / name).mkdir()
    with pytest.raises(DataError, match="testB/"):
        folder_layout(tmp_path)
    (tmp_path / "testB").mkdir()
    layout = folder_layout(str(tmp_path))
    assert layout == {n: str(tmp_path / n) for n in ("trainA", "trainB", "testA", "testB")}
    with pytest.raises(DataError, match="not a folder"):
        folder_layout(tmp_path / "missing")


def test_domain_folders(tmp_path):
    for name in ("zebra", "horse", ".cache"):
        (tmp_path / name).mkdir()
        _noise_png(tmp_path / name / "0.png")
    (tmp_path / "empty").mkdir()
    assert domain_folders(tmp_path) == [str(tmp_path / "horse"), str(tmp_path / "zebra")]
    with pytest.raises(DataError, match="no subfolders"):
        domain_folders(tmp_path / "empty")
