"""Loss functions shared by the methods: pure functions of tensors, no state.

GAN losses take discriminator logits and a `kind`:
- `vanilla`: binary cross-entropy on logits (Goodfellow et al. 2014, non-saturating G loss),
- `lsgan`:   least squares towards 1 (real) and 0 (fake) (Mao et al. 2017),
- `hinge`:   hinge loss for D, -D(fake) for G (Lim & Ye 2017; Miyato et al. 2018).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

GanKind = Literal["vanilla", "lsgan", "hinge"]


def gan_d_real(real: Tensor, kind: GanKind = "vanilla") -> Tensor:
    """D's loss on logits of real samples (its half of `gan_d`)."""
    if kind == "vanilla":
        return F.softplus(-real).mean()  # -log sigmoid(r)
    if kind == "lsgan":
        return ((real - 1) ** 2).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean()
    raise ValueError(f"unknown GAN loss '{kind}'; valid: vanilla, lsgan, hinge")


def gan_d_fake(fake: Tensor, kind: GanKind = "vanilla") -> Tensor:
    """D's loss on logits of (detached) fake samples (its other half of `gan_d`)."""
    if kind == "vanilla":
        return F.softplus(fake).mean()  # -log(1 - sigmoid(f))
    if kind == "lsgan":
        return (fake**2).mean()
    if kind == "hinge":
        return F.relu(1 + fake).mean()
    raise ValueError(f"unknown GAN loss '{kind}'; valid: vanilla, lsgan, hinge")


def gan_d(real: Tensor, fake: Tensor, kind: GanKind = "vanilla") -> Tensor:
    """Discriminator loss from logits on real and (detached) fake samples."""
    return gan_d_real(real, kind) + gan_d_fake(fake, kind)


def gan_g(fake: Tensor, kind: GanKind = "vanilla") -> Tensor:
    """Generator loss from D's logits on fake samples: push them towards "real"."""
    if kind == "vanilla":
        return F.softplus(-fake).mean()  # non-saturating: -log sigmoid(D(G(x)))
    if kind == "lsgan":
        return ((fake - 1) ** 2).mean()
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss '{kind}'; valid: vanilla, lsgan, hinge")


def gan_d_heads(
    real: Sequence[Tensor | None], fake: Sequence[Tensor | None], kind: GanKind = "vanilla"
) -> Tensor:
    """D's loss summed over several output heads, the i-th real head against the i-th fake one
    (U-GAT-IT: the patch and CAM logits of a global and a local D). A None head, one the
    network does not have (U-GAT-IT without CAM), is skipped."""
    loss = next(t for t in real if t is not None).new_zeros(())
    for r, f in zip(real, fake, strict=True):
        if r is not None and f is not None:
            loss = loss + gan_d_real(r, kind) + gan_d_fake(f, kind)
    return loss


def gan_g_heads(fake: Sequence[Tensor | None], kind: GanKind = "vanilla") -> Tensor:
    """G's loss summed over D's output heads on fakes (None heads skipped), as `gan_d_heads`."""
    loss = next(t for t in fake if t is not None).new_zeros(())
    for f in fake:
        if f is not None:
            loss = loss + gan_g(f, kind)
    return loss


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    scaler: Any = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017), as StarGAN's: E[(||grad_x_hat sum D(x_hat)||_2 - 1)^2]
    at x_hat = alpha real + (1 - alpha) fake, alpha ~ U(0, 1) per sample.

    The graph is kept (`create_graph`) so the penalty trains D. Under fp16 the gradient of a
    small critic output underflows, so it is taken of the loss-scaled output (`scaler`, a
    `torch.amp.GradScaler`; Accelerate's `accelerator.scaler`) and divided back, the recipe of
    PyTorch's AMP notes; the norm is then computed in fp32, which bf16 needs as well. Per
    sample, so it is the same on one process or many (gradients are averaged later).
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat).float().sum()  # grad_outputs = ones, as the official
    if scaler is not None:
        (grad,) = torch.autograd.grad(scaler.scale(out), x_hat, create_graph=True)
        grad = grad.float() / scaler.get_scale()
    else:
        (grad,) = torch.autograd.grad(out, x_hat, create_graph=True)
        grad = grad.float()
    norm = grad.flatten(1).pow(2).sum(1).sqrt()  # (B,)
    return ((norm - 1) ** 2).mean()


def feature_matching(real_feats: list[Tensor], fake_feats: list[Tensor]) -> Tensor:
    """Feature matching (Salimans et al. 2016, DiscoGAN's reference): for each of D's layers, the
    squared distance between the batch means of its features on real and on fake images,
    averaged over the feature's elements, summed over layers. Real features carry no gradient."""
    loss = fake_feats[0].new_zeros(())
    for real, fake in zip(real_feats, fake_feats, strict=True):
        loss = loss + ((real.detach().mean(0) - fake.mean(0)) ** 2).mean()
    return loss


def cam_loss(translate: Tensor, keep: Tensor) -> Tensor:
    """U-GAT-IT's CAM loss of G (the official `CAMLoss`): BCE on the auxiliary classifier's
    logits, "needs translating" (1) for an image from the generator's source domain and "keep"
    (0) for one already in its target domain (the identity pass)."""
    bce = F.binary_cross_entropy_with_logits
    return bce(translate, torch.ones_like(translate)) + bce(keep, torch.zeros_like(keep))


def tv_loss(x: Tensor, beta: float = 1.0, eps: float = 1e-8) -> Tensor:
    """Total variation of (B, C, H, W) images, averaged over pixels (DTN's L_TV, exponent B).

    mean_ij ((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2)^(beta/2). `eps` keeps the
    gradient of the square root finite on flat regions when beta < 2.
    """
    dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]  # (B, C, H-1, W-1)
    dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]  # (B, C, H-1, W-1)
    sq = dx**2 + dy**2
    if beta == 2.0:
        return sq.mean()
    return (sq + eps).pow(beta / 2).mean()
