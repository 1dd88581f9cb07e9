"""Mode metrics and the landscape figure for the 2-D toy (DiscoGAN, Kim et al. 2017, Fig. 4).

A translated point "lands" in the B mode whose centre is nearest, if it is within `n_sigma`
standard deviations of it, and is "off" otherwise. From the landings of the translated test A
points:

- `modes_covered`   B modes that receive at least `min_share` of all translated points (of K_b);
                    a GAN that collapses leaves some B modes empty
- `modes_distinct`  distinct B modes among the A modes' majority landings (of min(K_a, K_b));
                    several A modes sharing one B mode is the collapse the paper's figure shows
- `modes_a_on`      A modes whose majority lands on some B mode rather than off
- `on_mode_frac`    fraction of translated points within `n_sigma` of some B mode
- `mode_purity`     mean over A modes of the fraction of its points in its majority B mode
                    (1: each A mode goes to one B mode, as a smooth map of a small blob should)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

# what `evaluate_toy` returns that can select a checkpoint, and which direction is better
METRICS: dict[str, str] = {
    "modes_covered": "max",
    "modes_distinct": "max",
    "modes_a_on": "max",
    "on_mode_frac": "max",
    "mode_purity": "max",
    "d_b_fake": "",
}

N_SIGMA = 3.0  # an isotropic 2-D Gaussian keeps 98.9% of its mass within 3 sigma
MIN_SHARE = 0.01  # covered from 1% of the points: a tenth of a fair share at K = 10


def assign_modes(points: Tensor, centers: Tensor, sigma: float, n_sigma: float = N_SIGMA) -> Tensor:
    """(N, 2) points -> (N,) int64 index of the nearest centre, or -1 when farther than n_sigma."""
    dist = torch.cdist(points.double(), centers.double())  # (N, K)
    best, idx = dist.min(dim=1)
    return torch.where(best <= n_sigma * sigma, idx, torch.full_like(idx, -1))


def mode_metrics(
    fake_b: Tensor,
    a_labels: Tensor,
    centers_b: Tensor,
    sigma_b: float,
    *,
    n_sigma: float = N_SIGMA,
    min_share: float = MIN_SHARE,
) -> dict[str, float]:
    """Mode coverage of translated points `fake_b` (N, 2) whose A modes are `a_labels` (N,)."""
    k_b = centers_b.shape[0]
    landed = assign_modes(fake_b, centers_b, sigma_b, n_sigma)  # (N,) in [-1, K_b)
    # column 0 counts "off", column j+1 counts B mode j
    counts_b = torch.bincount(landed + 1, minlength=k_b + 1)[1:]
    covered = int((counts_b >= min_share * len(landed)).sum())
    majority, purity = [], []
    for a in torch.unique(a_labels).tolist():
        hits = torch.bincount(landed[a_labels == a] + 1, minlength=k_b + 1)  # (K_b + 1,)
        top = int(hits.argmax())
        majority.append(top - 1)  # -1: this A mode mostly lands off every B mode
        purity.append(float(hits[top]) / float(hits.sum()))
    on = [m for m in majority if m >= 0]
    return {
        "modes_covered": float(covered),
        "modes_distinct": float(len(set(on))),
        "modes_a_on": float(len(on)),
        "on_mode_frac": float((landed >= 0).double().mean()),
        "mode_purity": float(np.mean(purity)),
    }


@torch.no_grad()
def evaluate_toy(method: Any, data: Any) -> dict[str, float]:
    """Translate the test A points with `method` and score their landings on B's modes."""
    xa, ya = data.test_a.tensors()  # (N, 2), (N,)
    fake_b = torch.cat([method.translate(x) for x in xa.split(4096)])  # (N, 2)
    metrics = mode_metrics(fake_b, ya, data.test_b.centers, data.test_b.sigma)
    score_b = getattr(method, "score_b", None)
    if score_b is not None:
        # the paper's "D_b is fooled": D_b's mean probability that a translation is a real B
        metrics["d_b_fake"] = float(score_b(fake_b).mean())
    return metrics


# --------------------------------------------------------------------------- the figure


def plot_landscape(
    ax: Any,
    score: Callable[[Tensor], Tensor] | None,
    fake_b: Tensor,
    a_labels: Tensor,
    real_b: Tensor,
    *,
    title: str = "",
    extent: float | None = None,
    grid: int = 200,
) -> Any:
    """Draw Fig. 4 of the paper on `ax`: D_b's probability as a heat map, B samples as black x,
    translated A points coloured by their A mode. Returns the heat map (for a colour bar)."""
    pts = torch.cat([fake_b, real_b]).float()
    if extent is None:  # square, around everything shown, with a margin
        extent = float(pts.abs().max()) * 1.15 + 0.1
    image = None
    if score is not None:
        ticks = torch.linspace(-extent, extent, grid)
        gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
        xy = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (grid*grid, 2)
        with torch.no_grad():
            prob = score(xy).reshape(grid, grid).cpu().numpy()
        image = ax.imshow(
            prob,
            origin="lower",
            extent=(-extent, extent, -extent, extent),
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            interpolation="bilinear",
        )
    rb = real_b.cpu().numpy()
    ax.scatter(rb[:, 0], rb[:, 1], marker="x", s=12, c="black", linewidths=0.8, label="real B")
    fb, la = fake_b.cpu().numpy(), a_labels.cpu().numpy()
    cmap = _mode_colours()
    for a in np.unique(la):
        sel = la == a
        ax.scatter(
            fb[sel, 0], fb[sel, 1], s=6, color=cmap(int(a) % cmap.N), alpha=0.8, edgecolors="none"
        )
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return image


def _mode_colours() -> Any:
    import matplotlib

    return matplotlib.colormaps["tab10"]


def save_landscape(
    score: Callable[[Tensor], Tensor] | None,
    fake_b: Tensor,
    a_labels: Tensor,
    real_b: Tensor,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """One landscape panel as a PNG at `path` (parent folders are created)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window from a training run
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=100)
    image = plot_landscape(ax, score, fake_b, a_labels, real_b, title=title)
    if image is not None:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="D_b(x)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
