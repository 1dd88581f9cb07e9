"""`xdomain evaluate` as functions: a method's held-out metrics through its own hook
(`Method.evaluate`), checks that the data fit the model, and how many items are scored.

The shared protocol of translating held-out data and scoring it with judges is
`xdomain.metrics.translation` (the default hook); labelled data (StarGAN) are scored by
`xdomain.metrics.attributes`, paired data by `xdomain.metrics.paired`.
"""

from __future__ import annotations

from typing import Any

from xdomain.datamodule import TwoDomainData
from xdomain.errors import short
from xdomain.methods.base import Method
from xdomain.sections import EvalConfig


def check_size_fits(method: Method, data_cfg: Any) -> None:
    """Before any data are built (or rendered at the wrong size): the data's channels and size
    must be the model's."""
    from xdomain.errors import ConfigError

    spec = method.spec
    if (data_cfg.channels, data_cfg.image_size) != (spec.channels, spec.image_size):
        raise ConfigError(
            f"evaluate: data.channels={data_cfg.channels} data.image_size={data_cfg.image_size},"
            f" but the model takes {spec.channels}x{spec.image_size} images; drop those overrides"
        )


def check_labels_fit(method: Method, data: Any) -> None:
    """For labelled data (StarGAN): the data's label schemas must be the model's, in the same
    order (the mask vector and D_cls's columns follow it). One line that says what differs."""
    from xdomain.errors import ConfigError

    want, got = method.spec, data.spec
    if want.labels == got.labels:
        return
    names = [d.get("dataset", "?") for d in want.labels]
    given = [d.get("dataset", "?") for d in got.labels]
    if sorted(map(repr, want.labels)) == sorted(map(repr, got.labels)):  # the same, reordered
        raise ConfigError(
            f"data.sources are in another order ({', '.join(given)}) than the model was trained"
            f" on ({', '.join(names)}); the mask vector follows that order: list them so"
        )

    def describe(labels: list[dict[str, Any]]) -> str:
        from xdomain.labels import LabelSchema

        try:
            return (
                "; ".join(f"{d['dataset']}: {LabelSchema.from_dict(d).describe()}" for d in labels)
                or "no labels"
            )
        except (KeyError, TypeError, ValueError):
            return "an unreadable schema"

    raise ConfigError(
        f"the data's labels ({short(describe(got.labels), 120)}) are not the model's"
        f" ({short(describe(want.labels), 120)}); score it on data.sources with the model's"
        " data sets and attributes"
    )


def evaluate(method: Method, data: TwoDomainData, cfg: EvalConfig) -> dict[str, float]:
    """The method's held-out metrics (its own `evaluate` hook)."""
    return method.evaluate(data, cfg)


def n_scored(data: TwoDomainData, cfg: EvalConfig) -> int:
    """How many held-out items `evaluate` translates and scores (the test split may be smaller;
    labelled data: per data set, the smallest)."""
    if hasattr(data, "test") and not hasattr(data, "test_a"):
        return min(cfg.n_test, *(len(t) for t in data.test))
    return min(cfg.n_test, len(data.test_a))
