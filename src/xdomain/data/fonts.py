"""The fonts `digits-printed` renders from, and their digit glyphs as an atlas.

The font list decides what the data set looks like, so it is pinned: `fonts-manifest.json` (in
this package) lists each font file by path, sha256, family and the Debian package that installs
it. `manifest_fonts()` returns exactly those files, checked: a missing file is an error naming
the package to install, a file whose bytes differ is an error too (the data set would change).
Fonts installed by anything else are never used. `digits-printed-system` is the explicit
alternative: every font found on the system (`candidate_fonts`), vetted by the checks below.

The checks drop fonts whose "digits" are symbols (URW Dingbats maps 0-9 to pencils and ticks),
missing glyphs (ten identical .notdef boxes) or hairlines that vanish at 32 px. The symbol check
needs no reference font: each font's digits must mostly be nearest to the per-digit median shape
over all candidate fonts. The manifest was written from the fonts that passed them
(`python -m xdomain.data.fonts --write-manifest`, a maintainer's tool).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xdomain.io import atomic_write_text, sha256_file

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


MANIFEST_NAME = "fonts-manifest.json"


@dataclass(frozen=True)
class FontEntry:
    """One pinned font file."""

    path: str
    sha256: str
    family: str
    style: str
    package: str  # the Debian package that installs it
    version: str  # that package's version when the manifest was written


def manifest_text() -> str:
    return resources.files("xdomain.data").joinpath(MANIFEST_NAME).read_text()


def manifest_entries() -> list[FontEntry]:
    return [FontEntry(**e) for e in json.loads(manifest_text())["fonts"]]


def manifest_id() -> str:
    """Short hash of the manifest itself: part of every cache key and data fingerprint."""
    return hashlib.sha256(manifest_text().encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def manifest_fonts() -> tuple[Path, ...]:
    """The manifest's font files, each present and byte-identical, or a one-line DataError."""
    from xdomain.errors import DataError

    entries = manifest_entries()
    missing = [e for e in entries if not Path(e.path).is_file()]
    if missing:
        packages = sorted({e.package for e in missing})
        raise DataError(
            f"digits-printed: {len(missing)} pinned font file(s) are missing"
            f" (e.g. {missing[0].path});"
            f" install the Debian package(s) {' '.join(packages)} (`make setup` does, as root:"
            f" apt-get install {' '.join(packages)}), or use data source digits-printed-system"
        )
    for e in entries:
        if sha256_file(e.path) != e.sha256:
            raise DataError(
                f"digits-printed: font '{e.path}' differs from the pinned one (sha256); the data"
                f" set would change. Install {e.package} {e.version}, or use data source"
                " digits-printed-system"
            )
    return tuple(Path(e.path) for e in entries)


def write_manifest(packages: list[str], out: Path) -> list[str]:
    """Pin the fonts of `packages` that pass the checks; -> the excluded ones (name: reason)."""
    paths = []
    owner: dict[str, str] = {}
    for pkg in packages:
        listing = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True, check=True)
        for line in listing.stdout.splitlines():
            p = Path(line)
            under_roots = any(line.startswith(root + "/") for root in FONT_ROOTS)
            if under_roots and p.suffix.lower() in {".ttf", ".otf"} and p.is_file():
                paths.append(p)
                owner[str(p)] = pkg
    paths = sorted(set(paths))
    fonts, excluded = load_digit_fonts(paths)
    kept = {f.name for f in fonts}
    entries = []
    for p in paths:
        if p.stem not in kept:
            continue
        pkg = owner[str(p)]
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True
        ).stdout
        family, style = ImageFont.truetype(str(p), ATLAS_SIZE).getname()
        entry = FontEntry(str(p), sha256_file(p), family or p.stem, style or "", pkg, version)
        entries.append(entry.__dict__)
    atomic_write_text(out, json.dumps({"version": 1, "fonts": entries}, indent=1) + "\n")
    return excluded


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


def vetted(paths: list[Path]) -> list[FontGlyphs]:
    """The pinned fonts' glyphs, in manifest order, without re-running the checks (they passed
    them when the manifest was written, and re-vetting against another median could drift)."""
    fonts = []
    for path in paths:
        font = ImageFont.truetype(str(path), ATLAS_SIZE)
        regular = [_render_glyph(font, d, 0) for d in DIGITS]
        bold = [_render_glyph(font, d, max(1, round(0.045 * ATLAS_SIZE))) for d in DIGITS]
        fonts.append(
            FontGlyphs(
                name=path.stem,
                regular=[g for g in regular if g is not None],
                bold=[g for g in bold if g is not None],
                height=float(np.median([g.mask.shape[0] for g in regular if g is not None])),
            )
        )
    return fonts


if __name__ == "__main__":  # maintainer's tool: re-pin the fonts (then bump RENDER_VERSION)
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-manifest", type=Path, required=True, help="output JSON path")
    parser.add_argument("packages", nargs="+", help="Debian font packages (the Makefile's list)")
    args = parser.parse_args()
    for line in write_manifest(args.packages, args.write_manifest):
        print("excluded:", line)
