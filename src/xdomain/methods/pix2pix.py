"""pix2pix (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017), with the reference implementation's defaults
(junyanz/pytorch-CycleGAN-and-pix2pix, `models/pix2pix_model.py`).

Paired data: every training input `a` comes with its target `b` (`data.paired`).

- `G`          U-Net (`xdomain.nn.unet.UnetGenerator`): skip connections between mirrored
               layers, batch norm, dropout 0.5 in the inner decoder blocks (the reference's
               only source of noise: "we provide noise only in the form of dropout")
- `D`          conditional 70x70 PatchGAN: it sees the input and an output, concatenated on the
               channels, and judges each patch as a real or a generated pair
- `loss_gan`   L_cGAN(G, D), the vanilla (cross-entropy) GAN loss of the reference
- `loss_l1`    |b - G(a)|_1, weighted by `lambda_l1` (100)

Each step: D on the real pair (a, b) and the fake pair (a, G(a)), its loss halved as the
reference does; then G against the updated D.

`translate` runs G in eval mode (batch norm's running statistics, no dropout), as the
reference's `--eval` test option; its default test script keeps train mode, where an output
depends on the other images of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from xdomain.errors import ConfigError
from xdomain.losses import GanKind, gan_d_fake, gan_d_real, gan_g
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.nn import init_weights
from xdomain.nn.patchgan import PatchDiscriminator
from xdomain.nn.unet import UnetGenerator, check_unet_size


class Pix2Pix(Method):
    layout = "paired"
    sample_rows = "a, G(a), b (the target)"

    @dataclass
    class Config:
        ngf: int = 64  # generator width
        ndf: int = 64  # discriminator width
        num_downs: int = 8  # U-Net depth: 8 for 256 px (unet_256), 7 for 128 px; 2**num_downs
        n_layers_d: int = 3  # PatchGAN depth: 3 -> 70x70 patches
        norm: Literal["batch", "instance"] = "batch"
        dropout: bool = True  # 0.5 in the inner decoder blocks (the reference trains with it)
        gan_loss: GanKind = "vanilla"
        lambda_l1: float = 100.0
        lr: float = 2e-4
        beta1: float = 0.5
        beta2: float = 0.999
        init_std: float = 0.02  # N(0, 0.02), the reference's `init_type=normal`

    def __init__(self, cfg: Pix2Pix.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image":
            raise ConfigError("pix2pix translates images; the data are points")
        check_unet_size(spec.image_size, cfg.num_downs)
        c = spec.channels
        self.G = UnetGenerator(
            c, c, num_downs=cfg.num_downs, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout
        )
        # conditional: D sees (input, output) stacked on the channels
        self.D = PatchDiscriminator(2 * c, ndf=cfg.ndf, n_layers=cfg.n_layers_d, norm=cfg.norm)
        init_weights(self.G, cfg.init_std)
        init_weights(self.D, cfg.init_std)
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        c = self.cfg
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each; item i of a belongs with item i of b
        fake = self.G(a)  # (B, C, H, W)

        # D: real pairs vs fake pairs, halved
        real_ab = torch.cat([a, b], 1)  # (B, 2C, H, W)
        fake_ab = torch.cat([a, fake], 1)
        loss_d = 0.5 * (
            gan_d_real(self.D(real_ab), c.gan_loss)
            + gan_d_fake(self.D(fake_ab.detach()), c.gan_loss)
        )
        self.update(self.opt_d, loss_d)

        # G: fool the updated D, and stay close to the target
        self.requires_grad(self.D, flag=False)
        loss_gan = gan_g(self.D(fake_ab), c.gan_loss)
        loss_l1 = F.l1_loss(fake, b)
        self.update(self.opt_g, loss_gan + c.lambda_l1 * loss_l1)
        self.requires_grad(self.D, flag=True)
        return {"loss_d": loss_d.item(), "loss_gan": loss_gan.item(), "loss_l1": loss_l1.item()}

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        return self.G(x)  # (B, C, H, W)

    def visualize(self, fixed: Batch, path: Any) -> None:
        """Rows: the inputs, their translations, the targets."""
        from xdomain.grid import save_grid

        save_grid([fixed["a"], self.translate(fixed["a"]), fixed["b"]], path)

    @classmethod
    def metrics(cls, kind: str) -> dict[str, str]:
        from xdomain.metrics import paired

        return paired.METRICS

    def evaluate(self, data: Any, cfg: Any) -> dict[str, float]:
        from xdomain.metrics.paired import evaluate_paired

        return evaluate_paired(self, data, cfg)
