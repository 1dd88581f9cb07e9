"""Decode one image file into uint8 pixels, explicitly, or say in one line what is wrong with it.

PIL's defaults are silent in the wrong places: `convert("RGB")` drops alpha onto black, clips
16-bit grey to 255 and gives CMYK a naive conversion without telling anyone. Every mode we accept
is converted here on purpose; anything else is a `BadImage` with a reason a user can act on.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from xdomain.data.dataset import to_channels
from xdomain.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


class BadImage(Exception):
    """A file that cannot be used as an image; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _over(a: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite `a` (H, W, C) onto white with `alpha` (H, W) in 0..255; uint8 out.

    White, not PIL's implicit black: transparent sprites and logos are drawn for light pages.
    """
    w = alpha.astype(np.float32)[..., None] / 255.0
    out = a.astype(np.float32) * w + 255.0 * (1.0 - w)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _integer_to_u8(a: np.ndarray, bits: int) -> np.ndarray:
    """16/32-bit integer grey to 8 bit by its real range.

    Unsigned 16-bit data uses 0..65535 (/257 maps it exactly onto 0..255). 32-bit "I" images
    carry no declared range: 8-bit and 16-bit content stored as I keeps its own scale, anything
    else is stretched min..max.
    """
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and (bits == 16 or hi > 255) and hi <= 65535:
        scaled = a / 257.0
    elif lo >= 0 and hi <= 255:
        scaled = a
    else:
        scaled = (a - lo) / max(hi - lo, 1e-12) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _float_to_u8(a: np.ndarray) -> np.ndarray:
    """Float grey: [0, 1] data is scaled by 255, [0, 255] data kept, anything else stretched."""
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1:
        scaled = a * 255.0
    elif lo >= 0 and hi <= 255:
        scaled = a
    else:
        scaled = (a - lo) / max(hi - lo, 1e-12) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_pixels(im: Image.Image) -> np.ndarray:
    """A loaded PIL image as uint8 (H, W, 1) grey or (H, W, 3) RGB, by an explicit rule per mode."""
    w, h = im.size
    if w < 1 or h < 1:
        raise BadImage(f"image is {w}x{h} pixels: it has no pixels to use")
    mode = im.mode
    if mode == "1":
        return (np.asarray(im, dtype=np.uint8) * 255)[..., None]
    if mode == "L":
        return np.asarray(im, dtype=np.uint8)[..., None]
    if mode == "LA":
        la = np.asarray(im, dtype=np.uint8)
        return _over(la[..., :1], la[..., 1])
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("RGBA", "RGBa", "P", "PA", "La"):
        # Palette transparency (tRNS, GIF transparency index) becomes a real alpha here.
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        return _over(rgba[..., :3], rgba[..., 3])
    if mode in ("CMYK", "YCbCr"):
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    if mode.startswith("I;16"):
        if mode.endswith("S"):
            raise BadImage(f"unsupported image mode {mode} (signed 16-bit)")
        return _integer_to_u8(np.asarray(im), 16)[..., None]
    if mode == "I":
        return _integer_to_u8(np.asarray(im), 32)[..., None]
    if mode == "F":
        return _float_to_u8(np.asarray(im))[..., None]
    raise BadImage(f"unsupported image mode {mode}")


def _reason(exc: Exception) -> str:
    """PIL's exception text, cut to a short reason without a repeated path."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file (or an unsupported format)"
    text = " ".join(str(exc).split())
    if "truncated" in text.lower():
        return "truncated image file"
    return f"cannot decode ({type(exc).__name__}: {text})" if text else type(exc).__name__


def decode_file(path: Path, *, max_pixels: int) -> np.ndarray:
    """Decode `path` fully: uint8 (H, W, 1|3), or raise `BadImage`.

    The size check runs on the header, before any pixel is decoded, so a small file that claims
    a gigapixel image (a decompression bomb) costs nothing.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadImage(f"cannot stat ({exc.strerror or exc})") from exc
    if size == 0:
        raise BadImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We apply our own (lower) bound; PIL's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise BadImage(
                        f"image is {w}x{h} = {w * h:,} pixels, above data.max_pixels="
                        f"{max_pixels:,} (a decompression bomb?)"
                    )
                im.load()  # decode now: truncation and corrupt data surface here, not later
                im = ImageOps.exif_transpose(im)  # phone photos store rotation in EXIF
    except BadImage:
        raise
    except Image.DecompressionBombError as exc:
        # Above twice Pillow's own MAX_IMAGE_PIXELS, Image.open refuses before we see the size.
        numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
        detail = f"{numbers[0]:,} pixels, " if numbers else ""
        raise BadImage(
            f"image too large to decode safely ({detail}above Pillow's decompression-bomb limit)"
        ) from exc
    except MemoryError as exc:
        raise BadImage("image too large to decode in memory") from exc
    # PIL's format plugins raise many exception types on corrupt input (OSError, SyntaxError,
    # ValueError, struct.error, EOFError, IndexError ...): any failure to decode is a bad file.
    except Exception as exc:
        raise BadImage(_reason(exc)) from exc
    return to_pixels(im)


Preprocess = Literal["crop", "resize", "pad"]
CROP_SPAN = 16  # `crop` resamples only the centre square of images more than 16 times as long
PREPROCESS: tuple[str, ...] = ("crop", "resize", "pad")


def fit_square(pixels: np.ndarray, size: int, mode: Preprocess = "crop") -> np.ndarray:
    """Bring uint8 (H, W, C) pixels to (size, size, C): the one rule for training and inference.

    - `crop` (training's rule, the default): resize the shorter side to `size`, centre-crop.
    - `resize`: resize the whole image to size x size (the aspect ratio is not kept).
    - `pad`: resize the longer side to `size`, centre it on a square filled with the median
      colour of the image's border (white for a scan, black for a dark background).
    Bicubic with a box pre-reduction (`reducing_gap`): bicubic alone is sharp when upscaling,
    the box step averages (area-style) when shrinking a lot, which avoids aliasing in photos.
    """
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4) or min(pixels.shape[:2]) < 1:
        shape = "x".join(str(n) for n in pixels.shape)
        raise DataError(
            f"data: cannot fit a {shape} (H x W x C) image to {size}x{size}: want at least 1x1"
            " pixels of 1, 3 or 4 channels — give a non-empty image"
        )
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise DataError(f"data: cannot fit an image to size {size!r}: want an integer >= 1")
    h, w, c = pixels.shape
    if mode == "resize":
        new_w = new_h = size
    else:
        scale = size / (min(h, w) if mode == "crop" else max(h, w))
        new_w, new_h = round(w * scale), round(h * scale)
        new_w, new_h = (
            (max(size, new_w), max(size, new_h))
            if mode == "crop"
            else (min(size, max(1, new_w)), min(size, max(1, new_h)))
        )
    im = _pil(pixels)
    if mode == "crop" and new_w * new_h > CROP_SPAN * size * size:
        # A very long strip (1 x 100000 px): resizing all of it to crop the centre would take
        # gigabytes. Resample only the source box under the centre square: the same bicubic
        # kernels (the box pre-reduction aligns to the box, so a shrink may differ by a few
        # levels), without the pixels the crop would throw away.
        left, top = (new_w - size) // 2, (new_h - size) // 2
        sx, sy = w / new_w, h / new_h
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        im = im.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
        out = np.asarray(im, dtype=np.uint8)
        return out[..., None] if out.ndim == 2 else out
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    if mode == "pad":
        border = np.concatenate(
            [pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]], axis=0
        )  # (2W + 2H, C)
        fill = tuple(int(v) for v in np.median(border, axis=0))
        canvas = Image.new(im.mode, (size, size), fill[0] if c == 1 else fill)
        canvas.paste(im, ((size - new_w) // 2, (size - new_h) // 2))
        im = canvas
    else:
        left, top = (new_w - size) // 2, (new_h - size) // 2
        im = im.crop((left, top, left + size, top + size))
    out = np.asarray(im, dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def unfit_square(
    out: Image.Image, input_size: tuple[int, int], mode: Preprocess = "crop"
) -> Image.Image:
    """Map a model-size output back to the input's geometry (`--output-size input`).

    `resize` and `pad` give back the input's (W, H) exactly (the padding is cut away first);
    `crop` gives the centre square the model saw, at its size in the input (short side).
    """
    w, h = input_size
    size = out.size[0]
    if mode == "crop":
        side = min(w, h)
        return out.resize((side, side), Image.Resampling.BICUBIC)
    if mode == "pad":
        scale = size / max(w, h)
        new_w, new_h = min(size, max(1, round(w * scale))), min(size, max(1, round(h * scale)))
        left, top = (size - new_w) // 2, (size - new_h) // 2
        out = out.crop((left, top, left + new_w, top + new_h))
    return out.resize((w, h), Image.Resampling.BICUBIC)


def bad_file_message(path: Path | str, reason: str) -> str:
    """The one-line error for a bad file: which file, what is wrong, how to fix it."""
    fix = "delete or replace it, or set data.on_bad_file=skip to skip bad files"
    if "max_pixels" in reason:
        fix = "shrink it, raise data.max_pixels, or set data.on_bad_file=skip to skip bad files"
    return f"data: cannot read '{path}': {reason} — {fix}"


def _pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def read_image(path: str | Path, *, max_pixels: int = 50_000_000) -> Image.Image:
    """One image file as a PIL image in mode L (grey sources) or RGB, converted explicitly.

    For single files (translate, inference); raises `DataError` with the one-line message.
    """
    try:
        return _pil(decode_file(Path(path), max_pixels=max_pixels))
    except BadImage as exc:
        raise DataError(bad_file_message(path, exc.reason)) from None


def convert_image(image: Image.Image, channels: int) -> Image.Image:
    """Any in-memory PIL image -> mode L (channels=1) or RGB (channels=3), by the rules above."""
    if channels not in (1, 3):
        raise DataError(f"data: channels={channels} is not supported — use 1 or 3")
    try:
        pixels = to_pixels(image)
    except BadImage as exc:
        raise DataError(f"data: cannot convert image: {exc.reason}") from None
    return _pil(to_channels(pixels, channels))
