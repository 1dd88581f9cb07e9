"""DiscoGAN (Kim, Cha, Kim, Lee, Kim, ICML 2017): two GANs coupled by reconstruction.

Names here -> the paper's symbols:

- `G_ab`, `G_ba`                 G_AB, G_BA: the two translators
- `D_a`, `D_b`                   D_A, D_B: sigmoid discriminators (we keep logits, BCE-with-logits)
- `loss_adv`                     L_GAN_B (+ L_GAN_A for DiscoGAN): -log D_B(G_AB(x_A)) ...
- `loss_const`                   L_CONST_A (+ L_CONST_B for DiscoGAN): d(G_BA(G_AB(x_A)), x_A),
                                 d = MSE as in the reference code; weighted by `lambda_const`
- `loss_d`                       the discriminators' standard GAN loss

`variant` picks one of the paper's three toy models (Sec. 4.1, Fig. 4); all three build the same
four networks and two optimizers from the same seed and differ only in the losses they minimise:

- `gan`        (1) a standard GAN: G_AB against D_B
- `gan_recon`  (2) GAN + reconstruction: G_AB against D_B, and G_BA maps G_AB(x_A) back to x_A
- `discogan`   (3) both directions, each with its GAN and reconstruction terms, two discriminators

L_G = L_GAN_B + L_CONST_A + L_GAN_A + L_CONST_B for (3); (2) keeps the first two terms, (1) the
first.

Networks: `net: mlp` is the toy's fully connected pair (G: 3 linear layers with ReLU, D: 5 linear
layers with ReLU); it needs points data. `net: conv` are the reference's image networks
(SKTBrain/DiscoGAN, `xdomain.nn.encdec`): an encoder-decoder G with a sigmoid output and a D that
also returns its intermediate features. They work, as the reference does, on images in [0, 1]:
`generate` maps [-1, 1] in and out, and the losses are computed in [0, 1] units.

Images follow the reference's training loop (`image_translation.py`), which differs from the toy:
- the GAN term of G is `0.1 x L_GAN + 0.9 x L_FM`, L_FM the squared distance between the batch
  means of D's features on real and on translated images, summed over D's layers;
- G's loss is `(1 - rate) x GAN term + rate x L_CONST`, with `rate` 0.01 for the first
  `rate_switch` (10k) iterations, then 0.5: a strong GAN loss first;
- every `update_interval`-th (3rd) iteration updates D only, the others G only;
- Adam with weight decay 1e-5.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xdomain.errors import ConfigError
from xdomain.io import atomic_write
from xdomain.losses import feature_matching, gan_d, gan_g
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.methods.options import REVERSE

Variant = Literal["gan", "gan_recon", "discogan"]


# --------------------------------------------------------------------------- networks


def mlp(dims: list[int]) -> nn.Sequential:
    """Linear layers of widths dims[0] -> ... -> dims[-1] with a ReLU between consecutive ones."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """(B, D) -> (B, D): `layers` linear layers; the output is unbounded like the mixtures."""

    def __init__(self, dims: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = mlp([dims] + [hidden] * (layers - 1) + [dims])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, D)


class MLPDiscriminator(nn.Module):
    """(B, D) -> (B,) logits. The paper puts a ReLU after every layer and a sigmoid at the end;
    a ReLU right before the sigmoid would pin D >= 0.5, so the last layer is linear and the
    sigmoid lives in the BCE-with-logits loss."""

    def __init__(self, dims: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = mlp([dims] + [hidden] * (layers - 1) + [1])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)  # (B,)


def build_networks(cfg: DiscoGAN.Config, spec: DataSpec) -> tuple[nn.Module, ...]:
    """(G_ab, G_ba, D_a, D_b) for `cfg.net`, built in this fixed order so one seed gives every
    variant the same initial weights."""
    if cfg.net == "conv":
        if spec.kind != "image":
            raise ConfigError("model.net=conv needs image data; the toy's points take net=mlp")
        from xdomain.nn.encdec import DiscoDiscriminator, DiscoGenerator

        c, size = spec.channels, spec.image_size
        if size < 16 or size & (size - 1):
            raise ConfigError(
                f"model.net=conv needs data.image_size a power of two >= 16 (the encoder halves"
                f" it down to 4x4), got {size}"
            )
        g = {"image_size": size, "base": cfg.base, "final": "sigmoid"}
        return (
            DiscoGenerator(c, c, **g),
            DiscoGenerator(c, c, **g),
            DiscoDiscriminator(c, image_size=size, base=cfg.base),
            DiscoDiscriminator(c, image_size=size, base=cfg.base),
        )
    if cfg.net == "mlp":
        if spec.kind != "points":
            raise ConfigError(
                f"model.net=mlp is the toy's network and needs points data (data.a=toy-gmm:...), "
                f"but the data are {spec.kind}s"
            )
        g = (spec.dims, cfg.hidden_g, cfg.layers_g)
        d = (spec.dims, cfg.hidden_d, cfg.layers_d)
        return MLPGenerator(*g), MLPGenerator(*g), MLPDiscriminator(*d), MLPDiscriminator(*d)
    raise ConfigError(f"model.net={cfg.net!r} is unknown; valid values: mlp, conv")


# --------------------------------------------------------------------------- the method


class DiscoGAN(Method):
    bidirectional = True
    cli_options = (REVERSE,)

    @dataclass
    class Config:
        variant: Variant = "discogan"
        net: Literal["mlp", "conv"] = "mlp"
        hidden_g: int = 128  # toy: width of the MLP generator's hidden layers
        hidden_d: int = 128
        layers_g: int = 3  # linear layers (paper's toy: 3 in G, 5 in D)
        layers_d: int = 5
        lambda_const: float = 1.0  # toy: weight of L_CONST (the paper's L_G sums its terms)
        base: int = 64  # conv: width of the first layer (reference 64; doubles per layer to 512)
        update_interval: int = 3  # conv: every n-th iteration updates D only, the others G
        rate_start: float = 0.01  # conv: weight of L_CONST (vs the GAN term) at first ...
        rate: float = 0.5  # ... and after `rate_switch` iterations
        rate_switch: int = 10_000
        fm_weight: float = 0.9  # conv: GAN term = (1 - fm_weight) L_GAN + fm_weight L_FM
        lr: float = 2e-4
        beta1: float = 0.5  # Adam betas of the reference code
        beta2: float = 0.999
        weight_decay: float = 0.0  # the image reference uses 1e-5 (its recipes set it)

    def __init__(self, cfg: DiscoGAN.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if min(cfg.layers_g, cfg.layers_d) < 2:
            raise ConfigError("model.layers_g and model.layers_d must be >= 2 (linear layers)")
        if cfg.update_interval < 1 or cfg.base < 1:
            raise ConfigError("model.update_interval and model.base must be >= 1")
        self.G_ab, self.G_ba, self.D_a, self.D_b = build_networks(cfg, spec)
        # fused: one kernel for all tensors; the toy's steps are short enough for the per-tensor
        # loop of plain Adam to cost a tenth of the step on CPU
        adam = {
            "lr": cfg.lr,
            "betas": (cfg.beta1, cfg.beta2),
            "weight_decay": cfg.weight_decay,
            "fused": True,
        }
        # one optimizer per side over all four networks: a network a variant leaves out gets no
        # gradient, so Adam skips it and it stays at its (shared) initial weights
        self.opt_g = torch.optim.Adam([*self.G_ab.parameters(), *self.G_ba.parameters()], **adam)
        self.opt_d = torch.optim.Adam([*self.D_a.parameters(), *self.D_b.parameters()], **adam)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        if self.cfg.net == "conv":
            return self._image_step(batch["a"], batch["b"], step)
        c = self.cfg
        a, b = batch["a"], batch["b"]  # (B, D) each, unpaired
        both = c.variant == "discogan"
        fake_b = self.G_ab(a)  # (B, D)
        fake_a = self.G_ba(b) if both else None

        # D first, on detached translations, so the G step below meets the updated D
        loss_d = gan_d(self.D_b(b), self.D_b(fake_b.detach()))
        if fake_a is not None:
            loss_d = loss_d + gan_d(self.D_a(a), self.D_a(fake_a.detach()))
        self.update(self.opt_d, loss_d)

        self.requires_grad(self.D_a, self.D_b, flag=False)  # G's step must not touch D's grads
        loss_adv = gan_g(self.D_b(fake_b))
        logs = {"loss_d": loss_d.item()}
        if c.variant == "gan":
            loss_g = loss_adv
        else:
            loss_const = F.mse_loss(self.G_ba(fake_b), a)
            if fake_a is not None:
                loss_adv = loss_adv + gan_g(self.D_a(fake_a))
                loss_const = loss_const + F.mse_loss(self.G_ab(fake_a), b)
            loss_g = loss_adv + c.lambda_const * loss_const
            logs["loss_const"] = loss_const.item()
        self.update(self.opt_g, loss_g)
        self.requires_grad(self.D_a, self.D_b, flag=True)
        logs["loss_adv"] = loss_adv.item()
        return logs

    def _image_step(self, a: Tensor, b: Tensor, step: int) -> dict[str, float]:
        """One iteration of the reference's image loop: D only, or G only (see the docstring)."""
        c = self.cfg
        both = c.variant == "discogan"
        a, b = (a + 1) / 2, (b + 1) / 2  # (B, C, H, W) in [0, 1], the reference's range
        if step % c.update_interval == 0:
            with torch.no_grad():
                fake_b = self.G_ab(a)
                fake_a = self.G_ba(b) if both else None
            # each D: 0.5 BCE(real, 1) + 0.5 BCE(fake, 0), as the reference
            loss_d = 0.5 * gan_d(self.D_b(b)[0], self.D_b(fake_b)[0])
            if fake_a is not None:
                loss_d = loss_d + 0.5 * gan_d(self.D_a(a)[0], self.D_a(fake_a)[0])
            self.update(self.opt_d, loss_d)
            return {"loss_d": loss_d.item()}

        rate = c.rate_start if step < c.rate_switch else c.rate
        self.requires_grad(self.D_a, self.D_b, flag=False)
        fake_b = self.G_ab(a)  # (B, C, H, W)
        gan_b = self._gan_term(self.D_b, b, fake_b)
        loss_g = gan_b
        logs = {"loss_gan": gan_b.item()}
        if c.variant != "gan":
            const_a = F.mse_loss(self.G_ba(fake_b), a)  # L_CONST_A
            loss_g = (1 - rate) * gan_b + rate * const_a
            logs["loss_const"] = const_a.item()
        if both:
            fake_a = self.G_ba(b)
            gan_a = self._gan_term(self.D_a, a, fake_a)
            const_b = F.mse_loss(self.G_ab(fake_a), b)
            loss_g = loss_g + (1 - rate) * gan_a + rate * const_b
            logs["loss_gan"] += gan_a.item()
            logs["loss_const"] += const_b.item()
        self.update(self.opt_g, loss_g)
        self.requires_grad(self.D_a, self.D_b, flag=True)
        return logs

    def _gan_term(self, d: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """(1 - fm_weight) x L_GAN + fm_weight x L_FM for fakes judged by `d`."""
        logit_fake, feats_fake = d(fake)
        with torch.no_grad():
            _, feats_real = d(real)
        fm = feature_matching(feats_real, feats_fake)
        return (1 - self.cfg.fm_weight) * gan_g(logit_fake) + self.cfg.fm_weight * fm

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        if self.cfg.net == "conv":  # the networks live in [0, 1]
            return self.G_ab((x + 1) / 2) * 2 - 1  # (B, C, H, W)
        return self.G_ab(x)  # (B, D)

    def generate_ba(self, x: Tensor) -> Tensor:
        if self.cfg.net == "conv":
            return self.G_ba((x + 1) / 2) * 2 - 1
        return self.G_ba(x)

    @torch.no_grad()
    def score_b(self, x: Tensor) -> Tensor:
        """D_b's probability that (N, D) points are real B samples: the figure's landscape."""
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            return torch.sigmoid(self.D_b(x.to(device, torch.float32))).cpu()  # (N,)
        finally:
            self.train(was_training)

    def visualize(self, fixed: Batch, path: Path) -> None:
        if self.spec.kind != "points":
            super().visualize(fixed, path)
            return
        from xdomain.metrics.toy import save_landscape

        fake_b = self.translate(fixed["a"]).cpu()  # (N, D)
        labels = fixed.get("a_label", torch.zeros(len(fake_b), dtype=torch.long)).cpu()
        path = Path(path)
        title = f"{self.cfg.variant}: G_ab(a) over D_b ({path.stem})"
        save_landscape(self.score_b, fake_b, labels, fixed["b"].cpu(), path, title=title)
        # the run's report embeds <run>/figures/*.png: keep the latest landscape there, a copy
        # (not a second rendering); outside a run (artifact_dir None) there is no such folder
        if self.artifact_dir is not None:
            self.artifact_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(
                self.artifact_dir / "landscape.png", lambda tmp: shutil.copyfile(path, tmp)
            )
