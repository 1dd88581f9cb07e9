"""Method-agnostic evaluation: translate held-out data and score it with the built-in metrics.

Images: translations of held-out `a` are scored by the judge of domain `b` (a classifier trained on
real `b` images only): label accuracy where both domains share a label space (the DTN protocol),
FID and KID in the judge's feature space. KID is reported as computed (not multiplied by 1000),
`kid_judge_std` is its standard deviation over 50 random subsets. `val_*` metrics use a
validation tail of train `a`, never the test split, so selecting a checkpoint by them does not
peek at test data.
Points (the 2-D toy): mode coverage, from `xdomain.metrics.toy`.
"""

from __future__ import annotations

from typing import Any

import torch

from xdomain.config import EvalConfig
from xdomain.datamodule import TwoDomainData
from xdomain.methods.base import Method


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
    return metrics


def n_scored(data: TwoDomainData, cfg: EvalConfig) -> int:
    """How many held-out items `evaluate` translates and scores (the test split may be smaller)."""
    return min(cfg.n_test, len(data.test_a))
