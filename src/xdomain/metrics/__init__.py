"""Metrics for translated images that need no downloaded weights.

`fid` holds the distances (FID, KID) over any feature extractor; `judges` trains and caches small
classifiers on a dataset's real images, whose logits give label accuracy and whose penultimate
features give FID / KID when Inception is not available.
"""

from __future__ import annotations

from xdomain.metrics.fid import (
    MetricError,
    extract_features,
    feature_statistics,
    fid,
    frechet_distance,
    kid,
)
from xdomain.metrics.judges import (
    JUDGE_VERSION,
    Judge,
    JudgeArch,
    TrainConfig,
    get_judge,
    judge_hash,
    label_accuracy,
    train_judge,
)

__all__ = [
    "JUDGE_VERSION",
    "Judge",
    "JudgeArch",
    "MetricError",
    "TrainConfig",
    "extract_features",
    "feature_statistics",
    "fid",
    "frechet_distance",
    "get_judge",
    "judge_hash",
    "kid",
    "label_accuracy",
    "train_judge",
]
