"""Method-agnostic evaluation: translate held-out data and score it with the built-in metrics.

Images: translations of held-out `a` are scored by the judge of domain `b` (a classifier trained on
real `b` images only): label accuracy where both domains share a label space (the DTN protocol),
FID and KID in the judge's feature space. KID is reported as computed (not multiplied by 1000),
`kid_judge_std` is its standard deviation over 50 random subsets, `kid_judge_floor` real train b
against real test b (what a perfect generator would score). `diversity` is the mean pairwise
distance between translations of the same digit, beside `diversity_real` of real b digits.
With printed digits as the source, `style_bold` / `style_italic` are the shares of bold and
italic pairs whose translations differ the way the inputs do (`xdomain.metrics.style`; 0.5:
the style is not carried).
`val_*` metrics use a validation tail of train `a`, never the test split, so selecting a
checkpoint by them does not peek at test data.
Points (the 2-D toy): mode coverage, from `xdomain.metrics.toy`.
"""

from __future__ import annotations

from typing import Any

import torch

from xdomain.config import EvalConfig
from xdomain.datamodule import TwoDomainData
from xdomain.methods.base import Method

PRINTED_SOURCES = ("digits-printed", "digits-printed-system")
STYLE_PAIRS = 200  # bold and italic pairs each, from the printed test stream (metrics.style)


def _judge(train: Any, test: Any) -> Any:
    from xdomain.metrics import get_judge

    if getattr(train, "num_classes", 0) <= 0 or getattr(train, "labels", None) is None:
        return None
    return get_judge(train.name, train.tensors(), test.tensors(), num_classes=train.num_classes)


@torch.no_grad()
def translate_all(
    method: Method, x: torch.Tensor, batch_size: int = 256, desc: str = "evaluate: translating"
) -> torch.Tensor:
    from tqdm.auto import tqdm

    starts = range(0, x.shape[0], batch_size)
    bar = tqdm(starts, desc=desc, unit="batch", leave=False, delay=2.0)
    return torch.cat([method.translate(x[i : i + batch_size]) for i in bar])


def evaluate(method: Method, data: TwoDomainData, cfg: EvalConfig) -> dict[str, float]:
    if data.spec.kind == "points":
        from xdomain.metrics.toy import evaluate_toy

        return evaluate_toy(method, data)
    from xdomain.metrics import extract_features, fid, kid, label_accuracy

    metrics: dict[str, float] = {}
    xa, ya = data.test_a.tensors()
    xa, ya = xa[: cfg.n_test], ya[: cfg.n_test]
    fake_b = translate_all(method, xa)
    judge = _judge(data.train_b, data.test_b)
    if judge is None:
        return metrics
    same_labels = data.spec.num_classes_a == data.spec.num_classes_b > 0
    if same_labels:
        metrics["acc"] = label_accuracy(judge, fake_b, ya)
        if data.cfg.holdout_fonts:  # the fonts the model never saw, and the others
            from xdomain.datamodule import heldout_fonts_mask

            held = heldout_fonts_mask(data.test_a, data.cfg)[: len(ya)]
            for name, sel in (("acc_heldout_fonts", held), ("acc_seen_fonts", ~held)):
                if bool(sel.any()):
                    metrics[name] = label_accuracy(judge, fake_b[sel], ya[sel])
        val = data.val_a()
        if val is not None:
            metrics["val_acc"] = label_accuracy(judge, translate_all(method, val[0]), val[1])
    xb, _ = data.test_b.tensors()
    real_f = extract_features(judge.features, xb)
    fake_f = extract_features(judge.features, fake_b)
    metrics["fid_judge"] = fid(real_f, fake_f)
    # KID as computed (not x1000, unlike some papers), with its spread over the 50 subsets
    mean, std = kid(real_f, fake_f, n_subsets=50, subset_size=min(len(xb), 1000))
    metrics["kid_judge"], metrics["kid_judge_std"] = mean, std
    # its floor: real train b against real test b, what a perfect generator would score
    train_f = extract_features(judge.features, data.train_b.tensors()[0])
    metrics["kid_judge_floor"] = kid(real_f, train_f, n_subsets=50, subset_size=min(len(xb), 1000))[
        0
    ]
    if same_labels:  # a collapse to one image per class shows here
        _, yb = data.test_b.tensors()
        metrics["diversity"] = within_class_diversity(fake_b, ya)
        metrics["diversity_real"] = within_class_diversity(xb, yb)
    if data.cfg.a in PRINTED_SOURCES and not data.cfg.root:
        from xdomain.metrics.style import style_scores

        metrics |= style_scores(
            lambda x: translate_all(method, x, desc="evaluate: style pairs"),
            n=STYLE_PAIRS,
            channels=data.spec.channels,
            font_set="system" if data.cfg.a == "digits-printed-system" else "manifest",
        )
    return metrics


def within_class_diversity(x: torch.Tensor, labels: torch.Tensor, per_class: int = 100) -> float:
    """Mean pairwise pixel distance (RMS, in [-1, 1] units) between images of the same label,
    over up to `per_class` images of each label: 0 when every class is one image."""
    dists = []
    for c in labels.unique().tolist():
        xc = x[labels == c][:per_class].flatten(1).float()  # (n, D)
        if len(xc) > 1:
            d = torch.cdist(xc, xc) / xc.shape[1] ** 0.5  # (n, n)
            dists.append(d.sum() / (len(xc) * (len(xc) - 1)))
    return float(torch.stack(dists).mean()) if dists else 0.0


def n_scored(data: TwoDomainData, cfg: EvalConfig) -> int:
    """How many held-out items `evaluate` translates and scores (the test split may be smaller)."""
    return min(cfg.n_test, len(data.test_a))
