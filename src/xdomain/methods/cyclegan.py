"""CycleGAN (Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017), with the reference implementation's defaults
(junyanz/pytorch-CycleGAN-and-pix2pix).

Names here -> the paper's symbols (the reference calls G_ab `netG_A` and D_b `netD_A`):

- `G_ab`, `G_ba`     G: X -> Y and F: Y -> X, ResNet generators (`xdomain.nn.resnet`)
- `D_a`, `D_b`       D_X, D_Y: 70x70 PatchGANs (`xdomain.nn.patchgan`), logits per patch
- `loss_gan`         L_GAN(G, D_Y) + L_GAN(F, D_X), least squares (LSGAN) by default
- `loss_cyc`         L_cyc = |F(G(x)) - x|_1 + |G(F(y)) - y|_1, weighted by `lambda_cyc` (10)
- `loss_idt`         |G(y) - y|_1 + |F(x) - x|_1 (Sec. 5.2, Taigman et al.'s identity term),
                     weighted by `lambda_idt * lambda_cyc` (0.5 x 10) as the reference does

Each step: the generators first (against the current Ds), then each D on real images and on
fakes drawn through a history pool of 50 past fakes, its loss halved ("slows down the rate at
which D learns relative to G", Sec. 7.1).

The generator is fully convolutional (`any_size`): a model trained on 256 px crops translates a
photo of any size, and `reverse=True` runs F.
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
from xdomain.methods.options import REVERSE
from xdomain.nn import init_weights
from xdomain.nn.patchgan import PatchDiscriminator
from xdomain.nn.pool import HistoryPools, ImagePool
from xdomain.nn.resnet import ResnetGenerator


class CycleGAN(HistoryPools, Method):  # pools saved with checkpoints
    bidirectional = True
    cli_options = (REVERSE,)
    any_size = True
    sample_rows = "a, G(a), F(G(a)); b, F(b), G(F(b))"

    @dataclass
    class Config:
        ngf: int = 64  # generator width (the reference's ngf)
        n_blocks: int = 9  # residual blocks: 9 at 256 px, 6 at 128 px (reference)
        ndf: int = 64  # discriminator width
        n_layers_d: int = 3  # PatchGAN depth: 3 -> 70x70 receptive field
        norm: Literal["instance", "batch"] = "instance"  # instance: affine=False, as the reference
        dropout: bool = False  # dropout 0.5 in the residual blocks (reference: off for CycleGAN)
        gan_loss: GanKind = "lsgan"
        lambda_cyc: float = 10.0  # the reference's lambda_A = lambda_B
        lambda_idt: float = 0.5  # identity weight, relative to lambda_cyc
        pool_size: int = 50  # history of past fakes shown to D (0: off)
        lr: float = 2e-4
        beta1: float = 0.5
        beta2: float = 0.999
        init_std: float = 0.02  # N(0, 0.02) init of the reference (`init_type=normal`)

    def __init__(self, cfg: CycleGAN.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image":
            raise ConfigError("cyclegan translates images; the data are points (use discogan)")
        if cfg.n_blocks < 0 or cfg.n_layers_d < 1 or min(cfg.ngf, cfg.ndf) < 1:
            raise ConfigError("model.n_blocks >= 0, model.n_layers_d >= 1, model.ngf/ndf >= 1")
        c = spec.channels
        g = {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks, "norm": cfg.norm, "dropout": cfg.dropout}
        d = {"ndf": cfg.ndf, "n_layers": cfg.n_layers_d, "norm": cfg.norm}
        self.G_ab = ResnetGenerator(c, c, **g)
        self.G_ba = ResnetGenerator(c, c, **g)
        self.D_a = PatchDiscriminator(c, **d)
        self.D_b = PatchDiscriminator(c, **d)
        for net in (self.G_ab, self.G_ba, self.D_a, self.D_b):
            init_weights(net, cfg.init_std)
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
        # one optimizer per side over both networks, as the reference
        self.opt_g = torch.optim.Adam([*self.G_ab.parameters(), *self.G_ba.parameters()], **adam)
        self.opt_d = torch.optim.Adam([*self.D_a.parameters(), *self.D_b.parameters()], **adam)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        c = self.cfg
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, unpaired
        fake_b = self.G_ab(a)  # G(x)
        fake_a = self.G_ba(b)  # F(y)

        # generators, against the Ds as they are now (D's grads are not needed here)
        self.requires_grad(self.D_a, self.D_b, flag=False)
        loss_gan = gan_g(self.D_b(fake_b), c.gan_loss) + gan_g(self.D_a(fake_a), c.gan_loss)
        loss_cyc = F.l1_loss(self.G_ba(fake_b), a) + F.l1_loss(self.G_ab(fake_a), b)
        loss_g = loss_gan + c.lambda_cyc * loss_cyc
        logs = {"loss_gan": loss_gan.item(), "loss_cyc": loss_cyc.item()}
        if c.lambda_idt > 0:
            loss_idt = F.l1_loss(self.G_ab(b), b) + F.l1_loss(self.G_ba(a), a)
            loss_g = loss_g + c.lambda_idt * c.lambda_cyc * loss_idt
            logs["loss_idt"] = loss_idt.item()
        self.update(self.opt_g, loss_g)
        self.requires_grad(self.D_a, self.D_b, flag=True)

        # discriminators on real images and on fakes from the history pools, each loss halved
        loss_d_b = 0.5 * (
            gan_d_real(self.D_b(b), c.gan_loss)
            + gan_d_fake(self.D_b(self.pool_b.query(fake_b)), c.gan_loss)
        )
        loss_d_a = 0.5 * (
            gan_d_real(self.D_a(a), c.gan_loss)
            + gan_d_fake(self.D_a(self.pool_a.query(fake_a)), c.gan_loss)
        )
        loss_d = loss_d_a + loss_d_b
        self.update(self.opt_d, loss_d)
        logs["loss_d"] = loss_d.item()
        return logs

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        return self.G_ab(x)  # (B, C, H, W)

    def generate_ba(self, x: Tensor) -> Tensor:
        return self.G_ba(x)  # (B, C, H, W)

    def visualize(self, fixed: Batch, path: Any) -> None:
        """Rows: a, G(a), F(G(a)), b, F(b), G(F(b))."""
        from xdomain.grid import save_grid

        a, b = fixed["a"], fixed["b"]
        fake_b, fake_a = self.translate(a), self.translate(b, reverse=True)
        rec_a, rec_b = self.translate(fake_b, reverse=True), self.translate(fake_a)
        save_grid([a, fake_b, rec_a, b, fake_a, rec_b], path)
