"""Does a translation carry the input's style? Bold and italic pairs of printed digits.

Each pair is one printed test digit rendered twice, identical in everything (digit, font, size,
position, colours, neighbours, blur, noise) except one style: bold vs regular, or italic vs
upright (`render_one(..., force=...)`). Both members are translated; a pair counts as carried when
the translations differ the way the inputs do:

- bold: the bold member's translation has more ink,
- italic: the italic member's translation leans further right.

The score is the share of pairs carried: 0.5 means the style is not carried (a class-conditional
generator draws the same digit for both members). Ink is the summed absolute deviation of the
grey image from its border's median (the background), so it works for dark-on-light and
light-on-dark digits alike; lean is the second-moment slant of that ink, -cov(x, y) / var(y) with
y pointing down (positive: the top leans right).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

STYLES = ("bold", "italic")


def _ink(x: Tensor) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, H, W) non-negative ink weight."""
    gray = x.float().mean(1)  # (B, H, W)
    border = torch.cat([gray[:, 0], gray[:, -1], gray[:, :, 0], gray[:, :, -1]], 1)  # (B, 2H+2W)
    background = border.median(1).values[:, None, None]  # (B, 1, 1)
    return (gray - background).abs()


def ink_amount(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B,) total ink."""
    return _ink(x).sum((1, 2))


def slant(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B,) rightward lean of the ink from its second moments."""
    w = _ink(x)  # (B, H, W)
    _, h, wd = w.shape
    ys = torch.arange(h, dtype=w.dtype)[None, :, None].expand_as(w)
    xs = torch.arange(wd, dtype=w.dtype)[None, None, :].expand_as(w)
    total = w.sum((1, 2)).clamp_min(1e-6)
    my, mx = (w * ys).sum((1, 2)) / total, (w * xs).sum((1, 2)) / total
    cov = (w * (xs - mx[:, None, None]) * (ys - my[:, None, None])).sum((1, 2)) / total
    var = (w * (ys - my[:, None, None]) ** 2).sum((1, 2)) / total
    return -cov / var.clamp_min(1e-6)


def style_pairs(
    style: str,
    n: int,
    *,
    seed: int = 0,
    size: int = 32,
    channels: int = 3,
    font_set: str = "manifest",
):
    """(plain, styled): two (n, C, S, S) tensors in [-1, 1] of printed test digits, in the pinned
    fonts (`manifest`) or every font on this machine (`system`, `digits-printed-system`)."""
    from xdomain.data.dataset import to_channels
    from xdomain.data.printed import digit_fonts, render_one

    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    fonts, _ = digit_fonts(font_set)  # type: ignore[arg-type]
    out = []
    for value in (False, True):
        imgs = np.stack(
            [render_one(fonts, seed, "test", i, size, force={style: value})[0] for i in range(n)]
        )  # (n, S, S, 3)
        t = torch.from_numpy(to_channels(imgs, channels)).permute(0, 3, 1, 2).float()
        out.append(t / 127.5 - 1.0)
    return out[0], out[1]


def carried(style: str, plain: Tensor, styled: Tensor) -> float:
    """Share of pairs whose members differ the way the style says (see the module docstring)."""
    measure = ink_amount if style == "bold" else slant
    a, b = measure(styled), measure(plain)
    # a tie (identical translations) is half a pair: a generator that ignores style scores 0.5
    return float(((a > b).float() + 0.5 * (a == b).float()).mean())


@torch.no_grad()
def style_scores(
    translate, n: int = 200, *, seed: int = 0, channels: int = 3, font_set: str = "manifest"
) -> dict[str, float]:
    """{'style_bold': ..., 'style_italic': ...} for a translation function of image batches."""
    scores = {}
    for style in STYLES:
        plain, styled = style_pairs(style, n, seed=seed, channels=channels, font_set=font_set)
        scores[f"style_{style}"] = carried(style, translate(plain), translate(styled))
    return scores
