"""From a source spec to a dataset, in one place: `load_domain` (an unpaired domain: embedded
name or folder) and `load_labelled` (a labelled data set of `data.sources`, StarGAN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from xdomain.data.dataset import DomainDataset, to_channels
from xdomain.data.fashion import is_fashion_spec, load_fashion
from xdomain.data.folders import ON_BAD_FILE, FolderDataset
from xdomain.data.handwritten import load_handwritten
from xdomain.data.labelled import (
    BG_PALETTE,
    BUILT_IN,
    DIGIT_NAMES,
    PREFIXES,
    LabelledSet,
    one_hot,
    styled_schema,
)
from xdomain.data.printed import load_printed
from xdomain.errors import ConfigError, DataError
from xdomain.labels import categorical_schema

# Plain names only; `fashion` also takes a class list (`fashion:<classes>`), see `data.fashion`,
# and `digits-styled` a style filter (`digits-styled:bg=red,bold=1`), see `styled_domain`.
EMBEDDED: tuple[str, ...] = (
    "digits-printed",
    "digits-styled",
    "digits-handwritten",
    "digits-printed-system",
    "fashion",
)
SPLITS = ("train", "test")


def _nchw(pixels_nhwc: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 numpy (N, S, S, c) -> contiguous uint8 tensor (N, channels, S, S)."""
    converted = to_channels(pixels_nhwc, channels)
    return torch.from_numpy(converted).permute(0, 3, 1, 2).contiguous()


def _digits(name: str, r: Any, channels: int, size: int, **kw: Any) -> DomainDataset:
    """Rendered printed digits (`load_printed`'s result) as a dataset labelled by digit."""
    return DomainDataset(
        name,
        _nchw(r.images, channels),
        channels=channels,
        image_size=size,
        labels=torch.from_numpy(r.labels.astype("int64")),
        num_classes=10,
        **kw,
    )


def _check(
    spec: str, split: str, image_size: int, channels: int, on_bad_file: str, n: int | None
) -> None:
    if channels not in (1, 3):
        raise DataError(f"data: channels={channels} is not supported — use 1 or 3")
    if not isinstance(image_size, int) or image_size < 8:
        raise DataError(f"data: image_size={image_size!r} must be an integer >= 8")
    if on_bad_file not in ON_BAD_FILE:
        raise DataError(
            f"data: on_bad_file={on_bad_file!r} is not valid — use one of: {', '.join(ON_BAD_FILE)}"
        )
    if n is not None and (not isinstance(n, int) or n < 1):
        raise DataError(f"data: n={n!r} must be a positive integer or None")
    embedded = spec in EMBEDDED or is_fashion_spec(spec) or spec.startswith("digits-styled:")
    if embedded and split not in SPLITS:
        raise DataError(f"data: split={split!r} is not valid — use one of: {', '.join(SPLITS)}")


def load_domain(
    spec: str,
    split: str,
    *,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
    on_bad_file: str = "error",
    max_pixels: int = 50_000_000,
    augment: bool = False,
    n: int | None = None,
) -> DomainDataset:
    """One domain as a `DomainDataset`.

    `spec` is an embedded name (`EMBEDDED`), `fashion:<class>[,<class>...]` or a folder of
    images; for a folder `split` is ignored (the caller picks trainA or testA). `seed` is the data
    seed: it fixes what the rendered digits look like and never follows the run seed (the
    handwritten and fashion splits are fixed and ignore it). `n` keeps the first n items.
    """
    spec = str(spec)
    _check(spec, split, image_size, channels, on_bad_file, n)
    if spec in ("digits-printed", "digits-printed-system"):
        # pinned fonts (reproducible anywhere), or every system font when asked explicitly
        font_set = "system" if spec == "digits-printed-system" else "manifest"
        r = load_printed(seed, split, n, image_size, font_set)
        attrs = {
            "font": torch.from_numpy(r.font.astype("int64")),
            "fg": torch.from_numpy(r.fg.astype("int64")),  # (N, 3) RGB 0..255
            "bg": torch.from_numpy(r.bg.astype("int64")),  # (N, 3)
            "bold": torch.from_numpy(r.bold.astype("int64")),
            "italic": torch.from_numpy(r.italic.astype("int64")),
        }
        return _digits(
            spec,
            r,
            channels,
            image_size,
            attrs=attrs,
            attr_names={"font": list(r.font_names)},
            augment=augment,
        )
    if spec == "digits-styled" or spec.startswith("digits-styled:"):
        return styled_domain(spec, split, image_size, channels, seed, n)
    classes = None
    if spec == "digits-handwritten":
        # The split is fixed (constant permutation seed), so `seed` does not apply here.
        pixels, labels = load_handwritten(split, n, image_size)
    elif is_fashion_spec(spec):
        # The official train/test files are the split, so `seed` does not apply. Labels keep
        # their 10-class ids, so one fashion judge scores any class subset.
        pixels, labels, classes = load_fashion(spec, split, n, image_size)
    if spec == "digits-handwritten" or classes is not None:
        return DomainDataset(
            spec,
            _nchw(pixels, channels),
            channels=channels,
            image_size=image_size,
            labels=torch.from_numpy(labels),
            num_classes=10,
            augment=augment,
            classes=classes,
        )
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return FolderDataset(
            folder,
            image_size=image_size,
            channels=channels,
            on_bad_file=on_bad_file,
            max_pixels=max_pixels,
            augment=augment,
            n=n,
        )
    if folder.exists():
        raise DataError(f"data: '{spec}' is a file, not a folder — give a folder of images")
    raise DataError(
        f"data: unknown source '{spec}' — not an embedded dataset ({', '.join(EMBEDDED)}, "
        "fashion:<classes>) nor an existing folder"
    )


def styled_domain(
    spec: str, split: str, image_size: int, channels: int, seed: int, n: int | None
) -> DomainDataset:
    """`digits-styled[:name=value,...]` as one unpaired domain labelled by digit: the styled
    printed digits (`xdomain.data.labelled`) whose style matches the filter, e.g.
    `digits-styled:bg=red` <-> `digits-styled:bg=blue` for a CycleGAN per attribute pair. `n`
    caps the items rendered before the filter."""
    from xdomain.data.labelled import styled_schema
    from xdomain.errors import XDomainError
    from xdomain.labels import parse_pairs

    schema = styled_schema()
    slices = dict((a.name, sl) for a, sl in schema.slices())
    text = spec.split(":", 1)[1] if ":" in spec else ""
    # the label rows the filter means, with the schema's one-line errors, before any rendering
    try:
        pairs = parse_pairs(text, "bg=red") if text.strip() else []
        wants = [(a, schema.set_value(torch.zeros(1, schema.width), a, v)[0]) for a, v in pairs]
    except XDomainError as e:
        raise DataError(f"data: '{spec}': {str(e).removeprefix('target: ')}") from None
    full = load_labelled(
        "digits-styled", split, image_size=image_size, channels=channels, seed=seed, n=n
    )
    keep = torch.ones(len(full), dtype=torch.bool)
    for name, want in wants:
        keep &= (full.labels[:, slices[name]] == want[slices[name]]).all(1)
    if wants and not bool(keep.any()):
        raise DataError(f"data: '{spec}' matches no {split} item; loosen the filter")
    return full.images.subset(keep)


def load_labelled(source: str, split: str, **kw: Any) -> LabelledSet:
    """One labelled data set from its spec (the specs: `xdomain.data.labelled`). `kw`: image_size,
    channels, seed, on_bad_file, max_pixels, augment, n, celeba_attrs, center_crop (folders
    only: the built-in digits are rendered at their size)."""
    source = str(source)
    size, channels, n = kw["image_size"], kw["channels"], kw.get("n")
    if kw.get("center_crop") and not source.startswith(PREFIXES):
        raise ConfigError(
            f"data: center_crop={kw['center_crop']} does nothing for '{source}' (built-in sets"
            " are rendered at the image size); use 0 — a crop applies to celeba: and folders:"
        )
    if source == "digits-styled":
        from xdomain.data.printed import bg_classes, load_printed

        r = load_printed(kw.get("seed", 0), split, n, size, styled=True)
        images = _digits(source, r, channels, size)
        bg = torch.from_numpy(bg_classes(r.bg))
        labels = torch.cat(
            [
                one_hot(bg, len(BG_PALETTE)),
                torch.from_numpy(r.bold.astype("float32"))[:, None],
                torch.from_numpy(r.italic.astype("float32"))[:, None],
            ],
            dim=1,
        )
        return LabelledSet(images, labels, styled_schema(), identity=images.labels)
    if source == "digits-handwritten":
        images = load_domain(source, split, image_size=size, channels=channels, n=n)
        assert images.labels is not None
        schema = categorical_schema(source, "digit", DIGIT_NAMES)
        return LabelledSet(images, one_hot(images.labels, 10), schema)  # its class is its label
    names = ("image_size", "channels", "on_bad_file", "max_pixels", "augment", "n")
    common = {k: kw[k] for k in names} | {"center_crop": kw.get("center_crop", 0)}
    if source.startswith("celeba:"):
        from xdomain.data.celeba import load_celeba

        return load_celeba(source[len("celeba:") :], split, attrs=kw["celeba_attrs"], **common)
    if source.startswith("folders:"):
        from xdomain.data.classfolders import load_class_folders

        return load_class_folders(source[len("folders:") :], split, **common)
    raise DataError(
        f"data.sources: unknown labelled source '{source}'; valid: {', '.join(BUILT_IN)},"
        " celeba:<root> (list_attr_celeba.txt + images), folders:<root> (one subfolder per class)"
    )
