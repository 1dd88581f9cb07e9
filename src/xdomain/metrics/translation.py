"""The shared translation protocol: translate held-out data and score it with the judges.

`evaluate_translation` is `Method.evaluate`'s default. It scores a -> b and, for methods
that learn both directions, b -> a (keys prefixed `ba_`).
Every direction is scored by a judge: a small classifier trained on REAL images only
(`xdomain.metrics.judges`), picked by what the target domain knows about itself:

- labelled target, same label space as the source (digits): `acc`, the share of translations the
  target's judge gives the source's label (the DTN protocol), `diversity` within each class
  beside `diversity_real`;
- target that is a class subset of a larger labelled set (`fashion:sneaker` -> `fashion:bag`):
  `target_acc`, the share of translations that a judge over the whole set puts in one of the
  target's classes;
- unlabelled folders (a user's horse2zebra): `domain_acc`, the share of translations that a judge
  trained to tell real a from real b calls b.

Beside each: FID and KID in that judge's penultimate features against the real target test set.
KID is reported as computed (not x1000), `kid_judge_std` its spread over 50 random subsets,
`kid_judge_floor` real train b against real test b (what a perfect generator would score).
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

# What `evaluate_translation` may return that can select a checkpoint (`eval.select`), with the
# direction that is better ("max"/"min"); `kid_judge_std` is a spread, not a quality
METRICS: dict[str, str] = {
    "acc": "max",
    "val_acc": "max",
    "fid_judge": "min",
    "kid_judge": "min",
    "style_bold": "max",
    "style_italic": "max",
    "diversity": "max",
    "acc_seen_fonts": "max",  # with data.holdout_fonts only
    "acc_heldout_fonts": "max",
    "target_acc": "max",  # target = a class subset of a labelled set (fashion:bag)
    "domain_acc": "max",  # unlabelled folders: real a vs real b judge
    # b -> a, for methods that learn both directions
    "ba_acc": "max",
    "ba_target_acc": "max",
    "ba_domain_acc": "max",
    "ba_kid_judge": "min",
    "cycle_a": "min",
    "cycle_b": "min",
}

PRINTED_SOURCES = ("digits-printed", "digits-printed-system")
STYLE_PAIRS = 200  # bold and italic pairs each, from the printed test stream (metrics.style)


JUDGE_ITEMS = 2000  # per domain, for a judge trained on unlabelled folders (a vs b)


@torch.no_grad()
def translate_all(
    method: Any,
    x: torch.Tensor,
    batch_size: int = 256,
    desc: str = "evaluate: translating",
    reverse: bool = False,
    per_input: dict[str, torch.Tensor] | None = None,
    **options: Any,
) -> torch.Tensor:
    """`method.translate` over `x` in batches of `batch_size`, with translate `options` for
    every batch and `per_input` ones (one row per input: codes (N, K, nz), targets (N, c))
    sliced with their inputs."""
    from tqdm.auto import tqdm

    starts = range(0, x.shape[0], batch_size)
    bar = tqdm(starts, desc=desc, unit="batch", leave=False, delay=2.0)
    if reverse:
        options["reverse"] = True

    def batch(i: int) -> torch.Tensor:
        rows = {k: v[i : i + batch_size] for k, v in (per_input or {}).items()}
        return method.translate(x[i : i + batch_size], **options, **rows)

    return torch.cat([batch(i) for i in bar])


def evaluate_translation(method: Any, data: Any, cfg: Any) -> dict[str, float]:
    """Score a -> b (and b -> a for bidirectional methods) with the shared judges."""
    if data.spec.kind == "points":
        from xdomain.metrics.toy import evaluate_toy

        return evaluate_toy(method, data)
    from xdomain.metrics import label_accuracy

    xa, ya = data.test_a.tensors()
    xa, ya = xa[: cfg.n_test], ya[: cfg.n_test]
    fake_b = translate_all(method, xa)
    judge, kind = pick_judge(data.train_a, data.train_b, data.test_a, data.test_b, data.cfg)
    metrics = score_direction(judge, kind, fake_b, ya, data.train_b, data.test_b)
    if kind == "labels":
        if data.cfg.holdout_fonts:  # the fonts the model never saw, and the others
            from xdomain.datamodule import heldout_fonts_mask

            held = heldout_fonts_mask(data.test_a, data.cfg)[: len(ya)]
            for name, sel in (("acc_heldout_fonts", held), ("acc_seen_fonts", ~held)):
                if bool(sel.any()):
                    metrics[name] = label_accuracy(judge, fake_b[sel], ya[sel])
        val = data.val_a()
        if val is not None:
            metrics["val_acc"] = label_accuracy(judge, translate_all(method, val[0]), val[1])
    if data.cfg.a in PRINTED_SOURCES and not data.cfg.root:
        from xdomain.metrics.style import style_scores

        metrics |= style_scores(
            lambda x: translate_all(method, x, desc="evaluate: style pairs"),
            n=STYLE_PAIRS,
            channels=data.spec.channels,
            font_set="system" if data.cfg.a == "digits-printed-system" else "manifest",
        )
    if method.bidirectional:
        xb, yb = data.test_b.tensors()
        xb, yb = xb[: cfg.n_test], yb[: cfg.n_test]
        fake_a = translate_all(method, xb, desc="evaluate: translating b -> a", reverse=True)
        if kind == "domain":  # the same real-a-vs-real-b judge; the target is now a (label 0)
            judge_a, kind_a = judge, kind
        else:
            judge_a, kind_a = pick_judge(
                data.train_b, data.train_a, data.test_b, data.test_a, data.cfg
            )
        back = score_direction(
            judge_a, kind_a, fake_a, yb, data.train_a, data.test_a, domain_label=0
        )
        metrics |= {f"ba_{k}": v for k, v in back.items()}
        # cycle reconstruction error, mean |x - G_ba(G_ab(x))| in [-1, 1] units, both ways
        metrics["cycle_a"] = float((translate_all(method, fake_b, reverse=True) - xa).abs().mean())
        metrics["cycle_b"] = float((translate_all(method, fake_a) - xb).abs().mean())
    return metrics


def pick_judge(
    src_train: Any, tgt_train: Any, src_test: Any, tgt_test: Any, data_cfg: Any
) -> tuple[Any, str]:
    """The judge that scores translations into the target domain, and what it scores:

    `labels` (same label space: label preservation), `classes` (target = a class subset of a
    larger set: target-class accuracy) or `domain` (unlabelled: real a vs real b)."""
    from xdomain.metrics import get_judge

    tgt_classes = getattr(tgt_train, "classes", None)
    labelled = getattr(tgt_train, "num_classes", 0) > 0 and tgt_train.labels is not None
    if labelled and tgt_classes is not None:
        from xdomain.data import load_domain

        root = tgt_train.name.split(":")[0]  # `fashion:bag` -> the whole `fashion` set
        kw = {"image_size": data_cfg.image_size, "channels": data_cfg.channels}
        full_train = load_domain(root, "train", **kw)
        full_test = load_domain(root, "test", **kw)
        judge = get_judge(
            root, full_train.tensors(), full_test.tensors(), num_classes=full_train.num_classes
        )
        return judge, "classes"
    if labelled:
        same = (
            getattr(src_train, "num_classes", 0) == tgt_train.num_classes
            and getattr(src_train, "classes", None) is None
        )
        judge = get_judge(
            tgt_train.name,
            tgt_train.tensors(),
            tgt_test.tensors(),
            num_classes=tgt_train.num_classes,
        )
        return judge, "labels" if same else "kid"
    return domain_judge(src_train, tgt_train, src_test, tgt_test), "domain"


def domain_judge(src_train: Any, tgt_train: Any, src_test: Any, tgt_test: Any) -> Any:
    """A judge that tells real source (class 0) from real target (class 1) images, trained on the
    first `JUDGE_ITEMS` of each: how the unlabelled folders are scored, and how far along a
    morph an image is (benchmarks/bench_morph.py)."""
    from xdomain.metrics import get_judge

    xs = [head_items(d, JUDGE_ITEMS) for d in (src_train, tgt_train, src_test, tgt_test)]
    train = (torch.cat(xs[:2]), torch.cat([torch.zeros(len(xs[0])), torch.ones(len(xs[1]))]))
    test = (torch.cat(xs[2:]), torch.cat([torch.zeros(len(xs[2])), torch.ones(len(xs[3]))]))
    return get_judge(
        "domain", (train[0], train[1].long()), (test[0], test[1].long()), num_classes=2
    )


def head_items(ds: Any, n: int) -> torch.Tensor:
    """The first n items of a dataset, un-augmented, as (n, C, S, S) in [-1, 1], at a size a
    judge takes (`judge_view`)."""
    if getattr(ds, "images", None) is not None:
        return judge_view(ds.tensors()[0][:n])
    return judge_view(torch.stack([ds[i][0] for i in range(min(n, len(ds)))]))


def judge_view(x: torch.Tensor) -> torch.Tensor:
    """Images as a judge sees them: judges are small CNNs for 28 to 64 px, so larger images (a
    256 px folder) are scaled down to 64 px (area-averaged) and smaller ones up to 32 px."""
    import torch.nn.functional as F

    side = max(x.shape[-2:])
    if min(x.shape[-2:]) >= 28 and side <= 64:
        return x
    size = 64 if side > 64 else 32
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True)


def score_direction(
    judge: Any,
    kind: str,
    fake: torch.Tensor,
    src_labels: torch.Tensor,
    tgt_train: Any,
    tgt_test: Any,
    domain_label: int = 1,
) -> dict[str, float]:
    """Label / class / domain accuracy of `fake` (translations into the target), FID and KID in
    the judge's features against the real target test set, and the KID floor. `domain_label` is
    the target's label for a real-a (0) vs real-b (1) judge."""
    from xdomain.metrics import extract_features, fid, kid, label_accuracy

    metrics: dict[str, float] = {}
    fake = judge_view(fake)
    if kind == "labels":
        metrics["acc"] = label_accuracy(judge, fake, src_labels)
    elif kind == "classes":
        pred = predict(judge, fake)
        wanted = torch.tensor(tgt_train.classes)
        metrics["target_acc"] = float(torch.isin(pred, wanted).float().mean())
    elif kind == "domain":
        want = torch.full((len(fake),), domain_label, dtype=torch.long)
        metrics["domain_acc"] = label_accuracy(judge, fake, want)
    xb = head_items(tgt_test, 10**9)
    real_f = extract_features(judge.features, xb)
    fake_f = extract_features(judge.features, fake)
    size = min(len(xb), 1000)  # kid clips it to the smaller set
    metrics["fid_judge"] = fid(real_f, fake_f)
    # KID as computed (not x1000, unlike some papers), with its spread over the 50 subsets
    mean, std = kid(real_f, fake_f, n_subsets=50, subset_size=size)
    metrics["kid_judge"], metrics["kid_judge_std"] = mean, std
    # its floor: real train b against real test b, what a perfect generator would score
    train_f = extract_features(judge.features, head_items(tgt_train, 10**9))
    metrics["kid_judge_floor"] = kid(real_f, train_f, n_subsets=50, subset_size=size)[0]
    if kind == "labels":  # a collapse to one image per class shows here
        metrics["diversity"] = within_class_diversity(fake, src_labels)
        metrics["diversity_real"] = within_class_diversity(xb, tgt_test.tensors()[1])
    return metrics


@torch.no_grad()
def predict(judge: Any, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The judge's class for each of (N, C, H, W) images: int64 (N,)."""
    judge.eval()
    return torch.cat(
        [judge(x[i : i + batch_size]).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    )


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
