"""System fonts usable for rendering digits, and their digit glyphs as an atlas.

The font list decides what `digits-printed` looks like, so it must be the same on every call:
a sorted glob, then checks that drop fonts whose "digits" are symbols (URW Dingbats maps 0-9 to
pencils and ticks), missing glyphs (ten identical .notdef boxes) or hairlines that vanish at
32 px. The symbol check needs no reference font: each font's digits must mostly be nearest to the
per-digit median shape over all candidate fonts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts")
DIGITS = "0123456789"
ATLAS_SIZE = 64  # font size (px) of the atlas glyphs; scaled down when composing
MIN_STROKE = 0.05  # stroke width / digit height below this is a hairline at 32 px
MIN_RECOGNISED = 6  # of 10 digits must be nearest to their own median shape


def candidate_fonts(roots: tuple[str, ...] = FONT_ROOTS) -> list[Path]:
    """Every .ttf/.otf below `roots`, sorted by path so the order never depends on the disk."""
    found: set[Path] = set()
    for root in roots:
        base = Path(root)
        if base.is_dir():
            found.update(
                p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in {".ttf", ".otf"}
            )
    return sorted(found)


def fonts_fingerprint(paths: list[Path]) -> str:
    """Hash of font paths and sizes: changes when a font package is added, removed or updated."""
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class Glyph:
    """One digit's ink at `ATLAS_SIZE`, positioned relative to the pen on the baseline."""

    mask: np.ndarray  # uint8 (h, w), ink = 255
    image: Image.Image  # the same mask as a PIL "L" image, resized per item when composing
    left: int  # ink left edge minus pen x
    top: int  # ink top edge minus baseline y (negative: above the baseline)
    advance: float  # pen advance to the next digit


@dataclass
class FontGlyphs:
    """Digits of one font, regular and emboldened (PIL stroke), plus its digit height."""

    name: str
    regular: list[Glyph]
    bold: list[Glyph]
    height: float  # median ink height of the regular digits, for scaling to a target height


def _render_glyph(font: ImageFont.FreeTypeFont, digit: str, stroke: int) -> Glyph | None:
    pad = ATLAS_SIZE  # generous canvas: italic and stroked glyphs overhang their advance
    canvas = Image.new("L", (3 * ATLAS_SIZE, 3 * ATLAS_SIZE), 0)
    pen_x, base_y = pad, 2 * ATLAS_SIZE
    ImageDraw.Draw(canvas).text(
        (pen_x, base_y),
        digit,
        font=font,
        fill=255,
        anchor="ls",
        stroke_width=stroke,
        stroke_fill=255,
    )
    ink = np.asarray(canvas)
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    if len(rows) == 0:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    mask = ink[y0:y1, x0:x1].copy()
    return Glyph(
        mask=mask,
        image=Image.fromarray(mask),
        left=int(x0 - pen_x),
        top=int(y0 - base_y),
        advance=float(font.getlength(digit)) + 2 * stroke,
    )


def _shape(mask: np.ndarray) -> np.ndarray:
    """Glyph ink centred in a square, 16x16 float: a scale-free shape for comparing fonts."""
    h, w = mask.shape
    side = max(h, w)
    square = np.zeros((side, side), np.uint8)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = mask
    small = Image.fromarray(square).resize((16, 16), Image.Resampling.BILINEAR)
    return np.asarray(small, np.float32) / 255.0


def _stroke_ratio(mask: np.ndarray) -> float:
    """Stroke width relative to height; for a thin stroke, width ~ 2 * area / perimeter."""
    ink = mask > 127
    inner = ink.copy()
    inner[1:-1, 1:-1] &= ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    perimeter = max(int((ink & ~inner).sum()), 1)
    return 2.0 * float(ink.sum()) / perimeter / mask.shape[0]


def load_digit_fonts(paths: list[Path]) -> tuple[list[FontGlyphs], list[str]]:
    """Render the ten digits of each font and keep the fonts that pass the checks.

    Returns the usable fonts (in the order of `paths`) and a list of `"name: reason"` for the
    excluded ones, so a caller can report what was dropped.
    """
    rendered: list[tuple[str, list[Glyph]]] = []
    excluded: list[str] = []
    for path in paths:
        try:
            font = ImageFont.truetype(str(path), ATLAS_SIZE)
        except OSError as exc:
            excluded.append(f"{path.name}: cannot load ({exc})")
            continue
        glyphs = [_render_glyph(font, d, 0) for d in DIGITS]
        if any(g is None for g in glyphs):
            excluded.append(f"{path.name}: some digits render empty")
            continue
        masks = {g.mask.tobytes() + bytes(g.mask.shape) for g in glyphs if g is not None}
        if len(masks) < len(DIGITS):
            excluded.append(f"{path.name}: digits are not ten distinct glyphs")
            continue
        rendered.append((str(path), [g for g in glyphs if g is not None]))
    if not rendered:
        return [], excluded

    # (F, 10, 16, 16): every candidate font's digit shapes
    shapes = np.stack([np.stack([_shape(g.mask) for g in gs]) for _, gs in rendered])
    median = np.median(shapes, axis=0)  # (10, 16, 16)
    dist = ((shapes[:, :, None] - median[None, None]) ** 2).sum(axis=(3, 4))  # (F, 10, 10)
    recognised = (dist.argmin(axis=2) == np.arange(10)).sum(axis=1)  # (F,)

    fonts: list[FontGlyphs] = []
    for (path_str, glyphs), n_ok in zip(rendered, recognised, strict=True):
        name = Path(path_str).stem
        stroke = float(np.median([_stroke_ratio(g.mask) for g in glyphs]))
        if stroke < MIN_STROKE:
            excluded.append(f"{name}: hairline strokes ({stroke:.3f} of the digit height)")
            continue
        if n_ok < MIN_RECOGNISED:
            excluded.append(f"{name}: digits look like symbols ({n_ok}/10 recognised)")
            continue
        font = ImageFont.truetype(path_str, ATLAS_SIZE)
        bold_px = max(1, round(0.045 * ATLAS_SIZE))
        bold = [_render_glyph(font, d, bold_px) for d in DIGITS]
        fonts.append(
            FontGlyphs(
                name=name,
                regular=glyphs,
                bold=[g for g in bold if g is not None],
                height=float(np.median([g.mask.shape[0] for g in glyphs])),
            )
        )
    return fonts, excluded


def default_font() -> FontGlyphs:
    """Pillow's built-in scalable font: a last resort on machines without any font package."""
    font = ImageFont.load_default(ATLAS_SIZE)
    assert isinstance(font, ImageFont.FreeTypeFont), "Pillow built without FreeType"
    regular = [_render_glyph(font, d, 0) for d in DIGITS]
    bold = [_render_glyph(font, d, max(1, round(0.045 * ATLAS_SIZE))) for d in DIGITS]
    assert all(g is not None for g in regular + bold)
    return FontGlyphs(
        name="pillow-default",
        regular=[g for g in regular if g is not None],
        bold=[g for g in bold if g is not None],
        height=float(np.median([g.mask.shape[0] for g in regular if g is not None])),
    )
