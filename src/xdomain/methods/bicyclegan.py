"""BicycleGAN (Zhu, Zhang, Pathak, Darrell, Efros, Wang, Shechtman, "Toward Multimodal
Image-to-Image Translation", NIPS 2017), with the reference implementation's defaults
(junyanz/BicycleGAN, `models/bicycle_gan_model.py`).

Paired data (`data.paired`), one input to many outputs through a latent code z (8-d):

- `G`      G(A, z): a U-Net with z tiled and added to every down layer (`where_add=all`) or to
           the input only (`xdomain.nn.unet.UnetZGenerator`)
- `E`      a ResNet encoder B -> (mu, logvar) (`xdomain.nn.bicyclegan.ResnetEncoder`)
- `D`, `D2`  two multi-scale PatchGANs (2 scales each): D judges the cVAE-GAN outputs, D2 the
           cLR-GAN ones

Each batch is split in half as the reference does (batch 2: one pair each). With A1, B1 the
first half, A2, B2 the second:

- cVAE-GAN  (B -> z -> B^): z = mu + eps * sigma from E(B1); `loss_gan` = L_GAN(G(A1, z), D),
            `loss_l1` = |B1 - G(A1, z)|_1 (lambda_l1 = 10), `loss_kl` = KL(E(B1) || N(0, I))
            summed over z's dimensions and the batch (lambda_kl = 0.01)
- cLR-GAN   (z -> B^ -> z^): z ~ N(0, I); `loss_gan2` = L_GAN(G(A1, z), D2) against real B2,
            `loss_latent` = |z - mu(E(G(A1, z)))|_1 (lambda_latent = 0.5), into G alone, not E

Update order of the reference: zero E's and G's gradients, backpropagate the E+G loss, then the
latent loss into G alone (E frozen), step E and G; then D (real B1 vs G(A1, E(B1))) and D2
(real B2 vs G(A1, z)), LSGAN, each summed over its scales.

The paper's baselines are `variant`s of the same networks: `pix2pix+noise` (random z, L1 to
the target, one D), `cae-gan` (E deterministic, no KL), `cvae-gan` (no cLR half), `clr-gan`
(no cVAE half: no L1 to the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from xdomain.errors import ConfigError, XDomainError, short
from xdomain.limits import FORWARD_ROWS, MAX_TILES, check_outputs
from xdomain.losses import GanKind, gan_d_heads, gan_g_heads
from xdomain.methods.base import Batch, DataSpec, Method
from xdomain.methods.options import Context, Option, strip_steps, tiles
from xdomain.methods.options import seed as seed_arg
from xdomain.nn import init_weights, xavier_init
from xdomain.nn.bicyclegan import MultiScaleDiscriminator, ResnetEncoder
from xdomain.nn.unet import UnetZGenerator, check_unet_size

Variant = Literal["bicyclegan", "cvae-gan", "clr-gan", "cae-gan", "pix2pix+noise"]
# which halves of the objective each variant trains: (cVAE half, cLR half, KL on E)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "bicyclegan": (True, True, True),
    "cvae-gan": (True, False, True),
    "clr-gan": (False, True, True),
    "cae-gan": (True, False, False),
    "pix2pix+noise": (False, False, False),
}


# codes per input in one call (the CLI's strips are shorter: `limits.MAX_TILES`)
MAX_CODES = 16 * MAX_TILES


def _describe_code(z: Any) -> str:
    if isinstance(z, Tensor):
        return f"a {z.dtype} tensor of shape {tuple(z.shape)}"
    return f"a {type(z).__name__} ({short(z)})"


class BicycleGAN(Method):
    layout = "paired"
    translate_options = frozenset({"z"})
    cli_options = (
        Option(
            "--samples",
            "samples",
            "K outputs per input from random latent codes, side by side",
            type=tiles,
            metavar="K",
        ),
        Option(
            "--sync",
            "sync",
            "with --samples: the same K codes for every input (columns are comparable)",
            switch=True,
        ),
        Option(
            "--style", "style", "take the latent code from the reference image REF", metavar="REF"
        ),
        Option(
            "--interpolate",
            "interpolate",
            "N outputs along the line between two random codes, the same for every input",
            type=strip_steps,
            metavar="N",
        ),
        Option(
            "--seed",
            "seed",
            "seed of the random latent codes (0 .. 2**63 - 1)",
            type=seed_arg,
            default=0,
        ),
    )
    # the reference's option name (`--lambda_z`), also in checkpoints written before the rename
    renamed_keys: ClassVar[dict[str, tuple[str, Any]]] = {"lambda_z": ("lambda_latent", float)}
    sample_rows = "a, b (the target), G(a, E(b)), then G(a, z) for random z"

    @dataclass
    class Config:
        variant: Variant = "bicyclegan"
        nz: int = 8  # latent dimensions
        ngf: int = 64
        ndf: int = 64
        nef: int = 64  # encoder width
        num_downs: int = 8  # U-Net depth: 2**num_downs = image size (unet_256: 8)
        where_add: Literal["all", "input"] = "all"  # z into every down layer, or the input only
        upsample: Literal["basic", "bilinear"] = "basic"  # transposed convs, or resize + conv
        norm: Literal["instance", "batch", "none"] = "instance"
        nl: Literal["relu", "lrelu"] = "relu"  # G's decoder non-linearity
        dropout: bool = False  # the edges2shoes script trains with --use_dropout
        e_blocks: int = 5  # ResNet encoder blocks: 5 for 256 px (resnet_256), 4 for 128
        n_layers_d: int = 3
        num_d: int = 2  # scales of each multi-scale D
        gan_loss: GanKind = "lsgan"
        lambda_l1: float = 10.0
        lambda_kl: float = 0.01
        lambda_latent: float = 0.5
        lambda_gan: float = 1.0  # cVAE-GAN's D
        lambda_gan2: float = 1.0  # cLR-GAN's D2
        lr: float = 2e-4
        beta1: float = 0.5
        beta2: float = 0.999
        init: Literal["xavier", "normal"] = "xavier"  # the reference's default: xavier, gain 0.02
        init_gain: float = 0.02

    def __init__(self, cfg: BicycleGAN.Config, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.kind != "image":
            raise ConfigError("bicyclegan translates images; the data are points")
        if cfg.variant not in VARIANTS:
            raise ConfigError(f"model.variant={cfg.variant!r}; valid: {', '.join(VARIANTS)}")
        if cfg.nz < 1:
            raise ConfigError(f"model.nz={cfg.nz} must be >= 1")
        check_unet_size(spec.image_size, cfg.num_downs)
        if spec.image_size != 8 * 2**cfg.e_blocks:
            raise ConfigError(
                f"model.e_blocks={cfg.e_blocks} encodes {8 * 2**cfg.e_blocks} px images, the"
                f" data are {spec.image_size} px; the ResNet encoder ends on an 8x8 map, so set"
                f" model.e_blocks to log2(image_size / 8) (5 at 256 px, 2 at 32 px)"
            )
        self.use_vae, self.use_clr, self.use_kl = VARIANTS[cfg.variant]
        c = spec.channels
        self.G = UnetZGenerator(
            c,
            c,
            nz=cfg.nz,
            num_downs=cfg.num_downs,
            ngf=cfg.ngf,
            norm=cfg.norm,
            nl=cfg.nl,
            dropout=cfg.dropout,
            where_add=cfg.where_add,
            upsample=cfg.upsample,
        )
        d = {"ndf": cfg.ndf, "n_layers": cfg.n_layers_d, "norm": cfg.norm, "num_d": cfg.num_d}
        self.E = ResnetEncoder(c, nz=cfg.nz, ndf=cfg.nef, n_blocks=cfg.e_blocks, norm=cfg.norm)
        self.D = MultiScaleDiscriminator(c, **d)
        self.D2 = MultiScaleDiscriminator(c, **d)
        for net in (self.G, self.E, self.D, self.D2):
            if cfg.init == "xavier":
                xavier_init(net, cfg.init_gain)
            else:
                init_weights(net, cfg.init_gain)
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_e = torch.optim.Adam(self.E.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        self.opt_d2 = torch.optim.Adam(self.D2.parameters(), **adam)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "e": self.opt_e, "d": self.opt_d, "d2": self.opt_d2}

    # ------------------------------------------------------------------ training
    def encode(self, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z = mu + eps * exp(logvar / 2) from E(b), and mu, logvar: (B, nz) each."""
        mu, logvar = self.E(b)
        if not self.use_kl:  # cAE-GAN: a deterministic encoder
            return mu, mu, logvar
        eps = torch.randn_like(mu)
        return mu + eps * (0.5 * logvar).exp(), mu, logvar

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        c = self.cfg
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, paired
        if a.shape[0] < 2 or a.shape[0] % 2:
            raise ConfigError(
                f"bicyclegan splits each batch in half (cVAE-GAN | cLR-GAN); data.batch_size"
                f" is {a.shape[0]} per process: make it even (the reference uses 2)"
            )
        half = a.shape[0] // 2
        a1, b1, b2 = a[:half], b[:half], b[half:]  # A1, B1 encoded; B2 the cLR half's real
        z_random = torch.randn(half, c.nz, device=a.device)  # (B/2, nz)
        logs: dict[str, float] = {}

        # ---- E and G
        self.requires_grad(self.D, self.D2, flag=False)
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_e.zero_grad(set_to_none=True)
        loss_eg = a.new_zeros(())
        fake_enc = None
        if self.use_vae:
            z_enc, mu, logvar = self.encode(b1)
            fake_enc = self.G(a1, z_enc)  # G(A1, E(B1)): (B/2, C, H, W)
            loss_gan = gan_g_heads(self.D(fake_enc), c.gan_loss)
            loss_l1 = F.l1_loss(fake_enc, b1)
            loss_eg = loss_eg + c.lambda_gan * loss_gan + c.lambda_l1 * loss_l1
            logs |= {"loss_gan": loss_gan.item(), "loss_l1": loss_l1.item()}
            if self.use_kl and c.lambda_kl > 0:
                # KL(N(mu, sigma) || N(0, I)), summed over dims and batch as the reference
                loss_kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
                loss_eg = loss_eg + c.lambda_kl * loss_kl
                logs["loss_kl"] = loss_kl.item()
        random_half = self.use_clr or not self.use_vae  # cLR-GAN, or pix2pix+noise
        fake_rand = self.G(a1, z_random) if random_half else None  # G(A1, z), z ~ N(0, I)
        if fake_rand is not None:
            # cLR-GAN's D2 (pix2pix+noise: the one D of a conditional GAN with a random z)
            loss_gan2 = gan_g_heads(self.D2(fake_rand), c.gan_loss)
            loss_eg = loss_eg + c.lambda_gan2 * loss_gan2
            logs["loss_gan2"] = loss_gan2.item()
        if fake_rand is not None and not self.use_vae and not self.use_clr:
            # pix2pix+noise: L1 to the target with a random z
            loss_l1 = F.l1_loss(fake_rand, b1)
            loss_eg = loss_eg + c.lambda_l1 * loss_l1
            logs["loss_l1"] = loss_l1.item()
        latent = self.use_clr and c.lambda_latent > 0
        self.backward(loss_eg, retain_graph=latent)
        if latent:
            assert fake_rand is not None
            # latent regression |z - mu(E(G(A1, z)))|: in BicycleGAN its gradient reaches G
            # only (E learns from the cVAE half); cLR-GAN alone trains E with it too
            mu2, _ = self.E(fake_rand)
            loss_latent = F.l1_loss(mu2, z_random)
            only_g = list(self.G.parameters()) if self.use_vae else None
            self.backward(c.lambda_latent * loss_latent, inputs=only_g)
            logs["loss_latent"] = loss_latent.item()
        # pix2pix+noise never uses E: stepping an optimizer without gradients is an error
        # under a loss scaler
        self.step(*((self.opt_e, self.opt_g) if self.use_vae or latent else (self.opt_g,)))
        self.requires_grad(self.D, self.D2, flag=True)

        # ---- D (cVAE half) and D2 (cLR half), LSGAN summed over scales, not halved
        if self.use_vae:
            assert fake_enc is not None
            loss_d = gan_d_heads(self.D(b1), self.D(fake_enc.detach()), c.gan_loss)
            self.update(self.opt_d, loss_d)
            logs["loss_d"] = loss_d.item()
        if fake_rand is not None:
            loss_d2 = gan_d_heads(self.D2(b2), self.D2(fake_rand.detach()), c.gan_loss)
            self.update(self.opt_d2, loss_d2)
            logs["loss_d2"] = loss_d2.item()
        return logs

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode_style(self, b: Any) -> Tensor:
        """The z of reference images b ((B, C, H, W) in [-1, 1], or PIL images, resized by the
        `crop` rule as `translate` does): E's mu, (B, nz); the reference's `test(encode=True)`.
        Pass it as `translate(x, z=...)` to copy a reference's style."""
        from xdomain.data.inputs import to_batch

        if "E" in self.untrained:
            raise XDomainError(
                "this checkpoint was converted without the encoder (E); convert the official"
                " *_net_E.pth too to take codes from reference images"
            )
        with self.evaluating():
            xb, _ = self._check_input(to_batch(b, self.spec, "encode_style"))
            if not xb.shape[0]:
                return xb.new_zeros(0, self.cfg.nz)
            device = next(self.parameters()).device
            return self.E(xb.to(device, torch.float32))[0].to(xb.device)

    @staticmethod
    def interpolate_z(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
        """`steps` codes on the straight line from z0 to z1 (nz,) each: (steps, nz)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_CODES:
            raise XDomainError(
                f"interpolate_z: steps must be a whole number in [2, {MAX_CODES}], got"
                f" {short(steps)}"
            )
        for name, t in (("z0", z0), ("z1", z1)):
            if not isinstance(t, Tensor) or not t.is_floating_point() or t.dim() != 1:
                raise XDomainError(
                    f"interpolate_z: {name} must be a 1-d float tensor (nz,), got"
                    f" {_describe_code(t)}"
                )
        if z0.shape != z1.shape:
            raise XDomainError(
                f"interpolate_z: z0 has {z0.shape[0]} dimensions and z1 {z1.shape[0]}; give two"
                " codes of this model's nz (e.g. from encode_style or torch.randn(nz))"
            )
        if not (torch.isfinite(z0).all() and torch.isfinite(z1).all()):
            raise XDomainError("interpolate_z: z0 or z1 holds NaN or infinite values")
        w = torch.linspace(0, 1, steps, device=z0.device)[:, None]  # (steps, 1)
        return (1 - w) * z0[None] + w.to(z1.device) * z1[None]

    def _codes(self, z: Any, n: int, device: torch.device) -> Tensor:
        """`z` as given to `translate` -> (n, K, nz) codes for n inputs."""
        nz = self.cfg.nz
        if z is None:
            return torch.randn(n, 1, nz, device=device)
        if isinstance(z, int) and not isinstance(z, bool):
            if not 1 <= z <= MAX_CODES:
                raise XDomainError(f"z={z}: give the number of samples per input, 1 to {MAX_CODES}")
            check_outputs(n, z, self._item_shape(), f"z={z}")
            return torch.randn(n, z, nz, device=device)
        if not isinstance(z, Tensor) or not z.is_floating_point():
            raise XDomainError(
                "z is a number of random samples per input, or a float tensor of codes: (nz,)"
                f" or (K, nz) for every input, (B, K, nz) per input; got {_describe_code(z)}"
            )
        shaped = {1: lambda t: t.expand(n, 1, nz), 2: lambda t: t[None].expand(n, *t.shape)}
        if (
            z.dim() not in (1, 2, 3)
            or z.shape[-1] != nz
            or (z.dim() == 3 and z.shape[0] != n)
            or (z.dim() > 1 and z.shape[-2] == 0)
        ):
            raise XDomainError(
                f"z has shape {tuple(z.shape)}; this model's codes are {nz}-d: (nz,) or (K, nz)"
                f" for every input (K >= 1), ({n}, K, nz) per input"
            )
        k = 1 if z.dim() == 1 else z.shape[-2]
        check_outputs(n, k, self._item_shape(), f"z of shape {tuple(z.shape)}")
        if z.numel() and not torch.isfinite(z).all():
            raise XDomainError("z holds NaN or infinite values; give finite codes")
        z = z.to(device, torch.float32)
        return z if z.dim() == 3 else shaped[z.dim()](z)

    def translate_kwargs(
        self, values: dict[str, Any], ctx: Context
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """--samples / --sync / --style / --interpolate / --seed -> the codes: {"z": codes for
        every input} or, per input, {"z": (n_inputs, K, nz)}. Codes come from a generator seeded
        by --seed, so a rerun writes the same images."""
        samples, style, steps = (
            values.get("samples"),
            values.get("style"),
            values.get("interpolate"),
        )
        asked = [
            flag
            for flag, v in (("--samples", samples), ("--style", style), ("--interpolate", steps))
            if v is not None
        ]
        if values.get("sync") and samples is None:
            raise XDomainError(
                "--sync shares the codes of --samples K across inputs; add --samples"
            )
        if not asked:
            return {}, {}
        if len(asked) > 1:
            raise XDomainError(f"give one of {', '.join(asked)}, not several")
        nz = self.cfg.nz
        g = torch.Generator().manual_seed(values.get("seed") or 0)
        if style is not None:
            return {"z": self.encode_style(ctx.read_reference(style, "--style")[None])[0]}, {}
        if steps is not None:
            z0, z1 = torch.randn(2, nz, generator=g)
            return {"z": self.interpolate_z(z0, z1, steps)}, {}
        if values.get("sync"):
            return {"z": torch.randn(samples, nz, generator=g)}, {}
        return {}, {"z": torch.randn(ctx.n_inputs, samples, nz, generator=g)}

    def outputs_per_input(
        self, *, target: Any = None, z: Any = None, alpha: Any = None, reverse: bool = False
    ) -> int:
        if isinstance(z, int) and not isinstance(z, bool):
            return max(1, z)
        return z.shape[-2] if isinstance(z, Tensor) and z.dim() >= 2 else 1

    @property
    def code_dim(self) -> int:
        """The size of one latent code z (`translate(x, z=...)`)."""
        return self.cfg.nz

    def _item_shape(self) -> tuple[int, ...]:
        s = self.spec
        return (s.channels, s.image_size, s.image_size)

    def generate(
        self, x: Tensor, *, target: Any = None, z: Any = None, alpha: Any = None
    ) -> Tensor:
        """x (B, C, H, W) -> (B, C, H, W) for one code per input (z None, (nz,)), else
        (B, K, C, H, W): K codes per input (z = K, (K, nz) the same for all, (B, K, nz)).
        G runs on `FORWARD_ROWS` (input, code) rows at a time: memory stays flat in K."""
        codes = self._codes(z, x.shape[0], x.device)  # (B, K, nz)
        k = codes.shape[1]
        xs = x[:, None].expand(-1, k, *x.shape[1:]).reshape(-1, *x.shape[1:])  # (B*K, C, H, W)
        zs = codes.reshape(-1, codes.shape[-1])  # (B*K, nz)
        rows = [
            self.G(xs[i : i + FORWARD_ROWS], zs[i : i + FORWARD_ROWS])
            for i in range(0, xs.shape[0], FORWARD_ROWS)
        ]
        y = torch.cat(rows).view(x.shape[0], k, *x.shape[1:])
        single = z is None or (isinstance(z, Tensor) and z.dim() == 1)
        return y[:, 0] if single else y

    def visualize(self, fixed: Batch, path: Any) -> None:
        """Rows: inputs, targets, G(a, E(b)), then G(a, z) for 4 random codes shared by all."""
        from xdomain.grid import save_grid

        a, b = fixed["a"], fixed["b"]
        g = torch.Generator().manual_seed(0)  # the same codes in every sample grid of a run
        z = torch.randn(4, self.cfg.nz, generator=g)
        rows = [a, b, self.translate(a, z=self.encode_style(b)[:, None])]
        save_grid([*rows, self.translate(a, z=z)], path)

    @classmethod
    def metrics(cls, kind: str) -> dict[str, str]:
        from xdomain.metrics import paired

        return paired.METRICS

    def evaluate(self, data: Any, cfg: Any) -> dict[str, float]:
        from xdomain.metrics.paired import evaluate_paired

        return evaluate_paired(self, data, cfg)
