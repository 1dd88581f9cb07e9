"""`digits-printed`: SVHN-like house-number crops rendered from pinned fonts.

SVHN's cropped digits are a centred digit, often with parts of its neighbours, in a random
font and colour, slightly rotated and blurred. We render the same from the installed fonts so
DTN-style SVHN -> MNIST experiments run without a download. Each item depends only on
(seed, split, index) through its own numpy Generator, and the fonts are the ones pinned in
`fonts-manifest.json` (`xdomain.data.fonts`), so a subset, a larger n or another machine gives
the same pixels; installing other fonts changes nothing. `digits-printed-system` renders from
every font on the machine instead, by explicit choice. The rendered arrays are cached on disk
because rendering 22k crops takes seconds while loading them takes milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from xdomain.data.fonts import (
    FontGlyphs,
    candidate_fonts,
    default_font,
    fonts_fingerprint,
    manifest_fonts,
    manifest_id,
    vetted,
)
from xdomain.data.fonts import load_digit_fonts as _load_digit_fonts
from xdomain.io import verified, write_verified
from xdomain.paths import cache_dir

log = logging.getLogger(__name__)

RENDER_VERSION = 1  # bump when the rendering below changes: it invalidates the caches
DEFAULT_SIZE = {"train": 20_000, "test": 2_000}
SPLIT_ID = {"train": 0, "test": 1}  # separate seed streams, same fonts
MIN_CONTRAST = 70  # |luma(fg) - luma(bg)| in grey levels: below this digits are unreadable
SUPERSAMPLE = 2  # compose at 2x and box-filter down, for anti-aliased edges after rotation
# `digits-styled` (StarGAN's labelled digits): the plate colour is one of these, named, and bold
# and italic are drawn with p = 0.5, so every style label is exact and balanced
BG_PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (190, 50, 45),
    "green": (50, 150, 70),
    "blue": (45, 80, 190),
    "yellow": (225, 195, 60),
}
STYLE_STREAM = 7  # the seed stream of the styled draws, apart from every item's own stream


@dataclass
class Rendered:
    """Pixels and labels of a rendered split."""

    images: np.ndarray  # uint8 (N, S, S, 3)
    labels: np.ndarray  # int64 (N,)
    font: np.ndarray  # int64 (N,) index into font_names
    fg: np.ndarray  # int64 (N, 3)
    bg: np.ndarray  # int64 (N, 3)
    bold: np.ndarray  # int64 (N,) 0/1
    italic: np.ndarray  # int64 (N,) 0/1
    font_names: list[str]


FontSet = Literal["manifest", "system"]
_FONTS: dict[str, tuple[list[FontGlyphs], list[str]]] = {}


def fonts_id(fonts: FontSet) -> str:
    """What the font set is, for cache keys and data fingerprints."""
    if fonts == "manifest":
        return f"manifest-{manifest_id()}"
    return f"system-{fonts_fingerprint(candidate_fonts())}"


def digit_fonts(fonts: FontSet = "manifest") -> tuple[list[FontGlyphs], list[str]]:
    """The font set's glyphs (memoised) and the names/reasons of excluded fonts.

    `manifest`: exactly the pinned fonts (an error when one is missing or differs);
    `system`: every font on this machine that passes the checks (`digits-printed-system`).
    """
    key = fonts_id(fonts)
    if key not in _FONTS:
        if fonts == "manifest":
            _FONTS[key] = (vetted(list(manifest_fonts())), [])
        else:
            found, excluded = _load_digit_fonts(candidate_fonts())
            if not found:
                log.warning(
                    "data: no usable .ttf/.otf fonts under /usr/share/fonts; digits-printed-system"
                    " falls back to Pillow's single built-in font"
                )
                found = [default_font()]
            _FONTS[key] = (found, excluded)
    return _FONTS[key]


LUMA = np.array([0.299, 0.587, 0.114])


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground RGB with at least `MIN_CONTRAST` grey levels between them.

    Colours are pulled toward their own grey (photographed plates are rarely fully saturated);
    that keeps their luma, so the contrast test is unaffected. One batch of candidates is drawn
    whatever the outcome, which is faster than a rejection loop and keeps the stream simple.
    """
    raw = rng.integers(0, 256, size=(33, 3)).astype(np.float64)  # row 0: bg, rows 1..: fg
    grey = raw @ LUMA  # (33,)
    mix = rng.uniform(0.25, 1.0, size=(33, 1))
    muted = np.clip(np.rint(grey[:, None] + (raw - grey[:, None]) * mix), 0, 255).astype(np.int64)
    luma = muted @ LUMA
    bg = muted[0]
    ok = np.nonzero(np.abs(luma[1:] - luma[0]) >= MIN_CONTRAST)[0]
    if len(ok):
        return bg, muted[1 + ok[0]]
    # Rare: a mid-grey background; take the extreme on the far side.
    fg = np.zeros(3, np.int64) if luma[0] > 127 else np.full(3, 255, np.int64)
    return bg, fg


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in [-0.5, 0.5], float32 (S, S) each."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    return yy, xx


def _background(rng: np.random.Generator, bg: np.ndarray, size: int) -> np.ndarray:
    """float32 (S, S, 3): the plate colour with lighting gradient and low-frequency blotches."""
    yy, xx = _grid(size)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = (xx * math.cos(angle) + yy * math.sin(angle)) * rng.uniform(0, 60)
    blotch_small = rng.normal(0, 1, size=(4, 4)).astype(np.float32)
    blotches = np.asarray(
        Image.fromarray(blotch_small, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    ) * rng.uniform(0, 12)
    plate = bg.astype(np.float32)[None, None, :] + (gradient + blotches)[..., None]
    return plate


def _ink_mask(
    rng: np.random.Generator,
    font: FontGlyphs,
    label: int,
    size: int,
    force: dict[str, Any] | None = None,
) -> tuple[np.ndarray, bool, bool]:
    """float32 (S, S) ink coverage of the centre digit and its neighbours; plus bold, italic.

    `force` sets `bold` and/or `italic` (style pairs, `xdomain.metrics.style`): the random draws
    stay the same, so two renderings that force different values differ in that style alone.
    """
    bold = bool(rng.random() < 0.2)
    italic = bool(rng.random() < 0.2)
    if force:
        bold, italic = force.get("bold", bold), force.get("italic", italic)
    glyphs = font.bold if bold else font.regular
    big = size * SUPERSAMPLE
    height = rng.uniform(0.45, 0.8) * big  # ink height of a digit on the canvas
    scale = height / font.height
    squash = rng.uniform(0.85, 1.2)  # width/height jitter: condensed or wide plates
    tracking = rng.uniform(-0.04, 0.25) * height  # extra gap between digits
    digits = [label]
    n_left = int(rng.random() < 0.6) + int(rng.random() < 0.15)
    n_right = int(rng.random() < 0.6) + int(rng.random() < 0.15)
    digits = list(rng.integers(0, 10, size=n_left)) + digits + list(rng.integers(0, 10, n_right))
    centre = n_left

    # Lay the digits out on a pen line (canvas coordinates, baseline y = 0), then shift so the
    # centre digit's ink is at the canvas centre plus a small jitter, as SVHN crops are.
    placed: list[tuple[np.ndarray, float, float]] = []
    pen = 0.0
    for d in digits:
        g = glyphs[int(d)]
        w = max(1, round(g.mask.shape[1] * scale * squash))
        h = max(1, round(g.mask.shape[0] * scale))
        mask = np.asarray(g.image.resize((w, h), Image.Resampling.BILINEAR), np.float32)
        placed.append((mask, pen + g.left * scale * squash, g.top * scale))
        pen += g.advance * scale * squash + tracking
    c_mask, c_x, c_y = placed[centre]
    shift_x = big / 2 - (c_x + c_mask.shape[1] / 2) + rng.uniform(-0.06, 0.06) * big
    shift_y = big / 2 - (c_y + c_mask.shape[0] / 2) + rng.uniform(-0.05, 0.05) * big

    canvas = np.zeros((big, big), np.float32)
    for mask, x, y in placed:
        x0, y0 = round(x + shift_x), round(y + shift_y)
        h, w = mask.shape
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y0 + h, big), max(x0, 0), min(x0 + w, big)
        if cy0 < cy1 and cx0 < cx1:
            region = canvas[cy0:cy1, cx0:cx1]
            np.maximum(region, mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0], out=region)

    # One affine about the centre: rotation, and a shear for italics. PIL wants the inverse map
    # (output -> input): x_in = a*x + b*y + c, y_in = d*x + e*y + f.
    theta = math.radians(rng.uniform(-10, 10))
    if force:  # always draw the shear, so both members of a pair keep one random stream
        drawn = rng.uniform(0.15, 0.3)
        shear = drawn if italic else 0.0
    else:  # the data set's own stream (unchanged: the cached renderings stay valid)
        shear = rng.uniform(0.15, 0.3) if italic else 0.0
    cos, sin = math.cos(theta), math.sin(theta)
    # forward = R @ S with S = [[1, -shear], [0, 1]] (top of the glyph leans right)
    fa, fb, fd, fe = cos, -cos * shear - sin, sin, -sin * shear + cos
    det = fa * fe - fb * fd
    ia, ib, id_, ie = fe / det, -fb / det, -fd / det, fa / det
    cx = cy = big / 2
    coeffs = (ia, ib, cx - ia * cx - ib * cy, id_, ie, cy - id_ * cx - ie * cy)
    warped = Image.fromarray(canvas, mode="F").transform(
        (big, big), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    small = warped.resize((size, size), Image.Resampling.BOX)
    coverage = np.clip(np.asarray(small, np.float32) / 255.0, 0.0, 1.0)
    return coverage, bold, italic


def render_one(
    fonts: list[FontGlyphs],
    seed: int,
    split: str,
    index: int,
    size: int,
    force: dict[str, Any] | None = None,
) -> tuple[np.ndarray, int, int, np.ndarray, np.ndarray, bool, bool]:
    """Render item `index` of `split`: uint8 (S, S, 3) and its label and attributes.

    `force` fixes bold and/or italic (see `_ink_mask`) and/or the plate colour `bg` (RGB; the
    ink turns black or white where the drawn ink would lack contrast on it); everything else
    stays as drawn.
    """
    rng = np.random.default_rng([seed, SPLIT_ID[split], index])
    label = int(rng.integers(0, 10))
    font_id = int(rng.integers(0, len(fonts)))
    bg, fg = _colours(rng)
    if force and "bg" in force:
        bg = np.asarray(force["bg"], np.int64)
        if abs(float((fg - bg) @ LUMA)) < MIN_CONTRAST:
            fg = np.zeros(3, np.int64) if bg @ LUMA > 127 else np.full(3, 255, np.int64)
    coverage, bold, italic = _ink_mask(rng, fonts[font_id], label, size, force)  # (S, S)
    plate = _background(rng, bg, size)  # (S, S, 3)
    ink = fg.astype(np.float32)[None, None, :] + rng.normal(0, 6, size=3).astype(np.float32)
    img = plate * (1.0 - coverage[..., None]) + ink * coverage[..., None]
    pil = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    blur = rng.uniform(0.0, 1.0) * size / 32
    if blur > 0.25:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    noise_sigma = rng.uniform(0.0, 7.0)
    out = np.asarray(pil, np.float32) + rng.normal(0, noise_sigma, size=(size, size, 3))
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return out, label, font_id, fg, bg, bold, italic


def render(
    seed: int,
    split: str,
    count: int,
    size: int,
    *,
    progress: bool = True,
    font_set: FontSet = "manifest",
    styled: bool = False,
) -> Rendered:
    """Render items `0..count-1` of a split (no cache); `styled`: as `styled_force` says."""
    fonts, _ = digit_fonts(font_set)
    images = np.empty((count, size, size, 3), np.uint8)
    labels = np.empty(count, np.int64)
    font_ids = np.empty(count, np.int64)
    fgs = np.empty((count, 3), np.int64)
    bgs = np.empty((count, 3), np.int64)
    bolds = np.empty(count, np.int64)
    italics = np.empty(count, np.int64)
    bar = tqdm(
        range(count),
        desc=f"rendering digits-{'styled' if styled else 'printed'}/{split}",
        unit="img",
        delay=1.0,  # only appears when rendering takes more than a moment
        disable=not progress,
        leave=False,
    )
    for i in bar:
        images[i], labels[i], font_ids[i], fgs[i], bgs[i], bolds[i], italics[i] = render_one(
            fonts, seed, split, i, size, styled_force(seed, split, i) if styled else None
        )
    bar.close()
    return Rendered(images, labels, font_ids, fgs, bgs, bolds, italics, [f.name for f in fonts])


def styled_force(seed: int, split: str, index: int) -> dict[str, Any]:
    """The style of `digits-styled` item `index`: a palette colour, bold and italic, each drawn
    from a stream of their own, so the item is printed item `index` restyled."""
    rng = np.random.default_rng([seed, STYLE_STREAM, SPLIT_ID[split], index])
    colour = list(BG_PALETTE.values())[int(rng.integers(0, len(BG_PALETTE)))]
    return {"bg": colour, "bold": bool(rng.random() < 0.5), "italic": bool(rng.random() < 0.5)}


def bg_classes(bg: np.ndarray) -> np.ndarray:
    """int64 (N,): the palette index of each (N, 3) plate colour of a styled rendering."""
    palette = np.array(list(BG_PALETTE.values()), np.int64)  # (K, 3)
    match = (bg[:, None, :] == palette[None]).all(-1)  # (N, K)
    assert match.any(1).all(), "a styled rendering has a plate colour outside BG_PALETTE"
    return match.argmax(1)


def _cache_path(
    seed: int, split: str, count: int, size: int, font_set: FontSet, kind: str = "printed"
) -> Path:
    """Cache file named by everything the pixels depend on."""
    key = f"{kind}|v{RENDER_VERSION}|{seed}|{split}|{count}|{size}|{fonts_id(font_set)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir("data") / f"digits-{kind}-{split}-{count}-{size}px-{digest}.npz"


def _save(path: Path, r: Rendered) -> None:
    """Write atomically, with a sha256 sidecar: a crashed writer never leaves a half cache."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                images=r.images,
                labels=r.labels,
                font=r.font,
                fg=r.fg,
                bg=r.bg,
                bold=r.bold,
                italic=r.italic,
                font_names=np.array(r.font_names),
            )

    try:
        write_verified(path, write)
    except OSError as exc:  # a full or read-only cache costs the next run a rendering
        warnings.warn(f"data: could not cache {path} ({exc})", stacklevel=3)


def _load(path: Path) -> Rendered | None:
    """The cached rendering, or None (render again) when it is missing or fails its checksum."""
    if not path.exists():
        return None
    if not verified(path):
        warnings.warn(
            f"data: cache {path} fails its sha256 check (truncated, damaged or no sidecar);"
            " rendering again",
            stacklevel=3,
        )
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return Rendered(
                images=z["images"],
                labels=z["labels"],
                font=z["font"],
                fg=z["fg"],
                bg=z["bg"],
                bold=z["bold"],
                italic=z["italic"],
                font_names=[str(s) for s in z["font_names"]],
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # render again
        warnings.warn(f"data: ignoring unreadable cache {path} ({exc})", stacklevel=3)
        return None


def _sliced(r: Rendered, n: int) -> Rendered:
    return Rendered(
        r.images[:n],
        r.labels[:n],
        r.font[:n],
        r.fg[:n],
        r.bg[:n],
        r.bold[:n],
        r.italic[:n],
        r.font_names,
    )


def load_printed(
    seed: int,
    split: str,
    n: int | None,
    size: int,
    font_set: FontSet = "manifest",
    styled: bool = False,
) -> Rendered:
    """Items `0..n-1` (default: the split's standard size), from the cache when possible.

    Items are per-index deterministic, so a smaller n is a slice of the default-size cache
    when that exists; otherwise exactly n items are rendered and cached. `styled`: the
    `digits-styled` rendering (`styled_force`) instead.
    """
    default = DEFAULT_SIZE[split]
    count = default if n is None else n
    kind = "styled" if styled else "printed"
    candidates = [_cache_path(seed, split, count, size, font_set, kind)]
    if count < default:
        candidates.append(_cache_path(seed, split, default, size, font_set, kind))
    for path in candidates:
        if (cached := _load(path)) is not None and len(cached.labels) >= count:
            return _sliced(cached, count)
    start = time.perf_counter()
    rendered = render(seed, split, count, size, font_set=font_set, styled=styled)
    log.info(
        "data: rendered %d digits-%s/%s in %.1fs", count, kind, split, time.perf_counter() - start
    )
    _save(candidates[0], rendered)
    return rendered


def heldout_items(font_ids: np.ndarray, font_names: list[str], holdout: str) -> np.ndarray:
    """bool (N,): which items are drawn in a font of the families named in `holdout` (a comma
    list, spelled as in fonts-manifest.json). `font_ids` (N,) index `font_names` (file stems of
    the pinned fonts). An unknown family is a one-line ConfigError listing the valid ones."""
    from xdomain.data.fonts import manifest_entries
    from xdomain.errors import ConfigError

    families = [f.strip() for f in holdout.split(",") if f.strip()]
    by_stem = {Path(e.path).stem: e.family for e in manifest_entries()}
    known = sorted(set(by_stem.values()))
    for family in families:
        if family not in known:
            raise ConfigError(
                f"data.holdout_fonts: unknown font family '{family}'; valid: {', '.join(known)}"
            )
    held = np.array([by_stem.get(name) in families for name in font_names], dtype=bool)
    return held[np.asarray(font_ids, dtype=np.int64)]


GLYPH_STREAM = 11  # the seed stream of `glyphs2digits` pairs, apart from the printed digits'
GLYPH_SIZE = {"train": 5_000, "test": 1_000}  # rendering takes ~9 ms a pair at 32 px


@dataclass
class GlyphPairs:
    """`glyphs2digits`: a digit plate's ink mask (a) and the same plate coloured (b)."""

    masks: np.ndarray  # uint8 (N, S, S, 1): ink coverage, white on black
    images: np.ndarray  # uint8 (N, S, S, 3): that ink on a plate, both in random colours
    labels: np.ndarray  # int64 (N,): the centre digit


def render_glyph_pairs(seed: int, split: str, count: int, size: int) -> GlyphPairs:
    """Pairs `0..count-1` of a split: the shape is drawn as for `digits-printed` (a pinned font,
    neighbours, rotation, italics), the colours of ink and plate at random (`_colours`, with the
    plate's lighting and blotches), no blur or noise: one shape has many valid colourings, so a
    deterministic translator can only give one of them (the multimodal task of BicycleGAN)."""
    fonts, _ = digit_fonts("manifest")
    masks = np.empty((count, size, size, 1), np.uint8)
    images = np.empty((count, size, size, 3), np.uint8)
    labels = np.empty(count, np.int64)
    bar = tqdm(range(count), desc=f"rendering glyphs2digits/{split}", unit="img", delay=1.0)
    for i in bar:
        rng = np.random.default_rng([seed, GLYPH_STREAM, SPLIT_ID[split], i])
        label = int(rng.integers(0, 10))
        font = fonts[int(rng.integers(0, len(fonts)))]
        bg, fg = _colours(rng)
        coverage, _, _ = _ink_mask(rng, font, label, size)  # (S, S) in [0, 1]
        plate = _background(rng, bg, size)  # (S, S, 3)
        cov = coverage[..., None]
        img = plate * (1.0 - cov) + fg.astype(np.float32)[None, None, :] * cov
        images[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        masks[i] = np.clip(coverage * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None]
        labels[i] = label
    bar.close()
    return GlyphPairs(masks, images, labels)


def load_glyph_pairs(seed: int, split: str, n: int | None, size: int) -> GlyphPairs:
    """Items `0..n-1` (default: the split's standard size), rendered once and cached."""
    count = GLYPH_SIZE[split] if n is None else n
    key = f"glyphs|v{RENDER_VERSION}|{seed}|{split}|{count}|{size}|{fonts_id('manifest')}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    path = cache_dir("data") / f"glyphs2digits-{split}-{count}-{size}px-{digest}.npz"
    if path.exists() and verified(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                return GlyphPairs(z["masks"], z["images"], z["labels"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            warnings.warn(f"data: ignoring unreadable cache {path} ({exc})", stacklevel=2)
    pairs = render_glyph_pairs(seed, split, count, size)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, masks=pairs.masks, images=pairs.images, labels=pairs.labels)

    try:
        write_verified(path, write)
    except OSError as exc:
        warnings.warn(f"data: could not cache {path} ({exc})", stacklevel=2)
    return pairs
