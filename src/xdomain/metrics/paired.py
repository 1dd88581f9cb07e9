"""Paired, multimodal translation scores (pix2pix, BicycleGAN): the BicycleGAN paper's protocol
with our own judges in place of LPIPS and human raters.

For `DIVERSITY_INPUTS` (100) test inputs, `DIVERSITY_SAMPLES` (20) random codes each (drawn from
a fixed seed, the same for every model):

- `diversity`      mean distance between consecutive outputs of one input (19 pairs each), in a
                   judge's penultimate features, each feature vector scaled to unit length (the
                   LPIPS recipe of comparing normalised activations; 0: one output per input)
- `diversity_l1`   the same in pixels: mean |y_k - y_k+1| in [-1, 1] units
- `diversity_real` the ceiling: consecutive *different* real b test images, in the same features
                   (`diversity_real_l1`: in pixels)
- `kid_judge`      realism: KID of all outputs against the real b test images in the judge's
                   features (not x1000), `kid_judge_floor` real train b against real test b
- `acc`            labelled targets: the share of outputs the judge reads as the input's label
                   (a glyph mask must come out as the same digit)
- `l1`             |b - G(a, z)| with z encoded from the ground truth b (`encode_style`; a
                   method without an encoder: its one output), over every test pair scored

The judge is trained on real b images only: a classifier of b's labels where b has them
(`glyphs2digits`: the digit; `edges2fashion`: the ten classes), else real a vs real b.
"""

from __future__ import annotations

from typing import Any

import torch

# what `evaluate_paired` returns that can select a checkpoint, and which direction is better
METRICS: dict[str, str] = {
    "diversity": "max",
    "diversity_l1": "max",  # outputs of one input differ
    "acc": "max",
    "kid_judge": "min",
    "l1": "min",  # |b - G(a, E(b))| on held-out pairs
}

DIVERSITY_INPUTS = 100
DIVERSITY_SAMPLES = 20
Z_SEED = 1234  # the codes of every evaluation


def paired_judge(data: Any) -> tuple[Any, bool]:
    """The judge of b images and whether it reads labels (True) or only a vs b (False)."""
    from xdomain.metrics import get_judge
    from xdomain.metrics.translation import domain_judge

    train_b, test_b = data.train_b, data.test_b
    if getattr(train_b, "num_classes", 0) > 0 and train_b.labels is not None:
        judge = get_judge(
            train_b.name, train_b.tensors(), test_b.tensors(), num_classes=train_b.num_classes
        )
        return judge, True
    return domain_judge(data.train_a, train_b, data.test_a, test_b), False


def _unit_features(judge: Any, x: torch.Tensor) -> torch.Tensor:
    from xdomain.metrics import extract_features
    from xdomain.metrics.translation import judge_view

    f = extract_features(judge.features, judge_view(x)).flatten(1).float()  # (N, D)
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-8)


def consecutive_distance(y: torch.Tensor, judge: Any) -> tuple[float, float]:
    """y (N, K, C, H, W): mean feature and pixel distance between outputs k and k+1."""
    n, k = y.shape[:2]
    f = _unit_features(judge, y.flatten(0, 1)).view(n, k, -1)
    feat = (f[:, 1:] - f[:, :-1]).norm(dim=2).mean()
    pix = (y[:, 1:] - y[:, :-1]).abs().mean()
    return float(feat), float(pix)


@torch.no_grad()
def sample_outputs(method: Any, x: torch.Tensor, k: int, batch_size: int = 64) -> torch.Tensor:
    """(N, C, H, W) inputs -> (N, K, C, H, W): K outputs each, with the evaluation's codes
    (the same K codes for every input); a method without codes: its one output K times."""
    from xdomain.metrics.translation import translate_all

    if "z" not in method.translate_options:
        y = translate_all(method, x, batch_size=batch_size)
        return y[:, None].expand(-1, k, *y.shape[1:])
    g = torch.Generator().manual_seed(Z_SEED)
    z = torch.randn(k, method.code_dim, generator=g)  # (K, nz)
    return translate_all(method, x, batch_size=batch_size, z=z)  # (K, nz): every input


def evaluate_paired(method: Any, data: Any, cfg: Any) -> dict[str, float]:
    """The scores above for a method trained on `PairedData`."""
    from xdomain.metrics import extract_features, kid, label_accuracy
    from xdomain.metrics.translation import head_items, judge_view, translate_all

    xa, _ = data.test_a.tensors()
    xb, yb = data.test_b.tensors()
    n_all = min(cfg.n_test, len(xa))
    n = min(DIVERSITY_INPUTS, n_all)
    judge, labelled = paired_judge(data)
    y = sample_outputs(method, xa[:n], DIVERSITY_SAMPLES)  # (n, K, C, H, W)
    metrics: dict[str, float] = {}
    metrics["diversity"], metrics["diversity_l1"] = consecutive_distance(y, judge)
    real = xb[: 2 * n].view(n, 2, *xb.shape[1:]) if len(xb) >= 2 * n else xb[None]
    metrics["diversity_real"], metrics["diversity_real_l1"] = consecutive_distance(real, judge)
    fakes = judge_view(y.flatten(0, 1))
    if labelled:
        metrics["acc"] = label_accuracy(judge, fakes, yb[:n].repeat_interleave(y.shape[1]))
    real_f = extract_features(judge.features, judge_view(xb))
    fake_f = extract_features(judge.features, fakes)
    size = min(len(real_f), len(fake_f), 1000)
    metrics["kid_judge"], metrics["kid_judge_std"] = kid(
        real_f, fake_f, n_subsets=50, subset_size=size
    )
    train_f = extract_features(judge.features, head_items(data.train_b, 10**9))
    metrics["kid_judge_floor"] = kid(real_f, train_f, n_subsets=50, subset_size=size)[0]
    # fidelity: the ground truth's own code, when the method has an encoder
    xa, xb = xa[:n_all], xb[:n_all]
    if hasattr(method, "encode_style"):
        z = torch.cat([method.encode_style(xb[i : i + 256]) for i in range(0, n_all, 256)])
        out = translate_all(method, xa, per_input={"z": z[:, None]})[
            :, 0
        ]  # z (N, 1, nz): E's mu of each b
    else:
        out = translate_all(method, xa)
    metrics["l1"] = float((out - xb).abs().mean())
    return metrics
