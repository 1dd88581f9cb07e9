"""What people look at: PNG sample grids and a self-contained `report.html` per run."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

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


def _records(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _plot_png(records: list[dict[str, Any]], kind: str, title: str) -> str | None:
    """Curves of every numeric key of one record kind -> base64 PNG (None if nothing to plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if r.get("kind") == kind]
    keys = sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if isinstance(v, (int, float)) and k not in ("step", "time", "it_per_s")
        }
    )
    if not rows or not keys:
        return None
    cols = min(4, len(keys))
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    for ax, k in zip(axes.flat, keys, strict=False):
        pts = [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        ax.set_title(k, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img_tag(path: Path, width: int | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    w = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}"{w} alt="{html.escape(path.name)}">'


def write_report(run: str | Path, sample_rows: str = "input, translation") -> Path:
    """Write `run/report.html`: final metrics, curves, the latest sample grids and figures.
    `sample_rows` says what the sample grids' rows show (the method's `sample_rows`)."""
    run = Path(run)
    records = _records(run)
    final_path = run / "final_metrics.json"
    final = json.loads(final_path.read_text()) if final_path.is_file() else {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>xdomain report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "td,th{padding:2px 10px;text-align:left}img{image-rendering:pixelated}</style>"
        "</head><body>",
        f"<h1>xdomain run: {html.escape(run.name)}</h1>",
    ]
    if final:
        parts.append("<h2>Final metrics</h2><table>")
        for k, v in final.items():
            parts.append(
                f"<tr><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>"
                if isinstance(v, float)
                else f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            )
        parts.append("</table>")
    for kind, title in (("eval", "Evaluation"), ("train", "Training losses")):
        png = _plot_png(records, kind, title)
        if png:
            parts.append(f"<h2>{title}</h2><img src='data:image/png;base64,{png}'>")
    figures = sorted((run / "figures").glob("*.png")) if (run / "figures").is_dir() else []
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [f"<p>{html.escape(f.stem)}<br>{_img_tag(f, 640)}</p>" for f in figures]
    samples = sorted((run / "samples").glob("step-*.png"))
    if samples:
        parts.append(f"<h2>Samples</h2><p>Rows: {html.escape(sample_rows)}.</p>")
        for f in samples[-4:][::-1]:
            parts.append(f"<p>{html.escape(f.stem)}<br>{_img_tag(f)}</p>")
    cfg = run / "config.yaml"
    if cfg.is_file():
        parts.append(f"<h2>Config</h2><pre>{html.escape(cfg.read_text())}</pre>")
    parts.append("</body></html>")
    out = run / "report.html"
    from xdomain.io import atomic_write_text

    atomic_write_text(out, "\n".join(parts))
    return out
