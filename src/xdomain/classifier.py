"""Training a small classifier deterministically: DTN's f, pretrained on labelled source images
and adapted to unlabelled target images by self-training on its own confident labels.

Seeded init, data order and augmentation inside `fork_rng`, on one thread: the result is a pure
function of its data and hyper-parameters, which is what makes a content-hash cache of it
valid (`methods.dtn.DTN.load_or_train_f`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from xdomain.data.augment import augment_source
from xdomain.data.types import DataSpec
from xdomain.nn.blocks import init_weights
from xdomain.nn.dtn import FeatureNet
from xdomain.repro import one_thread


def fit(
    logits: Callable[[Tensor], Tensor],
    opt: torch.optim.Optimizer,
    sched: Any,
    batch: Callable[[], tuple[Tensor, Tensor]],
    steps: int,
    desc: str,
    *,
    progress: bool = True,
    every: int = 50,
) -> None:
    """The small-classifier loop (DTN's f, the judges): `steps` cross-entropy steps on the
    batches `batch()` draws, the scheduler stepped after each, the loss on a tqdm bar every
    `every` steps."""
    bar = tqdm(range(steps), desc=desc, unit="step", leave=False, disable=not progress)
    for step in bar:
        xb, yb = batch()
        loss = F.cross_entropy(logits(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()


def train_f(
    x: Tensor,
    y: Tensor,
    spec: DataSpec,
    cfg: Any,
    *,
    progress: bool = True,
    xt: Tensor | None = None,
) -> dict[str, Tensor]:
    """Train f as a classifier of labelled source images, then (`xt` given, `f_adapt_rounds` > 0)
    adapt it to the unlabelled target images by self-training; returns its CPU state_dict.

    `progress`: a tqdm bar (`make demo` would otherwise be silent for the minute f takes).

    Seeded init, data order and augmentation inside `fork_rng`: f is a pure function of its data
    and hyper-parameters (that is what makes the content-hash cache valid), and the caller's RNG
    stream is left as it was.
    """
    # one thread: f must not depend on which process trained it first (its cache key cannot)
    with one_thread(), torch.random.fork_rng():
        torch.manual_seed(cfg.f_seed)
        gen = torch.Generator().manual_seed(cfg.f_seed)
        net = FeatureNet(spec.channels, cfg.width_f, cfg.feat_dim, max(spec.num_classes_a, 1))
        init_weights(net)
        opt = torch.optim.AdamW(net.parameters(), cfg.f_lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.f_lr, total_steps=cfg.f_steps)
        net.train()

        def batch() -> tuple[Tensor, Tensor]:
            idx = torch.randint(0, len(x), (cfg.f_batch,), generator=gen)
            xb = augment_source(x[idx], cfg.f_augment, gen) if cfg.f_augment else x[idx]
            return xb, y[idx]

        desc = f"DTN: pretraining f on {spec.name_a}"
        fit(net.logits, opt, sched, batch, cfg.f_steps, desc, progress=progress, every=50)
        if xt is not None and cfg.f_adapt_rounds > 0:
            self_train(net, x, y, xt, cfg, gen, progress=progress)
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


@torch.no_grad()
def pseudo_labels(net: FeatureNet, xt: Tensor, keep: float) -> tuple[Tensor, Tensor]:
    """f's labels for the (M, C, H, W) target images and which to keep: the `keep` most
    confident share of each predicted class (class-balanced, so an easy class cannot crowd out
    a hard one). Returns labels (M,) and a boolean mask (M,)."""
    net.eval()
    probs = torch.cat([net.logits(xt[i : i + 500]).softmax(1) for i in range(0, len(xt), 500)])
    conf, label = probs.max(1)  # (M,), (M,)
    mask = torch.zeros(len(xt), dtype=torch.bool)
    for c in label.unique().tolist():
        idx = (label == c).nonzero().flatten()
        top = conf[idx].argsort(descending=True)[: max(1, math.ceil(keep * len(idx)))]
        mask[idx[top]] = True
    net.train()
    return label, mask


def self_train(
    net: FeatureNet,
    x: Tensor,
    y: Tensor,
    xt: Tensor,
    cfg: Any,
    gen: torch.Generator,
    *,
    progress: bool,
) -> None:
    """Rounds of self-training on the target images: relabel, keep the confident share, train on
    half source (labels, f's augmentations) and half pseudo-labelled target batches."""
    opt = torch.optim.AdamW(net.parameters(), cfg.f_lr / 4, weight_decay=1e-4)
    rounds = cfg.f_adapt_rounds
    bar = tqdm(
        total=rounds * cfg.f_adapt_steps,
        desc="DTN: adapting f to the target images (no labels)",
        unit="step",
        leave=False,
        disable=not progress,
    )
    half = cfg.f_batch // 2
    for r in range(rounds):
        label, mask = pseudo_labels(net, xt, cfg.f_adapt_keep * (r + 1) / rounds)
        xt_kept, yt_kept = xt[mask], label[mask]
        for _ in range(cfg.f_adapt_steps):
            i = torch.randint(0, len(x), (half,), generator=gen)
            j = torch.randint(0, len(xt_kept), (half,), generator=gen)
            xs = augment_source(x[i], cfg.f_augment, gen) if cfg.f_augment else x[i]
            xb = torch.cat([xs, augment_source(xt_kept[j], "affine", gen)])
            loss = F.cross_entropy(net.logits(xb), torch.cat([y[i], yt_kept[j]]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update()
    bar.close()
