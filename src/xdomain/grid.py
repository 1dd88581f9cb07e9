"""PNG grids of images: the sample grids a method writes while it trains, `xdomain data --grid`,
the benchmarks' figures. Images are tensors in [-1, 1]; a grid is marked as ours in a PNG text
chunk, so a command may replace its own earlier grid but no other file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor


def grid_image(rows: list[Tensor], pad: int = 2) -> np.ndarray:
    """Rows of (N, C, H, W) images in [-1, 1] -> one uint8 (H', W', 3) array, a row per tensor.

    A (N, K, C, H, W) tensor (K samples of each input: BicycleGAN's z) gives K rows."""
    rows = [r for row in rows for r in (row.unbind(1) if row.dim() == 5 else [row])]
    n = max(r.shape[0] for r in rows)
    _, _, h, w = rows[0].shape
    out = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        row = row.detach().float().cpu().clamp(-1, 1)
        if row.shape[1] == 1:
            row = row.expand(-1, 3, -1, -1)
        arr = ((row + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for j in range(arr.shape[0]):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = arr[j]
    return out


GRID_SOFTWARE = "xdomain grid"  # the PNG text chunk that marks a grid this package wrote


def save_grid(rows: list[Tensor], path: str | Path, scale: int = 2) -> Path:
    """Write the rows as one PNG, atomically, marked as ours (`is_grid`)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from xdomain.io import atomic_write

    img = Image.fromarray(grid_image(rows))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("Software", GRID_SOFTWARE)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG", pnginfo=info))


def is_grid(path: Path) -> bool:
    """True for a PNG that `save_grid` wrote (its text chunk), read without decoding pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == GRID_SOFTWARE
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def attention_image(h: Tensor, like: Tensor) -> Tensor:
    """An attention map (B, 1, h, w) (U-GAT-IT's CAM heat map) -> (B, C, H, W) in [-1, 1] at
    the size and channel count of `like`, min-max scaled per image, for a sample grid row."""
    import torch.nn.functional as F

    h = F.interpolate(h.float(), size=like.shape[-2:], mode="bilinear", align_corners=False)
    lo = h.amin(dim=(1, 2, 3), keepdim=True)
    hi = h.amax(dim=(1, 2, 3), keepdim=True)
    h = (h - lo) / (hi - lo).clamp_min(1e-8) * 2 - 1
    return h.expand(-1, like.shape[1], -1, -1)


def attention_rows(x: Tensor, heat_g: Tensor, y: Tensor, heat_d: Tensor) -> list[Tensor]:
    """The four sample rows of an attention-guided translation: the inputs x, G's attention on
    them, the translations y, D's attention on y (maps drawn at x's size)."""
    return [x, attention_image(heat_g, x), y, attention_image(heat_d, x)]
