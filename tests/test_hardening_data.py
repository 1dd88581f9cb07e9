"""Hardened data readers and target strings: empty and 1 px images, AB halves of 0 px, repeated
or ambiguous target attributes, a center_crop that would do nothing, class folders and CelebA
attributes a target cannot spell; and fuzzed targets, attribute files and folder layouts, which
each load or raise the project's one-line error (under 300 characters, no newline)."""

from __future__ import annotations

import struct
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import fuzz
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from xdomain.data import images as images_mod
from xdomain.data.celeba import load_celeba
from xdomain.data.classfolders import load_class_folders
from xdomain.data.folders import UNPAIRED as UNPAIRED_DIRS
from xdomain.data.images import BadImage, convert_image, fit_square, to_pixels
from xdomain.data.labelled import styled_schema
from xdomain.data.paired import load_paired
from xdomain.data.sources import load_domain, load_labelled
from xdomain.datamodule import build_data
from xdomain.errors import ConfigError, DataError, XDomainError
from xdomain.labels import LabelSpace, categorical_schema, celeba_schema
from xdomain.sections import DataConfig

torch.set_num_threads(1)

KW: dict[str, Any] = {
    "image_size": 8,
    "channels": 3,
    "on_bad_file": "error",
    "max_pixels": 10**6,
    "augment": False,
    "n": None,
}


def _one_line(exc: BaseException, *needles: str) -> str:
    msg = str(exc.value if isinstance(exc, pytest.ExceptionInfo) else exc)
    assert "\n" not in msg and "\r" not in msg and len(msg) < 300, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def _png(path: Path, w: int = 8, h: int = 4, mode: str = "RGB", level: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new(mode, (w, h), level if len(mode) == 1 or ";" in mode else (level,) * len(mode))
    if path.suffix == ".jpg" and mode not in ("L", "RGB"):
        im = im.convert("RGB")
    im.save(path)
    return path


def _zero_png(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims w x h (PIL cannot write a 0 px image itself)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


# ------------------------------------------------------------------ 1. 0 px and 1 px images
def test_aligned_ab_images_one_px_wide_are_bad_files_not_a_zero_division(tmp_path: Path) -> None:
    root = tmp_path / "ab"
    for split in ("train", "test"):
        _png(root / split / "a.png", 1, 1)
    with pytest.raises(DataError) as exc:
        load_paired(str(root), "train", **KW)
    _one_line(exc, str(root / "train" / "a.png"), "1 px wide", "0 px", "on_bad_file=skip")
    cfg = DataConfig(paired=str(root), image_size=8, batch_size=1)
    with pytest.raises(DataError) as exc:
        build_data(cfg)
    _one_line(exc, "a.png", "0 px")
    # skip: the 1 px file is dropped (and counted) on both sides; a 2 x 1 pair is two 1 px halves
    for split in ("train", "test"):
        _png(root / split / "b.png", 2, 1, level=200)
    pair = load_paired(str(root), "train", **{**KW, "on_bad_file": "skip"})
    assert len(pair) == 1 and pair.a.skipped == pair.b.skipped == [str(root / "train" / "a.png")]
    xa, _, xb, _ = pair[0]
    assert xa.shape == xb.shape == (3, 8, 8)
    assert torch.allclose(xa, torch.full_like(xa, 200 / 127.5 - 1))


def test_odd_widths_split_at_w_div_2_as_pix2pix(tmp_path: Path) -> None:
    root = tmp_path / "ab"
    px = np.zeros((2, 5, 3), np.uint8)
    px[:, :2], px[:, 2:4], px[:, 4] = 10, 250, 128  # A = cols 0-1, B = cols 2-3, col 4 dropped
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        Image.fromarray(px).save(root / split / "x.png")
    pair = load_paired(str(root), "test", **KW)
    xa, _, xb, _ = pair[0]
    assert torch.allclose(xa, torch.full_like(xa, 10 / 127.5 - 1))
    assert torch.allclose(xb, torch.full_like(xb, 250 / 127.5 - 1))


def test_a_plain_photo_among_the_ab_pairs_is_refused_wherever_it_is(tmp_path: Path) -> None:
    root = tmp_path / "ab"
    for split in ("train", "test"):
        _png(root / split / "a.png", 8, 4)
        _png(root / split / "b.png", 6, 6)  # not the first file: was split in halves silently
    with pytest.raises(DataError) as exc:
        load_paired(str(root), "train", **KW)
    _one_line(exc, str(root / "train" / "b.png"), "6x6", "not an aligned AB pair")


def test_zero_size_images_are_one_line_errors_everywhere(tmp_path: Path) -> None:
    from xdomain.data.inputs import pil_to_tensor
    from xdomain.methods.base import DataSpec

    with pytest.raises(BadImage, match="0x0 pixels"):
        to_pixels(Image.new("RGB", (0, 0)))
    for size in ((0, 3), (3, 0)):
        for mode in ("RGB", "L", "RGBA", "P"):
            with pytest.raises(BadImage, match="no pixels"):
                to_pixels(Image.new(mode, size))
    with pytest.raises(DataError) as exc:
        convert_image(Image.new("RGBA", (0, 0)), 3)
    _one_line(exc, "0x0")
    spec = DataSpec(kind="image", channels=3, image_size=8)
    with pytest.raises(XDomainError) as exc:
        pil_to_tensor(Image.new("RGB", (4, 0)), spec)
    _one_line(exc, "4x0")
    for shape in ((0, 5, 3), (5, 0, 1), (0, 0, 3), (5, 5), (5, 5, 2)):
        for mode in ("crop", "resize", "pad"):
            with pytest.raises(DataError) as exc:
                fit_square(np.zeros(shape, np.uint8), 8, mode)  # type: ignore[arg-type]
            _one_line(exc, "x".join(map(str, shape)))
    assert fit_square(np.zeros((1, 1, 3), np.uint8), 8, "pad").shape == (8, 8, 3)
    # a file whose header says 0 px: a bad file, named
    bad = _zero_png(tmp_path / "f" / "zero.png", 0, 4)
    _png(tmp_path / "f" / "ok.png")
    with pytest.raises(DataError) as exc:
        load_domain(str(tmp_path / "f"), "train", image_size=8)
    _one_line(exc, str(bad), "on_bad_file=skip")


def test_a_long_strip_is_cropped_without_resizing_all_of_it(monkeypatch) -> None:
    """1 x 4000 px at size 8 was resized to 32000 x 8 first (1 x 10**6 px at 256: 25 GB)."""
    asked: list[tuple[int, int]] = []
    resize = Image.Image.resize

    def spy(self: Image.Image, size: Any, *a: Any, **k: Any) -> Image.Image:
        asked.append(tuple(size))
        return resize(self, size, *a, **k)

    px = np.random.default_rng(0).integers(0, 256, (3, 4000, 3), dtype=np.uint8)
    monkeypatch.setattr(Image.Image, "resize", spy)
    out = fit_square(px, 8)
    assert out.shape == (8, 8, 3) and max(w * h for w, h in asked) <= 64
    monkeypatch.setattr(images_mod, "CROP_SPAN", 10**9)  # the full resize, as before
    full = fit_square(px, 8)
    assert np.abs(out.astype(int) - full.astype(int)).max() <= 1


# ------------------------------------------------------------------ 2. repeated attributes
def _celeba_space() -> LabelSpace:
    schema, _ = celeba_schema(["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"])
    return LabelSpace((schema,))


@pytest.mark.parametrize(
    "text, name",
    [
        ("hair=black,hair=blond", "hair"),
        ("hair=black, hair =black", "hair"),
        (" male=1 ,male = 0", "male"),
        ("male=1,young=0,male=true", "male"),
    ],
)
def test_an_attribute_set_twice_is_an_error_not_the_last_value(text: str, name: str) -> None:
    space = _celeba_space()
    with pytest.raises(XDomainError) as exc:
        space.parse(text, [torch.zeros(2, 5)])
    _one_line(exc, f"attribute '{name}' is set twice", "set each attribute once")


def test_styled_targets_and_filters_refuse_a_repeated_attribute() -> None:
    space = LabelSpace((styled_schema(),))
    with pytest.raises(XDomainError) as exc:
        space.parse("bg=red,bg=blue", [torch.zeros(1, 6)])
    _one_line(exc, "'bg' is set twice", "bg=red", "bg=blue")
    with pytest.raises(DataError) as exc:  # the unpaired filter: matched nothing before
        load_domain("digits-styled:bg=red,bg=blue", "test", n=20)
    _one_line(exc, "digits-styled:bg=red,bg=blue", "'bg' is set twice")


def test_values_differing_in_case_match_exactly_or_are_ambiguous() -> None:
    space = LabelSpace((categorical_schema("x", "class", ["Happy", "happy", "sad"]),))
    base = [torch.zeros(1, 3)]
    assert space.parse("class=happy", base).tolist() == [[0.0, 1.0, 0.0]]  # was Happy
    assert space.parse("class=Happy", base).tolist() == [[1.0, 0.0, 0.0]]
    assert space.parse("class=SAD", base).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(XDomainError) as exc:
        space.parse("class=HAPPY", base)
    _one_line(exc, "Happy and happy", "exactly")


def test_an_attribute_of_two_data_sets_goes_to_the_one_with_the_value() -> None:
    a = categorical_schema("pets", "class", ["cat", "dog"])
    b = categorical_schema("cars", "class", ["bus", "car", "dog"])
    space = LabelSpace((a, b))
    base = [torch.zeros(1, 2), torch.zeros(1, 3)]
    assert space.parse("class=bus", base).tolist() == [[0.0, 0, 1, 0, 0, 0, 1]]  # was: pets'
    assert space.parse("class=cat", base).tolist() == [[1.0, 0, 0, 0, 0, 1, 0]]
    with pytest.raises(XDomainError) as exc:
        space.parse("class=dog", base)
    _one_line(exc, "pets and cars", "alike")
    with pytest.raises(XDomainError) as exc:
        space.parse("class=cow", base)
    _one_line(exc, "'cow' is not a value of class")


def test_two_sources_sharing_an_attribute_value_are_refused_when_training(tmp_path: Path) -> None:
    for root, classes in (("pets", ("cat", "dog")), ("cars", ("car", "Dog"))):
        for c in classes:
            for k in range(2):
                _png(tmp_path / root / c / f"{k}.png", 8, 8)
    ok = DataConfig(sources=[f"folders:{tmp_path / 'pets'}", "digits-handwritten"], batch_size=1)
    assert len(build_data(ok).train) == 2
    cfg = DataConfig(
        sources=[f"folders:{tmp_path / 'pets'}", f"folders:{tmp_path / 'cars'}"], batch_size=1
    )
    with pytest.raises(ConfigError) as exc:
        build_data(cfg)
    _one_line(exc, "both have class=dog", "rename")


# ------------------------------------------------------------------ 3. a center_crop doing nothing
def test_center_crop_for_a_built_in_source_is_a_config_error() -> None:
    cfg = DataConfig(sources=["digits-styled", "digits-handwritten"], center_crop=[0, 24])
    with pytest.raises(ConfigError) as exc:
        build_data(cfg)
    _one_line(exc, "data.center_crop[1]=24", "digits-handwritten", "set it to 0", "folders:")
    with pytest.raises(ConfigError) as exc:
        load_labelled("digits-styled", "test", image_size=16, channels=3, center_crop=8)
    _one_line(exc, "center_crop=8", "digits-styled")
    for cfg in (
        DataConfig(center_crop=[20]),  # data.a / data.b
        DataConfig(paired="glyphs2digits", center_crop=[20]),
    ):
        with pytest.raises(ConfigError) as exc:
            build_data(cfg)
        _one_line(exc, "data.center_crop=[20]", "data.sources")


# ------------------------------------------------------------------ 4. names a target cannot spell
BAD_CLASSES = ["a,b", "a=b", " lead", "trail ", "tab\there", "new\nline", "\u00a0nbsp"]


@pytest.mark.parametrize("name", BAD_CLASSES)
@pytest.mark.parametrize("layout", ["holdout", "split"])
def test_class_folders_a_target_cannot_spell_are_refused(
    tmp_path: Path, name: str, layout: str
) -> None:
    root = tmp_path / "set"
    parents = [root] if layout == "holdout" else [root / "train", root / "test"]
    for parent in parents:
        for c in ("ok", name):
            for k in range(2):
                _png(parent / c / f"{k}.png", 8, 8)
    with pytest.raises(DataError) as exc:
        load_class_folders(str(root), "train", **KW)
    _one_line(exc, repr(name), str(parents[0]), "cannot be named in a target", "rename the folder")


def test_class_folders_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    for c in ("Cat", "cat", "dog"):
        for k in range(2):
            _png(tmp_path / "set" / c / f"{k}.png", 8, 8)
    with pytest.raises(DataError) as exc:
        load_class_folders(str(tmp_path / "set"), "train", **KW)
    _one_line(exc, "'Cat' and 'cat'", "differ only in case", "rename one folder")


def test_many_classes_list_in_a_short_line(tmp_path: Path) -> None:
    for split, classes in (("train", range(60)), ("test", range(59))):
        for c in classes:
            _png(tmp_path / "set" / split / f"class_number_{c:03d}" / "0.png", 8, 8)
    with pytest.raises(DataError) as exc:
        load_class_folders(str(tmp_path / "set"), "train", **KW)
    _one_line(exc, "lacks class_number_059 of train/", "give test/ one subfolder per class")


def _attr_file(root: Path, header: str, rows: list[str], count: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    text = f"{len(rows) if count is None else count}\n{header}\n" + "\n".join(rows) + "\n"
    (root / "list_attr_celeba.txt").write_text(text)
    for r in rows:
        if r.split():
            _png(root / "images" / r.split()[0], 6, 6)
    return root / "list_attr_celeba.txt"


@pytest.mark.parametrize(
    "header, attrs, needles",
    [
        ("Male a,b", ["a,b"], ["'a,b'", "line 2", "cannot be named in a target", "rename"]),
        ("Male x=y", ["x=y"], ["'x=y'", "contains '='"]),
        ("Male Young Male", ["Male"], ["'Male' twice", "line 2"]),
        ("Male male", ["Male", "male"], ["Male and male", "'male'", "select one"]),
        ("Black_Hair Blond_Hair hair", ["Black_Hair", "Blond_Hair", "hair"], ["'hair'"]),
    ],
)
def test_celeba_attributes_a_target_cannot_tell_apart_are_refused(
    tmp_path: Path, header: str, attrs: list[str], needles: list[str]
) -> None:
    k = len(header.split())
    path = _attr_file(tmp_path / "c", header, [f"{i}.png " + " ".join(["1"] * k) for i in range(3)])
    with pytest.raises(DataError) as exc:
        load_celeba(str(tmp_path / "c"), "test", attrs=attrs, **KW)
    _one_line(exc, str(path), *needles)


def test_celeba_attrs_named_twice_and_a_wrong_count_line(tmp_path: Path) -> None:
    rows = [f"{i}.png 1 -1" for i in range(3)]
    _attr_file(tmp_path / "c", "Male Young", rows)
    with pytest.raises(ConfigError) as exc:
        load_celeba(str(tmp_path / "c"), "test", attrs=["Male", "Male"], **KW)
    _one_line(exc, "data.celeba_attrs names 'Male' twice")
    assert len(load_celeba(str(tmp_path / "c"), "test", attrs=["Male"], **KW)) == 3
    for count, said in (("5", "says 5 images but 3 data lines"), ("x", "is 'x' but 3 data")):
        path = _attr_file(tmp_path / "c", "Male Young", rows, count=count)
        with pytest.raises(DataError) as exc:
            load_celeba(str(tmp_path / "c"), "test", attrs=["Male"], **KW)
        _one_line(exc, str(path), "line 1", said, "set line 1 to 3")


# ------------------------------------------------------------------ 5. fuzz
def _space(kind: str) -> LabelSpace:
    celeba = _celeba_space().schemas[0]
    if kind == "celeba":
        return LabelSpace((celeba,))
    if kind == "styled":
        return LabelSpace((styled_schema(),))
    if kind == "mask":
        return LabelSpace((celeba, categorical_schema("rafd", "expression", ["angry", "happy"])))
    return LabelSpace(  # two folder sets: one attribute name, values overlapping in "dog"
        (
            categorical_schema("pets", "class", ["cat", "Dog"]),
            categorical_schema("cars", "class", ["bus", "dog", "DOG"]),
        )
    )


TOKENS = [
    *("hair", "male", "young", "bg", "bold", "italic", "expression", "class", "Male", "x"),
    *("black", "blond", "brown", "red", "blue", "happy", "angry", "cat", "dog", "Dog", "DOG"),
    *("bus", "1", "0", "true", "no", "maybe", "", " ", "=", ",", "==", ",,", "\t", "\n", "é"),
    *("\x00", "'", '"', "x" * 400, "all", "-1", "NaN"),
]


@fuzz(400)
@given(
    kind=st.sampled_from(["celeba", "styled", "mask", "shared"]),
    text=st.one_of(
        st.lists(st.sampled_from(TOKENS), max_size=10).map("".join),
        st.lists(
            st.tuples(st.sampled_from(TOKENS), st.sampled_from(TOKENS)).map("=".join),
            max_size=5,
        ).map(",".join),
        st.text(max_size=40),
    ),
)
@example(kind="styled", text="bg=red,bg=blue")
@example(kind="celeba", text="hair=black,hair=blond")
@example(kind="mask", text="male=1,expression=happy")
@example(kind="shared", text="class=dog")
@example(kind="shared", text="class=DoG")
@example(kind="shared", text="class=\n,x=y")
@example(kind="celeba", text="x" * 5000 + "=1")
def test_fuzz_targets_parse_or_raise_one_line(kind: str, text: str) -> None:
    space = _space(kind)
    base = [torch.zeros(2, s.width) for s in space.schemas]
    try:
        c = space.parse(text, base)
    except XDomainError as e:
        _one_line(e)
        return
    assert c.shape == (2, space.c_dim)
    assert set(c.unique().tolist()) <= {0.0, 1.0}


def _every_value_can_be_targeted(schema: Any) -> None:
    """What a data set labels, a target can name: `attr=value` sets exactly that column."""
    space = LabelSpace((schema,))
    for a, sl in schema.slices():
        for i, v in enumerate(a.values or ("0", "1")):
            c = space.parse(f"{a.name}={v}", [torch.full((1, schema.width), 0.5)])
            want = [float(i)] if a.kind == "binary" else [float(k == i) for k in range(a.width)]
            assert c[0, sl].tolist() == want, (a, v)


GOOD_ATTRS = ["Male", "Young", "Black_Hair", "Blond_Hair", "Brown_Hair", "Smiling"]
ODD_ATTRS = ["male", "hair", "a,b", "x=y", "Bald", "Male", "\u00e9t\u00e9"]
VALUES = ["1", "-1", "0", "2", "", "x", "+1"]
SEPS = [" ", "  ", "\t", " \t "]


def _often(draw: Any, good: Any, bad: Any, one_in: int = 5) -> Any:
    """`good` most of the time, `bad` one draw in `one_in`: most examples get far enough to load."""
    return draw(bad if draw(st.integers(0, one_in - 1)) == 0 else good)


@st.composite
def celeba_cases(draw: Any) -> dict[str, Any]:
    header = draw(st.lists(st.sampled_from(GOOD_ATTRS), min_size=1, max_size=5, unique=True))
    if draw(st.integers(0, 3)) == 0:
        header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(ODD_ATTRS)))
    lines = []
    names = ["0.png", "1.png", "4.png", "sub/3.png", "2.jpg", "gone.png"]
    for _ in range(draw(st.integers(0, 5))):
        name = _often(draw, st.sampled_from(names[:4]), st.sampled_from(names[4:]))
        values = draw(st.lists(st.sampled_from(["1", "-1"]), min_size=len(header), max_size=9))
        values = values[: len(header)]
        sep = draw(st.sampled_from(SEPS))
        lines.append(sep.join([name, *values]) + draw(st.sampled_from(["", " ", "\t", "\r"])))
    if lines and draw(st.integers(0, 4)) == 0:  # one malformed line
        bad = draw(st.lists(st.sampled_from(VALUES), max_size=7))
        lines[draw(st.integers(0, len(lines) - 1))] = " ".join(["0.png", *bad])
    count = _often(draw, st.just("right"), st.sampled_from(["wrong", "blank", "text", "none"]))
    attrs = _often(
        draw,
        st.lists(st.sampled_from(header), min_size=1, max_size=3, unique=True),
        st.lists(st.sampled_from(GOOD_ATTRS + ODD_ATTRS), max_size=3),
        one_in=4,
    )
    return {
        "header": " ".join(header) + draw(st.sampled_from(["", " ", "  "])),
        "lines": lines,
        "count": count,
        "blank": _often(draw, st.just("none"), st.sampled_from(["end", "middle", "start"])),
        "attrs": attrs,
        "on_bad_file": draw(st.sampled_from(["error", "skip"])),
    }


def _celeba_case(**kw: Any) -> dict[str, Any]:
    base = {"header": "Male Young", "lines": ["0.png 1 -1"], "count": "right", "blank": "none"}
    return {**base, "attrs": ["Male"], "on_bad_file": "error", **kw}


@fuzz(60)
@given(case=celeba_cases())
@example(case=_celeba_case())
@example(case=_celeba_case(header="Male Male", lines=["0.png 1 -1"]))
@example(case=_celeba_case(count="wrong"))
@example(case=_celeba_case(header="Male a,b", lines=["0.png 1 -1"], attrs=["a,b"]))
@example(case=_celeba_case(lines=["gone.png 1 1", "0.png 1 1"], on_bad_file="skip"))
@example(case=_celeba_case(lines=["2.jpg 1 1", "0.png 1 1"], on_bad_file="skip"))
@example(case=_celeba_case(lines=["0.png 1 -1", "sub/3.png -1 1"], blank="middle"))
def test_fuzz_celeba_attribute_files(tmp_path: Path, case: dict[str, Any]) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    lines = list(case["lines"])
    if case["blank"] == "middle" and lines:
        lines.insert(len(lines) // 2, "")
    first = {"right": str(len(lines)), "wrong": str(len(lines) + 3), "blank": "", "text": "n/a"}
    text = "\n".join([first[case["count"]]] if case["count"] in first else [])
    text += ("\n" if text else "") + "\n".join([case["header"], *lines])
    blank = case["blank"]
    text = ("\n" if blank == "start" else "") + text + ("\n\n\n" if blank == "end" else "\n")
    (root / "list_attr_celeba.txt").write_text(text)
    _png(root / "images" / "0.png", 3, 2, "RGBA")
    _png(root / "images" / "1.png", 1, 1, "L")
    (root / "images" / "2.jpg").write_bytes(b"not a jpeg")
    _png(root / "images" / "sub" / "3.png", 2, 3, "P")
    _png(root / "images" / "4.png", 1, 3, "I;16")
    try:
        ds = load_celeba(str(root), "test", attrs=case["attrs"], **{**KW, **case_kw(case)})
    except XDomainError as e:
        _one_line(e)
        return
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and y.shape == (ds.schema.width,)
    assert set(ds.labels.unique().tolist()) <= {0.0, 1.0}
    _every_value_can_be_targeted(ds.schema)


def case_kw(case: dict[str, Any]) -> dict[str, Any]:
    return {k: case[k] for k in ("on_bad_file", "channels") if k in case}


GOOD_CLASSES = ["cat", "dog", "bird", "\u00fcn\u00ef", "1", "angry", "two words", "a.b"]
ODD_CLASSES = ["Cat", "a,b", "x=y", " sp", "sp ", ".hidden", "tab\t", "\u200b"]
GOOD_KINDS = st.tuples(
    st.sampled_from(["RGB", "L", "RGBA", "LA", "P", "1", "I;16"]),
    st.integers(1, 3),
    st.integers(1, 3),
).map(lambda t: f"{t[0]}:{t[1]}:{t[2]}")
BAD_KINDS = st.sampled_from(["text", "garbage", "empty", "zero", "zero-high"])


def _image_file(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "text" or path.suffix == ".txt":
        path.with_suffix(".txt").write_text("not an image")
    elif kind == "garbage":
        path.write_bytes(b"\x89PNG garbage")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("zero", "zero-high"):
        _zero_png(path, 0, 2) if kind == "zero" else _zero_png(path, 4, 0)
    else:
        mode, w, h = kind.split(":")
        _png(path, int(w), int(h), mode)


@st.composite
def class_cases(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(GOOD_CLASSES), min_size=2, max_size=4, unique=True))
    if draw(st.integers(0, 3)) == 0:
        names.insert(draw(st.integers(0, len(names))), draw(st.sampled_from(ODD_CLASSES)))
    if draw(st.integers(0, 5)) == 0:
        names = names[:1]
    layout = _often(draw, st.sampled_from(["holdout", "split"]), st.just("train-only"), 8)
    classes = {}
    for parent in ["."] if layout == "holdout" else ["train", "test"]:
        for name in names:
            if parent == "test" and draw(st.integers(0, 5)) == 0:
                continue  # a class of train missing in test
            count = draw(st.integers(0, 12) if parent != "test" else st.integers(1, 3))
            classes[f"{parent}/{name}"] = [_often(draw, GOOD_KINDS, BAD_KINDS, 6)] * count
    return {
        "layout": layout,
        "classes": classes,
        "split": draw(st.sampled_from(["train", "test"])),
        "on_bad_file": draw(st.sampled_from(["error", "skip"])),
        "channels": draw(st.sampled_from([1, 3])),
    }


def _class_case(classes: dict[str, list[str]], **kw: Any) -> dict[str, Any]:
    base = {"layout": "holdout", "split": "train", "on_bad_file": "error", "channels": 3}
    return {**base, "classes": classes, **kw}


@fuzz(60)
@given(case=class_cases())
@example(case=_class_case({"./a,b": ["RGB:2:2"] * 2, "./cat": ["RGB:2:2", "L:1:1"]}))
@example(case=_class_case({"./Cat": ["RGB:2:2"] * 2, "./cat": ["RGB:2:2"] * 2}))
@example(case=_class_case({"./cat": ["zero", "RGB:1:1"], "./dog": ["L:1:1"] * 2}))
@example(
    case=_class_case(
        {"./cat": ["zero", "RGB:1:1", "L:3:1"], "./dog": ["1:1:1"] * 2}, on_bad_file="skip"
    )
)
@example(
    case=_class_case(
        {"train/a": ["L:1:1"], "train/b": ["L:1:1"], "test/a": ["L:1:1"]}, layout="split"
    )
)
@example(case=_class_case({"train/a": ["L:1:1"], "train/b": ["L:1:1"]}, layout="train-only"))
def test_fuzz_class_folder_layouts(tmp_path: Path, case: dict[str, Any]) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    for folder, kinds in case["classes"].items():
        if case["layout"] == "train-only" and folder.startswith("test/"):
            continue
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k, kind in enumerate(kinds):
            _image_file(root / folder / f"{k:02d}.png", kind)
    try:
        ds = load_class_folders(str(root), case["split"], **{**KW, **case_kw(case)})
    except XDomainError as e:
        _one_line(e)
        return
    x, y = ds[len(ds) - 1]
    assert x.shape == (case["channels"], 8, 8) and float(y.sum()) == 1.0
    assert ds.labels.shape == (len(ds), len(ds.schema.attributes[0].values))
    _every_value_can_be_targeted(ds.schema)


SIDES = {"aligned": ("train", "test"), "aligned-val": ("train", "val"), "by-name": UNPAIRED_DIRS}


@st.composite
def paired_cases(draw: Any) -> dict[str, Any]:
    layout = draw(st.sampled_from(["aligned", "aligned-val", "by-name"]))
    folders = list(SIDES[layout])
    if draw(st.integers(0, 5)) == 0:
        folders.remove(draw(st.sampled_from(folders)))
    stems = draw(st.lists(st.sampled_from(["x", "y", "sub/z", "w"]), min_size=1, max_size=3))
    if draw(st.integers(0, 7)) == 0:
        stems.append(".h")  # hidden: never read
    files = []
    for folder in folders:
        for stem in stems:
            if layout == "by-name" and draw(st.integers(0, 11)) == 0:
                continue  # a lonely partner
            ext = _often(draw, st.sampled_from([".png", ".jpg", ".bmp"]), st.just(".txt"), 8)
            h = draw(st.integers(1, 3))
            w = _often(draw, st.sampled_from([2 * h, 2 * h + 1]), st.sampled_from([1, h]), 8)
            mode = draw(st.sampled_from(["RGB", "L", "RGBA", "P", "1"]))
            kind = _often(draw, st.just(f"{mode}:{w}:{h}"), BAD_KINDS, 8)
            files.append((folder, stem + ext, kind))
    return {
        "folders": folders,
        "files": files,
        "split": draw(st.sampled_from(["train", "test"])),
        "on_bad_file": draw(st.sampled_from(["error", "skip"])),
        "direction": draw(st.sampled_from(["AtoB", "BtoA"])),
    }


def _paired_case(files: list[tuple[str, str, str]], **kw: Any) -> dict[str, Any]:
    folders = sorted({f for f, _, _ in files})
    base = {"split": "train", "on_bad_file": "error", "direction": "AtoB", "folders": folders}
    return {**base, "files": files, **kw}


@fuzz(60)
@given(case=paired_cases())
@example(case=_paired_case([("train", "x.png", "RGB:1:1"), ("test", "x.png", "RGB:1:1")]))
@example(
    case=_paired_case(
        [("train", "x.png", "RGB:1:1"), ("train", "y.png", "L:2:1"), ("test", "y.png", "L:3:1")],
        on_bad_file="skip",
    )
)
@example(case=_paired_case([("train", "x.png", "RGB:4:2"), ("train", "y.png", "RGB:2:2")]))
@example(
    case=_paired_case(
        [(d, "sub/z.png", "L:1:1") for d in UNPAIRED_DIRS[:3]] + [("testB", "q.png", "L:1:1")]
    )
)
@example(case=_paired_case([(d, "x.png", "zero") for d in UNPAIRED_DIRS], on_bad_file="skip"))
def test_fuzz_paired_layouts(tmp_path: Path, case: dict[str, Any]) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    for folder in case["folders"]:
        (root / folder).mkdir(exist_ok=True)
    for folder, name, kind in case["files"]:
        _image_file(root / folder / name, kind)
    try:
        with warnings.catch_warnings():  # on_bad_file=skip on paired folders warns
            warnings.simplefilter("ignore")
            pair = load_paired(
                str(root), case["split"], direction=case["direction"], **{**KW, **case_kw(case)}
            )
    except XDomainError as e:
        _one_line(e)
        return
    xa, _, xb, _ = pair[len(pair) - 1]
    assert xa.shape == xb.shape == (3, 8, 8)
