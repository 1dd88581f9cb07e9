"""Attribute judges for labelled data (StarGAN): does a translation show the target's labels?

For every attribute of a data set, a judge (`xdomain.metrics.judges`) is trained on the REAL
training images with that attribute's class (a binary's 0/1, a categorical's or a group's value),
and once more on the data set's identity labels where it has some (a styled digit's class). A
model then translates the held-out images to every target of the official test grid, and:

- `target_acc`    the share of translations whose changed attribute the judge reads as the
                  target's value (the paper's classification accuracy on generated images);
- `kept_acc`      the share of (translation, other attribute) pairs the judge reads as the
                  input's own value: the change stays local;
- `identity_acc`  the share of translations whose identity (digit class) the judge reads as the
                  input's: the content is preserved.

Each per target too (`acc[hair=blond]`), and each judge's accuracy on real test images
(`judge_acc[hair]`), the ceiling of these numbers. Beside them `rec_l1`, the mean |x - G(G(x, c),
c')| over the targets (L_rec on held-out images), which needs no judge: a data set with fewer
than `MIN_JUDGE_ITEMS` training images (a smoke test, a small folder) gets only that, with a
warning, since a judge trained on a handful of images would score noise.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch
from torch import Tensor

from xdomain.labels import Attribute, LabelSchema, LabelSpace

# what `evaluate_targets` returns that can select a checkpoint, and which direction is better
METRICS: dict[str, str] = {
    "target_acc": "max",  # the changed attribute reads as the target
    "kept_acc": "max",  # the attributes a target does not name are kept
    "identity_acc": "max",  # with identity labels: the digit class is kept
    "rec_l1": "min",  # |x - G(G(x, c), c')| on held-out images
}

MIN_JUDGE_ITEMS = 100


def attribute_classes(a: Attribute, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(N, width_a) labels of one attribute -> (class (N,), valid (N,) bool). A group row with
    no value set (a CelebA face with none of the selected hair colours) has no class."""
    if a.kind == "binary":
        return labels[:, 0].round().long(), torch.ones(len(labels), dtype=torch.bool)
    valid = (labels > 0.5).sum(1) == 1 if a.kind == "group" else torch.ones(len(labels)).bool()
    return labels.argmax(1), valid


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "data"


def judges_for(train: Any, test: Any, max_items: int = 20_000) -> dict[str, Any]:
    """{attribute name (and 'identity'): judge} for a `LabelledSet`'s real train/test split."""
    from xdomain.metrics import get_judge
    from xdomain.metrics.translation import judge_view

    schema: LabelSchema = train.schema
    x_tr, x_te = (judge_view(t[0][:max_items]) for t in (train.tensors(), test.tensors()))
    y_tr, y_te = train.labels[:max_items], test.labels
    out: dict[str, Any] = {}
    for a, sl in schema.slices():
        c_tr, ok_tr = attribute_classes(a, y_tr[:, sl])
        c_te, ok_te = attribute_classes(a, y_te[:, sl])
        out[a.name] = get_judge(
            _stem(f"{schema.dataset}-{a.name}"),
            (x_tr[ok_tr], c_tr[ok_tr]),
            (x_te[ok_te], c_te[ok_te]),
            num_classes=max(a.width, 2),
        )
    if train.identity is not None:
        ident_tr = train.identity[:max_items]
        out["identity"] = get_judge(
            _stem(f"{schema.dataset}-identity"),
            (x_tr, ident_tr),
            (x_te, test.identity),
            num_classes=int(ident_tr.max()) + 1,
        )
    return out


@torch.no_grad()
def score_targets(
    method: Any, k: int, x: Tensor, labels: Tensor, identity: Tensor | None, judges: dict[str, Any]
) -> dict[str, float]:
    """Translate x (N, C, H, W) of data set k (labels (N, width_k)) to every target of its
    grid and score them (the module docstring's numbers)."""
    from xdomain.metrics.translation import judge_view, predict

    space = LabelSpace.from_list(method.spec.labels)  # the label space the model was built on
    schema: LabelSchema = space.schemas[k]
    slices = dict((a.name, (a, sl)) for a, sl in schema.slices())
    own = {n: attribute_classes(a, labels[:, sl]) for n, (a, sl) in slices.items()}
    out: dict[str, float] = {}
    hits, kept, ident, rec = [], [], [], []
    c_org = space.condition(k, labels).to(x.device)
    for caption, target in schema.targets(labels):
        name = caption.split(" ")[0].split("=")[0]
        cond = space.condition(k, target).to(x.device)
        fakes, errors = [], []
        for i in range(0, len(x), 256):
            fake = _translate(method, x[i : i + 256], cond[i : i + 256])
            back = _translate(method, fake, c_org[i : i + 256])
            fakes.append(fake.cpu())
            errors.append((back - x[i : i + 256]).abs().flatten(1).mean(1).cpu())
        rec.append(float(torch.cat(errors).mean()))
        if not judges:
            continue
        view = judge_view(torch.cat(fakes))
        a, sl = slices[name]
        want, valid = attribute_classes(a, target[:, sl])
        pred = predict(judges[name], view)
        acc = float((pred[valid] == want[valid]).float().mean()) if valid.any() else 0.0
        out[f"acc[{caption}]"] = acc
        hits.append(acc)
        for other, judge in judges.items():
            if other in (name, "identity"):
                continue
            cls, ok = own[other]
            if ok.any():
                kept.append(float((predict(judge, view)[ok] == cls[ok]).float().mean()))
        if identity is not None and "identity" in judges:
            ident.append(float((predict(judges["identity"], view) == identity).float().mean()))
    out["rec_l1"] = sum(rec) / len(rec)
    if hits:
        out["target_acc"] = sum(hits) / len(hits)
    if kept:
        out["kept_acc"] = sum(kept) / len(kept)
    if ident:
        out["identity_acc"] = sum(ident) / len(ident)
    return out


def _translate(method: Any, x: Tensor, cond: Tensor) -> Tensor:
    """The model's translation of x to the (B, c_dim) conditions `cond`, through its public
    `translate`; a bright translation fed back is legal, so its [0, 1] warning is not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="translate got values in")
        return method.translate(x, target=cond)


def evaluate_targets(method: Any, data: Any, cfg: Any) -> dict[str, float]:
    """Every data set's held-out images to every target of its own grid; with several data
    sets the keys of data set k > 0 carry its name (`<name>:target_acc`) and `target_acc` is
    the mean over data sets."""
    metrics: dict[str, float] = {}
    tops = []
    for k, (train, test) in enumerate(zip(data.train, data.test, strict=True)):
        if len(train) >= MIN_JUDGE_ITEMS:
            judges = judges_for(train, test)
        else:
            judges = {}
            warnings.warn(
                f"evaluate: {train.schema.dataset} has {len(train)} training images, fewer than"
                f" the {MIN_JUDGE_ITEMS} its attribute judges need; only rec_l1 is scored",
                stacklevel=2,
            )
        x, labels = test.tensors()
        n = min(cfg.n_test, len(x))
        identity = None if test.identity is None else test.identity[:n]
        device = next(method.parameters()).device
        with method.evaluating():
            scores = score_targets(method, k, x[:n].to(device), labels[:n], identity, judges)
        for name, judge in judges.items():
            scores[f"judge_acc[{name}]"] = float(judge.heldout_accuracy)
        if "target_acc" in scores:
            tops.append(scores["target_acc"])
        prefix = f"{train.schema.dataset}:" if k > 0 else ""
        metrics |= {prefix + key: v for key, v in scores.items()}
    if tops:
        metrics["target_acc"] = sum(tops) / len(tops)
    return metrics
