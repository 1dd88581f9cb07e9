"""Augmentation policies, each a comma list of names:

- `augment_source` (DTN's `f_augment`): printed digits made to look more like handwriting while
  f is pretrained (grey, inverted, thicker or thinner, warped, low resolution), drawn from a
  seeded generator;
- `augment_target` (DTN's `tid_augment`): target digits made source-like for L_TID (neighbouring
  digits, faint ink, blur, noise, colours);
- `diff_augment` (DiffAugment, Zhao et al. 2020): differentiable colour / translation / cutout
  of the images D sees.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from xdomain.errors import ConfigError

F_AUGMENTS = ("gray", "invert", "autocontrast", "binarize", "thickness", "affine", "lowres")


def parse_policy(field: str, policy: str, valid: tuple[str, ...]) -> list[str]:
    """A comma list of augmentation ops -> its ops, or a one-line ConfigError naming `field`."""
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    for op in ops:
        if op not in valid:
            raise ConfigError(f"model.{field}: unknown op '{op}'; valid: {', '.join(valid)}")
    return ops


def augment_source(x: Tensor, policy: str, gen: torch.Generator) -> Tensor:
    """Make (B, C, H, W) printed digits in [-1, 1] look more like handwriting, per image at random.

    Only generic image operations that need no target labels: `gray` (luma to every channel),
    `invert` (dark-on-light <-> light-on-dark), `autocontrast` (grey, turned so the border is dark,
    stretched to [-1, 1]: light ink on black), `binarize` (a steep contrast curve around the
    image mean: flat ink, flat background), `thickness` (3x3 max or min filter: bolder or
    thinner strokes), `affine` (rotation, shear, scale, shift), `lowres` (down to 6-16 px and back
    up: the blur of an upsampled small scan). Each op is applied to half the images.
    """
    b, c, h, w = x.shape
    ops = parse_policy("f_augment", policy, F_AUGMENTS)

    def pick() -> Tensor:
        return (torch.rand(b, generator=gen) < 0.5)[:, None, None, None]  # (B, 1, 1, 1)

    for op in ops:
        if op == "gray" and c == 3:
            luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]  # (B, 1, H, W)
            x = torch.where(pick(), luma.expand_as(x), x)
        elif op == "invert":
            x = torch.where(pick(), -x, x)
        elif op == "autocontrast":
            gray = x.mean(1, keepdim=True)  # (B, 1, H, W)
            ring = torch.ones_like(gray[:1], dtype=torch.bool)
            ring[..., 3:-3, 3:-3] = False  # the 3 px border: mostly background
            dark_ink = gray[:, :, ring[0, 0]].mean((1, 2)) > gray.mean((1, 2, 3))  # (B,)
            gray = torch.where(dark_ink[:, None, None, None], -gray, gray)
            lo = gray.amin((1, 2, 3), keepdim=True)
            hi = gray.amax((1, 2, 3), keepdim=True)
            gray = (gray - lo) / (hi - lo).clamp_min(1e-3) * 2 - 1
            x = torch.where(pick(), gray.expand_as(x), x)
        elif op == "binarize":
            mean = x.mean((1, 2, 3), keepdim=True)
            std = x.std((1, 2, 3), keepdim=True).clamp_min(1e-3)
            x = torch.where(pick(), torch.tanh(3 * (x - mean) / std), x)
        elif op == "thickness":
            thick = F.max_pool2d(x, 3, 1, 1)
            thin = -F.max_pool2d(-x, 3, 1, 1)
            which = torch.rand(b, generator=gen)[:, None, None, None]
            x = torch.where(which < 1 / 3, thick, torch.where(which < 2 / 3, thin, x))
        elif op == "affine":
            u = torch.rand(b, 5, generator=gen) * 2 - 1  # (B, 5) in [-1, 1]
            ang, shear = u[:, 0] * math.radians(15), u[:, 1] * 0.3
            # digit size x0.7 .. x1.1: printed digits fill the frame, scanned ones have a margin
            size = 0.9 + 0.2 * u[:, 2]
            cos, sin = torch.cos(ang) / size, torch.sin(ang) / size
            theta = torch.stack(
                [
                    torch.stack([cos, -sin + shear, u[:, 3] * 0.15], 1),
                    torch.stack([sin, cos, u[:, 4] * 0.15], 1),
                ],
                1,
            )  # (B, 2, 3)
            grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)  # (B, H, W, 2)
            x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
        elif op == "lowres":
            out = x.clone()
            sizes = torch.randint(6, 17, (b,), generator=gen)
            mask = pick()[:, 0, 0, 0]
            for s in sizes[mask].unique().tolist():
                sel = mask & (sizes == s)
                small = F.interpolate(x[sel], size=(s, s), mode="area")
                out[sel] = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
            x = out.clamp(-1, 1)
    return x


TID_AUGMENTS = ("neighbours", "faint", "blur", "noise", "colour")


def augment_target(x: Tensor, policy: str) -> Tensor:
    """Make (B, C, H, W) target digits in [-1, 1] (light ink on dark) look more like source
    digits, per image at random; L_TID then asks g(f(t')) = t, so g learns to drop what the
    source adds. Target images only: no labels, no source images.

    `neighbours` (parts of two other digits of the batch at the left and right edge, as house
    numbers have), `faint` (ink contrast x0.3-1), `blur` (3x3 box blur), `noise` (Gaussian,
    sigma up to 0.15), `colour` (random ink and background colours; the grey level is the
    ink's coverage). Each op is applied to half the images, in the order given. Uses the global
    RNG (seeded per process, saved with checkpoints).
    """
    b, c, _, w = x.shape
    ops = parse_policy("tid_augment", policy, TID_AUGMENTS)

    def pick() -> Tensor:
        return torch.rand(b, 1, 1, 1, device=x.device) < 0.5  # (B, 1, 1, 1)

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(b, 1, 1, 1, device=x.device)  # (B, 1, 1, 1)

    for op in ops:
        if op == "neighbours":
            shift = int(torch.randint(w // 2, w * 11 // 16 + 1, ()))  # 16-22 px at 32
            left = F.pad(x.roll(1, 0)[..., shift:], (0, shift), value=-1.0)  # moved left
            right = F.pad(x.roll(2, 0)[..., : w - shift], (shift, 0), value=-1.0)
            x = torch.where(pick(), torch.maximum(x, torch.maximum(left, right)), x)
        elif op == "faint":
            x = torch.where(pick(), -1 + (x + 1) * uniform(0.3, 1.0), x)
        elif op == "blur":
            blurred = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            x = torch.where(pick(), blurred, x)
        elif op == "noise":
            noisy = (x + torch.randn_like(x) * uniform(0.0, 0.15)).clamp(-1, 1)
            x = torch.where(pick(), noisy, x)
        elif op == "colour":
            ink = (x.mean(1, keepdim=True) + 1) / 2  # (B, 1, H, W) in [0, 1]
            fg = torch.rand(b, c, 1, 1, device=x.device) * 2 - 1
            bg = torch.rand(b, c, 1, 1, device=x.device) * 2 - 1
            x = torch.where(pick(), bg + (fg - bg) * ink, x)
    return x


# ----------------------------------------------------------------------------- DiffAugment


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """Differentiable augmentation (Zhao et al. 2020, "DiffAugment") of (B, C, H, W) in [-1, 1].

    `policy` is a comma-separated subset of `color`, `translation`, `cutout` ("" -> identity).
    Applied to both real and fake images before D, so D cannot memorise a small real set while
    G still receives gradients through the augmentation. Each image draws its own parameters from
    `generator` (global RNG when None).
    """
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in _AUGMENTS:
            raise ValueError(f"unknown DiffAugment policy '{name}'; valid: {', '.join(_AUGMENTS)}")
        x = _AUGMENTS[name](x, generator)
    return x


def _rand(x: Tensor, g: torch.Generator | None, *shape: int) -> Tensor:
    # drawn on the CPU in float32 so that a seeded generator gives the same numbers on any device
    return torch.rand(*shape, generator=g).to(x.device, x.dtype)


def _color(x: Tensor, g: torch.Generator | None) -> Tensor:
    b = x.shape[0]
    x = x + (_rand(x, g, b, 1, 1, 1) - 0.5)  # brightness, +-0.5 in [-1, 1] units
    mean_c = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    x = (x - mean_c) * (_rand(x, g, b, 1, 1, 1) * 2) + mean_c  # saturation x[0, 2]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - mean) * (_rand(x, g, b, 1, 1, 1) + 0.5) + mean  # contrast x[0.5, 1.5]


def _translation(x: Tensor, g: torch.Generator | None, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to `ratio` of its size. Zero padding in [-1, 1] space would paint
    grey frames, so the uncovered border takes the image's minimum (its background here)."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (_rand(x, g, b) * (2 * sh + 1)).long().clamp(max=2 * sh) - sh  # (B,) in [-sh, sh]
    tx = (_rand(x, g, b) * (2 * sw + 1)).long().clamp(max=2 * sw) - sw
    fill = x.amin(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    padded = F.pad(x - fill, (sw, sw, sh, sh)) + fill  # (B, C, H+2sh, W+2sw)
    iy = torch.arange(h, device=x.device)[None, :] + sh - ty[:, None]  # (B, H)
    ix = torch.arange(w, device=x.device)[None, :] + sw - tx[:, None]  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, iy[:, :, None], ix[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def _cutout(x: Tensor, g: torch.Generator | None, ratio: float = 0.5) -> Tensor:
    """Blank one random square of side `ratio` * size per image (set to the image minimum)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (_rand(x, g, b) * (h + 1 - ch % 2)).long()  # (B,) centre rows
    cx = (_rand(x, g, b) * (w + 1 - cw % 2)).long()
    ys = torch.arange(h, device=x.device)[None, :]  # (1, H)
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= (cy[:, None] - ch // 2)) & (ys < (cy[:, None] - ch // 2 + ch))  # (B, H)
    in_x = (xs >= (cx[:, None] - cw // 2)) & (xs < (cx[:, None] - cw // 2 + cw))  # (B, W)
    hole = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (B, 1, H, W)
    fill = x.amin(dim=(1, 2, 3), keepdim=True)
    return torch.where(hole, fill, x)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
