"""U-GAT-IT (Kim, Kim, Kang, Lee, "U-GAT-IT: Unsupervised Generative Attentional Networks with
Adaptive Layer-Instance Normalization for Image-to-Image Translation", ICLR 2020), with the
reference implementation's defaults (znxlwm/UGATIT-pytorch).

Names here -> the paper's symbols (the reference calls G_ab `genA2B`, D_b's two scales `disGB`
and `disLB`):

- `G_ab`, `G_ba`        G_{s->t}, G_{t->s}: encoder, CAM attention, AdaLIN decoder
                         (`xdomain.nn.ugatit.UGATITGenerator`, `light` pools before the MLP)
- `D_a`, `D_b`          the global discriminators D_t (7 layers at 256 px)
- `D_a_local`, ...      the local ones (5 layers): each with its own CAM
- `loss_adv`            L_lsgan on D's patch logits AND on D's CAM logits, global and local
- `loss_cyc`            L_cycle = |G_ts(G_st(x)) - x|_1, weighted 10
- `loss_idt`            L_identity = |G_st(x_t) - x_t|_1, weighted 10
- `loss_cam`            L_cam of G: BCE on G's CAM logits, "needs translating" (1) for a
                         source image, (0) for an image already in the generator's target
                         domain; weighted 1000. D's CAM is trained through L_lsgan.

`model.cam: false` is the paper's ablation "U-GAT-IT w/o CAM": no CAM module in G or the Ds, so
no CAM logits, no L_cam, and the attention maps in the samples are the plain channel sums.

Each step: both Ds on real images and on fresh fakes, then both Gs; rho of every AdaLIN/LIN
clipped to [0, 1] after the G step (the reference's RhoClipper). Adam 1e-4 (0.5, 0.999), weight
decay 1e-4, lr constant then linearly to 0 over the second half.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from xdomain.errors import ConfigError
from xdomain.losses import cam_loss, gan_d_heads, gan_g_heads
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.methods.options import REVERSE
from xdomain.nn.ugatit import UGATITDiscriminator, UGATITGenerator


class UGATIT(Method):
    bidirectional = True
    cli_options = (REVERSE,)
    sample_rows = (
        "a, G_ab's attention, G_ab(a), D_b's attention on it; b, G_ba's attention, G_ba(b),"
        " D_a's attention on it"
    )

    @dataclass
    class Config:
        ngf: int = 64
        n_blocks: int = 4  # residual blocks in the encoder and in the decoder (reference: 4)
        light: bool = False  # gamma/beta from pooled features (any input size), as `--light`
        ndf: int = 64
        n_layers_global: int = 7  # global D: 7 layers at 256 px; fewer at CPU scale
        n_layers_local: int = 5  # local D: 5 layers
        lambda_adv: float = 1.0
        lambda_cyc: float = 10.0
        lambda_idt: float = 10.0
        lambda_cam: float = 1000.0
        cam: bool = True  # False: the paper's "w/o CAM" ablation (no CAM in G or the Ds)
        lr: float = 1e-4
        beta1: float = 0.5
        beta2: float = 0.999
        weight_decay: float = 1e-4

    def __init__(self, cfg: UGATIT.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image":
            raise ConfigError("ugatit translates images; the data are points")
        c, size = spec.channels, spec.image_size
        for name, n in (
            ("n_layers_global", cfg.n_layers_global),
            ("n_layers_local", cfg.n_layers_local),
        ):
            # each D needs a map of at least 2x2 before its last two 4x4 stride-1 convs
            if n < 3 or size // 2 ** (n - 2) < 2:
                raise ConfigError(
                    f"model.{name}={n} needs images of at least {2 ** (n - 1)} px (data.image_size"
                    f" is {size}); use {max(3, (size // 2).bit_length())} or fewer"
                )
        g = {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks, "img_size": size, "light": cfg.light}
        self.G_ab = UGATITGenerator(c, c, **g, cam=cfg.cam)
        self.G_ba = UGATITGenerator(c, c, **g, cam=cfg.cam)
        self.D_a = UGATITDiscriminator(c, cfg.ndf, cfg.n_layers_global, cam=cfg.cam)
        self.D_b = UGATITDiscriminator(c, cfg.ndf, cfg.n_layers_global, cam=cfg.cam)
        self.D_a_local = UGATITDiscriminator(c, cfg.ndf, cfg.n_layers_local, cam=cfg.cam)
        self.D_b_local = UGATITDiscriminator(c, cfg.ndf, cfg.n_layers_local, cam=cfg.cam)
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2), "weight_decay": cfg.weight_decay}
        self.opt_g = torch.optim.Adam([*self.G_ab.parameters(), *self.G_ba.parameters()], **adam)
        self.opt_d = torch.optim.Adam(
            [p for d in self._discriminators() for p in d.parameters()], **adam
        )

    @property
    def any_size(self) -> bool:  # type: ignore[override]
        return self.cfg.light  # the full MLP reads the whole (img_size / 4)^2 feature map

    def _discriminators(self) -> tuple[UGATITDiscriminator, ...]:
        return (self.D_a, self.D_a_local, self.D_b, self.D_b_local)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    @staticmethod
    def _heads(x: Tensor, ds: tuple[Any, Any]) -> list[Tensor | None]:
        """The patch and CAM logits (None without CAM) of a global and a local D on x."""
        return [t for d in ds for t in d(x)[:2]]

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        c = self.cfg
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, unpaired
        d_a, d_b = (self.D_a, self.D_a_local), (self.D_b, self.D_b_local)

        # discriminators, on fresh (detached) fakes
        with torch.no_grad():
            fake_b, fake_a = self.G_ab(a)[0], self.G_ba(b)[0]
        heads = self._heads
        loss_d = c.lambda_adv * (
            gan_d_heads(heads(a, d_a), heads(fake_a, d_a), "lsgan")
            + gan_d_heads(heads(b, d_b), heads(fake_b, d_b), "lsgan")
        )
        self.update(self.opt_d, loss_d)

        # generators
        self.requires_grad(*self._discriminators(), flag=False)
        fake_b, cam_ab, _ = self.G_ab(a)  # a needs translating: G_ab's CAM says 1
        fake_a, cam_ba, _ = self.G_ba(b)
        idt_a, cam_aa, _ = self.G_ba(a)  # already in G_ba's target domain: CAM says 0
        idt_b, cam_bb, _ = self.G_ab(b)
        loss_adv = gan_g_heads(heads(fake_a, d_a), "lsgan") + gan_g_heads(
            heads(fake_b, d_b), "lsgan"
        )
        loss_cyc = F.l1_loss(self.G_ba(fake_b)[0], a) + F.l1_loss(self.G_ab(fake_a)[0], b)
        loss_idt = F.l1_loss(idt_a, a) + F.l1_loss(idt_b, b)
        loss_cam = a.new_zeros(())  # stays 0 in the ablation: no CAM logits to train
        if c.cam:
            loss_cam = cam_loss(cam_ab, cam_bb) + cam_loss(cam_ba, cam_aa)  # type: ignore[arg-type]
        loss_g = (
            c.lambda_adv * loss_adv
            + c.lambda_cyc * loss_cyc
            + c.lambda_idt * loss_idt
            + c.lambda_cam * loss_cam
        )
        self.update(self.opt_g, loss_g)
        self.requires_grad(*self._discriminators(), flag=True)
        self.G_ab.clip_rho()
        self.G_ba.clip_rho()
        return {
            "loss_d": loss_d.item(),
            "loss_adv": loss_adv.item(),
            "loss_cyc": loss_cyc.item(),
            "loss_idt": loss_idt.item(),
            "loss_cam": loss_cam.item(),
        }

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        return self.G_ab(x)[0]  # (B, C, H, W)

    def generate_ba(self, x: Tensor) -> Tensor:
        return self.G_ba(x)[0]

    def visualize(self, fixed: Batch, path: Path) -> None:
        """Rows: a, G_ab's attention on a, G_ab(a), D_b's attention on G_ab(a); then the same
        for b. Attention maps are min-max scaled per image and drawn at the image's size."""
        from xdomain.grid import attention_rows, save_grid

        with self.evaluating():
            rows = []
            for x, g, d in ((fixed["a"], self.G_ab, self.D_b), (fixed["b"], self.G_ba, self.D_a)):
                y, _, heat_g = g(x)
                rows += attention_rows(x, heat_g, y, d(y)[2])
            save_grid(rows, path)
