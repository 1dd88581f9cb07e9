"""Morph-UGATIT (shoutOutYangJie/Morph-UGATIT, 2021; the `s_ugatit_plus` model): U-GAT-IT with one
generator for both directions, steered by a domain code, so that one model morphs an image
progressively from domain a to domain b.

Names here -> the article's terms (the reference calls D_b `D_A`: it judges domain B):

- `G`               the one generator (`xdomain.nn.morph.MorphGenerator`): shared encoder E, CAM,
                    mapping MLP z -> w (the StyleGAN w idea, as in Lifespan Age Transformation
                    Synthesis), AdaLIN decoder whose gamma/beta come from w
- `D_a`, `D_b`      one discriminator per domain, each a local and a global PatchGAN branch with
                    its own CAM, spectral norm
- z                 the domain code (B, 2 z_dim): N(0, 0.2^2) noise, +1 on the first half to
                    translate into b, on the second half into a (`nn.morph.domain_code`)
- `loss_adv`        LSGAN on both branches' patch logits and CAM logits
- `loss_cyc`        |G(G(x, z_to_b), z_to_a) - x|_1 (and b's), weighted 10
- `loss_idt`        |G(x, z_to_own_domain) - x|_1, weighted 10
- `loss_cam`        G's CAM: BCE, 1 for the translating pass and 0 for the identity pass of the
                    same image. G's CAM logit is computed from E's features before z enters,
                    so it cannot tell the two passes apart: the article reports that this loss
                    stays high for config C (the encoder's features become domain-agnostic)
- `loss_idp`        identity preserving: |E(G(x, z)) - E(x)|_1, weighted 1

Each step, as the reference: the generator first (its whole loss x 0.5: "only one G" for two
directions), then both Ds on real images and on fakes from history pools of 10. Adam 2e-4
(0.5, 0.999), no weight decay, linear decay over the second half.

The article's configurations (`xdomain recipes`): A is U-GAT-IT itself (the `ugatit` recipes);
B adds the identity-preserving loss (`mapping: false` here: z feeds the AdaLIN layers directly,
so B and C differ only in the mapping MLP); C adds the mapping MLP (the default).

Translation uses each domain's mean latent w (the mean of mapping(z) over `avg_w_samples`
codes drawn from a fixed seed; the reference's `get_avg_w`), so it is deterministic. Morphing
(`alpha` in [0, 1]) decodes with lerp(w_a, w_b, alpha): alpha 0 keeps the image in a's
style (the identity pass), alpha 1 translates it to b.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from xdomain.errors import ConfigError, XDomainError, short
from xdomain.limits import check_outputs
from xdomain.losses import cam_loss, gan_d_heads, gan_g_heads
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.methods.options import REVERSE, Context, Option, strip_steps, unit_float
from xdomain.nn.morph import MorphDiscriminator, MorphGenerator, domain_code
from xdomain.nn.pool import HistoryPools, ImagePool


class MorphUGATIT(HistoryPools, Method):  # pools saved with checkpoints
    bidirectional = True
    translate_options = frozenset({"alpha"})
    cli_options = (
        REVERSE,
        Option(
            "--morph",
            "morph",
            "write each input's N-step morph from a to b as one strip (alpha 0 .. 1)",
            type=strip_steps,
            metavar="N",
        ),
        Option(
            "--alpha",
            "alpha",
            "translate to the morph position A in [0, 1] (0: domain a, 1: domain b)",
            type=unit_float,
            metavar="A",
        ),
    )
    sample_rows = (
        "a, G's attention, a -> b, D_b's attention on it; the morph a -> b at alpha 0, 0.25,"
        " 0.5, 0.75, 1; b, G's attention, b -> a, D_a's attention on it"
    )

    @dataclass
    class Config:
        ngf: int = 64  # the official net: 64 (its AdaLIN is built for 4 * 64 = 256 channels)
        n_blocks: int = 4  # residual blocks in the encoder and in the decoder
        z_dim: int = 32  # half of the domain code (the code is 2 * z_dim wide)
        z_noise: float = 0.2  # std of the code's noise (reference)
        mapping: bool = True  # config C: the mapping MLP; False: z feeds AdaLIN (config B)
        mapping_layers: int = 8
        ndf: int = 64
        n_blocks_d: int = 6  # global branch: 6 convs (stride 32, 128 px and up); local: 4
        lambda_adv: float = 1.0
        lambda_cyc: float = 10.0
        lambda_idt: float = 10.0
        lambda_cam: float = 1000.0
        lambda_idp: float = 1.0  # identity preserving (the reference's lambda_similarity)
        loss_scale: float = 0.5  # the generator's whole loss x 0.5 ("only one G")
        pool_size: int = 10
        lr: float = 2e-4
        beta1: float = 0.5
        beta2: float = 0.999
        avg_w_samples: int = 256  # codes averaged into each domain's latent for translation

    def __init__(self, cfg: MorphUGATIT.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image":
            raise ConfigError("morph_ugatit translates images; the data are points")
        size = spec.image_size
        if size % 4:
            raise ConfigError(f"morph_ugatit needs data.image_size a multiple of 4, got {size}")
        # the global branch's n_blocks_d - 1 stride-2 convs must leave a map of >= 3 px for
        # its two 4x4 stride-1 convs (reflection-padded by 1)
        if cfg.n_blocks_d < 4 or size // 2 ** (cfg.n_blocks_d - 1) < 3:
            most = max(n for n in range(4, 16) if size // 2 ** (n - 1) >= 3 or n == 4)
            raise ConfigError(
                f"model.n_blocks_d={cfg.n_blocks_d} needs images of at least"
                f" {3 * 2 ** (cfg.n_blocks_d - 1)} px (data.image_size is {size}); use 4"
                + (f" to {most}" if most > 4 else "")
            )
        if cfg.avg_w_samples < 1:
            raise ConfigError("model.avg_w_samples must be >= 1")
        c = spec.channels
        self.G = MorphGenerator(
            c,
            c,
            ngf=cfg.ngf,
            n_blocks=cfg.n_blocks,
            z_dim=cfg.z_dim,
            mapping=cfg.mapping,
            mapping_layers=cfg.mapping_layers,
        )
        self.D_a = MorphDiscriminator(c, cfg.ndf, cfg.n_blocks_d)
        self.D_b = MorphDiscriminator(c, cfg.ndf, cfg.n_blocks_d)
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam([*self.D_a.parameters(), *self.D_b.parameters()], **adam)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def _code(self, n: int, target: str, like: Tensor) -> Tensor:
        """Fresh domain codes (n, 2 z_dim) from the global RNG (saved with checkpoints)."""
        c = self.cfg
        return domain_code(n, target, c.z_dim, noise=c.z_noise).to(like.device)  # type: ignore[arg-type]

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        c = self.cfg
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, unpaired
        n = a.shape[0]
        fake_b, cam_ab, e_a = self.G(a, self._code(n, "B", a))  # a needs translating: CAM 1
        fake_a, cam_ba, e_b = self.G(b, self._code(n, "A", b))
        rec_a = self.G(fake_b, self._code(n, "A", a))[0]
        rec_b = self.G(fake_a, self._code(n, "B", b))[0]

        # the generator, against the Ds as they are now
        self.requires_grad(self.D_a, self.D_b, flag=False)
        idt_b, cam_bb, _ = self.G(b, self._code(n, "B", b))  # already in b: CAM 0
        idt_a, cam_aa, _ = self.G(a, self._code(n, "A", a))
        loss_adv = gan_g_heads(self.D_b(fake_b), "lsgan") + gan_g_heads(self.D_a(fake_a), "lsgan")
        loss_cyc = F.l1_loss(rec_a, a) + F.l1_loss(rec_b, b)
        loss_idt = F.l1_loss(idt_a, a) + F.l1_loss(idt_b, b)
        loss_cam = cam_loss(cam_ab, cam_bb) + cam_loss(cam_ba, cam_aa)
        loss_idp = F.l1_loss(self.G.encode(fake_b), e_a) + F.l1_loss(self.G.encode(fake_a), e_b)
        loss_g = c.loss_scale * (
            c.lambda_adv * loss_adv
            + c.lambda_cyc * loss_cyc
            + c.lambda_idt * loss_idt
            + c.lambda_cam * loss_cam
            + c.lambda_idp * loss_idp
        )
        self.update(self.opt_g, loss_g)
        self.requires_grad(self.D_a, self.D_b, flag=True)

        # the discriminators, on real images and on fakes from the history pools
        loss_d_b = gan_d_heads(self.D_b(b), self.D_b(self.pool_b.query(fake_b)), "lsgan")
        loss_d_a = gan_d_heads(self.D_a(a), self.D_a(self.pool_a.query(fake_a)), "lsgan")
        loss_d = c.lambda_adv * (loss_d_a + loss_d_b)
        self.update(self.opt_d, loss_d)
        return {
            "loss_d": loss_d.item(),
            "loss_adv": loss_adv.item(),
            "loss_cyc": loss_cyc.item(),
            "loss_idt": loss_idt.item(),
            "loss_cam": loss_cam.item(),
            "loss_idp": loss_idp.item(),
        }

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def domain_latents(self) -> tuple[Tensor, Tensor]:
        """(w_a, w_b), each (1, w_dim): the mean mapped latent of `avg_w_samples` codes towards
        a and towards b, drawn from a fixed seed (the same on every call and machine)."""
        c = self.cfg
        gen = torch.Generator().manual_seed(0)
        device = next(self.parameters()).device
        out = []
        for target in ("A", "B"):
            z = domain_code(c.avg_w_samples, target, c.z_dim, generator=gen, noise=c.z_noise)
            out.append(self.G.mapping(z.to(device)).mean(0, keepdim=True))
        return out[0], out[1]

    def _latent(self, alpha: float, n: int) -> Tensor:
        w_a, w_b = self.domain_latents()
        return torch.lerp(w_a, w_b, alpha).expand(n, -1)  # (n, w_dim)

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        """a -> b, or with `alpha` (a number in [0, 1], or a sequence of them) the morph: one
        alpha gives (B, C, H, W), a sequence (B, K, C, H, W)."""
        if alpha is None:
            alpha = 1.0
        if isinstance(alpha, (Tensor, np.ndarray)):  # a 0-d array is one alpha, else a list
            alpha = alpha.tolist()
        if isinstance(alpha, (list, tuple)):
            if not alpha:
                raise XDomainError("alpha is an empty sequence; give at least one value in [0, 1]")
            check_outputs(x.shape[0], len(alpha), tuple(x.shape[1:]), f"{len(alpha)} alphas")
            alphas = [_check_alpha(v) for v in alpha]
            return self.morph(x, alphas)
        return self.morph(x, [_check_alpha(alpha)])[:, 0]

    def translate_kwargs(
        self, values: dict[str, Any], ctx: Context
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        shared, per_input = super().translate_kwargs(values, ctx)
        n, alpha = values.get("morph"), values.get("alpha")
        if n is None and alpha is None:
            return shared, per_input
        if values.get("reverse"):
            raise XDomainError(
                "--morph/--alpha run from a (alpha 0) to b (alpha 1); drop --reverse"
            )
        if n is not None and alpha is not None:
            raise XDomainError("give --morph N (a strip) or --alpha A (one position), not both")
        shared["alpha"] = [i / (n - 1) for i in range(n)] if n is not None else alpha
        return shared, per_input

    def outputs_per_input(
        self, *, target: Any = None, z: Any = None, alpha: Any = None, reverse: bool = False
    ) -> int:
        if isinstance(alpha, (Tensor, np.ndarray)):
            return max(1, alpha.size if isinstance(alpha, np.ndarray) else alpha.numel())
        return max(1, len(alpha)) if isinstance(alpha, (list, tuple)) else 1

    def generate_ba(self, x: Tensor) -> Tensor:
        f, _ = self.G.attend(self.G.encode(x))
        return self.G.synthesize(f, self._latent(0.0, x.shape[0]))

    def morph(self, x: Tensor, alphas: list[float]) -> Tensor:
        """(B, C, H, W) -> (B, K, C, H, W): x decoded with lerp(w_a, w_b, alpha) for each of
        the K alphas. The encoder and the CAM run once (they do not depend on w)."""
        f, _ = self.G.attend(self.G.encode(x))  # (B, C', h, w)
        w_a, w_b = self.domain_latents()
        n = x.shape[0]
        outs = [self.G.synthesize(f, torch.lerp(w_a, w_b, t).expand(n, -1)) for t in alphas]
        return torch.stack(outs, dim=1)

    def visualize(self, fixed: Batch, path: Path) -> None:
        """Rows: a, G's attention on a, a -> b, D_b's global attention on it; the 5-step morph
        of the first inputs (alpha 0, .25, .5, .75, 1, one row each); then b, its attention,
        b -> a, D_a's attention. Attention maps are min-max scaled per image."""
        from xdomain.grid import attention_rows, save_grid

        with self.evaluating():
            rows = []
            for x, reverse, d in ((fixed["a"], False, self.D_b), (fixed["b"], True, self.D_a)):
                f, _ = self.G.attend(self.G.encode(x))
                heat_g = f.sum(1, keepdim=True)  # (B, 1, h, w), as U-GAT-IT's heatmap
                y = self.generate_ba(x) if reverse else self.generate(x)
                rows += attention_rows(x, heat_g, y, _d_heat(d, y))
                if not reverse:
                    strip = self.morph(x, [0.0, 0.25, 0.5, 0.75, 1.0])  # (B, 5, C, H, W)
                    rows += list(strip.unbind(1))
            save_grid(rows, path)


def _d_heat(d: MorphDiscriminator, y: Tensor) -> Tensor:
    """The channel sum of D's global-branch CAM features on y: (B, 1, h, w)."""
    br = d.global_branch
    h, _ = br.cam(br.refine(br.downs(y)))
    return h.sum(1, keepdim=True)


def _check_alpha(value: Any) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several values
        raise XDomainError(f"alpha must be a number in [0, 1], got {short(value)}") from None
    if not 0.0 <= t <= 1.0:
        raise XDomainError(f"alpha must be in [0, 1] (0: domain a, 1: domain b), got {t}")
    return t
