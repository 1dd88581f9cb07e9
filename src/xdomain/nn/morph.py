"""Morph-UGATIT's own parts (shoutOutYangJie/Morph-UGATIT, `models/s_ugatit_plus.py`).

Morph-UGATIT rebuilds U-GAT-IT around one generator for both directions, steered by a domain
code z: a mapping network turns z into a latent w, and every decoder AdaLIN reads its gamma and
beta from w (not from the image features). Layer for layer the official networks, so that
checkpoints load through `xdomain.convert.ugatit` (the reference fixtures cover all but the
generator, too large to store; its layout is checked against a re-built official one):

    MappingNetwork     z (B, 64) -> w (B, 256): PixelNorm, then n_layers x [Linear,
                       LeakyReLU(0.2) (not after the last), PixelNorm]
    MorphAdaLIN        AdaLIN whose gamma, beta are Linear(w) layers with bias; one scalar rho
                       used as clamp(rho - 0.1, 0, 1)
    LayerInstanceNorm  LIN with per-channel rho, gamma, beta; rho clamped to [0, 1] in forward
    MorphDiscriminator a local (stride 8) and a global (stride 32) PatchGAN branch in one
                       module, each with its own CAM; spectral norm everywhere but the 1x1 convs
    MorphGenerator     the one generator for both directions (`Generator`): encoder, CAM,
                       mapping network, AdaLIN residual blocks fed w, bilinear-upsampling decoder

Unlike U-GAT-IT the norms here add eps 1e-6 (not 1e-5) and clamp rho inside `forward`, so no
clipping step is needed after the optimiser. `domain_code` samples z the way the official
training does (+1 on the first half of z: translate into B; on the second half: into A).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xdomain.nn.ugatit import mix_instance_layer_norm, sn_conv_block

EPS = 1e-6


def pixel_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """x / sqrt(mean(x^2 over features) + eps): every latent row to unit RMS. (B, D) -> (B, D)."""
    return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z (B, in_features) -> w (B, dim), the StyleGAN-style mapping MLP (the official
    `MLP(z_dim * 2, 256, 8)`): PixelNorm, then n_layers x [Linear, LeakyReLU(0.2), PixelNorm]
    with no LeakyReLU after the last Linear. Every row of w has unit RMS."""

    def __init__(self, in_features: int = 64, dim: int = 256, n_layers: int = 8) -> None:
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"n_layers must be >= 2, got {n_layers}")
        first = nn.Linear(in_features, dim)
        self.fcs = nn.ModuleList([first, *(nn.Linear(dim, dim) for _ in range(n_layers - 1))])
        self.act = nn.LeakyReLU(0.2)

    def forward(self, z: Tensor) -> Tensor:
        w = pixel_norm(z)  # (B, in_features)
        last = len(self.fcs) - 1
        for i, fc in enumerate(self.fcs):
            w = fc(w)  # (B, dim)
            w = pixel_norm(w if i == last else self.act(w))
        return w


class MorphAdaLIN(nn.Module):
    """AdaLIN driven by the mapped latent: (x (B, C, H, W), w (B, z_dim)) -> (B, C, H, W), with
    C == z_dim (the official layer views gamma(w) as (B, C, 1, 1), so the generator's bottleneck
    width must equal the latent width, 256).

    out = gamma(w) * (r IN(x) + (1 - r) LN(x)) + beta(w), r = clamp(rho - 0.1, 0, 1) for ONE
    learned scalar rho (initialised to 1, so r starts at 0.9 like U-GAT-IT's per-channel rho).
    """

    def __init__(self, z_dim: int = 256, w_dim: int | None = None) -> None:
        super().__init__()
        w_dim = z_dim if w_dim is None else w_dim  # the latent's width (official: = z_dim)
        self.rho = nn.Parameter(torch.ones(1))
        self.gamma = nn.Linear(w_dim, z_dim)
        self.beta = nn.Linear(w_dim, z_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        r = torch.clamp(self.rho - 0.1, 0.0, 1.0)  # (1,), broadcast over (B, C, H, W)
        out = mix_instance_layer_norm(x, r, EPS)
        return out * self.gamma(w)[:, :, None, None] + self.beta(w)[:, :, None, None]


class LayerInstanceNorm(nn.Module):
    """(r IN(x) + (1 - r) LN(x)) * gamma + beta with per-channel r = clamp(rho, 0, 1), rho,
    gamma, beta of shape (1, C, 1, 1) starting at 0, 1, 0 (pure layer norm).
    (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.rho = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = mix_instance_layer_norm(x, torch.clamp(self.rho, 0.0, 1.0), EPS)
        return out * self.gamma + self.beta


class MorphCAM(nn.Module):
    """Morph-UGATIT's CAM: one weight vector (C, 1) and a scalar `cam_bias`.

    logits = [GAP(x) @ W + b, GMP(x) @ W + b] (B, 2). Both attention maps are x * (W + b) per
    channel, i.e. the SAME map twice (the official code weights both by the pooled-agnostic
    vector); concatenated they pass a 1x1 conv + LeakyReLU(slope). The discriminator
    (slope 0.2) wraps the whole module in spectral norm, so W is the normalised weight in both
    places; the generator (`cam_w`, `cam_bias`, slope 0: a plain ReLU) uses it unwrapped.
    """

    def __init__(self, channels: int, slope: float = 0.2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1))
        self.cam_bias = nn.Parameter(torch.zeros(1))
        nn.init.xavier_uniform_(self.weight)
        act = nn.LeakyReLU(slope) if slope else nn.ReLU()
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 1), act)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> (features (B, C, h, w), logits (B, 2))."""
        w: Tensor = self.weight  # (C, 1), set by the spectral-norm hook when wrapped
        gap = F.adaptive_avg_pool2d(x, 1).flatten(1) @ w + self.cam_bias  # (B, 1)
        gmp = F.adaptive_max_pool2d(x, 1).flatten(1) @ w + self.cam_bias  # (B, 1)
        weighted = x * (w + self.cam_bias).view(1, -1, 1, 1)  # (B, C, h, w)
        h = self.fuse(torch.cat([weighted, weighted], 1))  # (B, 2C, h, w) -> (B, C, h, w)
        return h, torch.cat([gap, gmp], 1)


class MorphBranch(nn.Module):
    """One PatchGAN branch of `MorphDiscriminator`: `n_convs - 1` stride-2 convs, one stride-1
    conv (widths ndf * 2**k), the CAM, and a head conv 4x4 s1 (-> 1, with bias).
    (B, in, H, W) -> (patch logits (B, 1, H / 2**(n_convs - 1) - 2, ...), cam logits (B, 2))."""

    def __init__(self, in_channels: int, ndf: int, n_convs: int) -> None:
        super().__init__()
        widths = [ndf * 2**k for k in range(n_convs - 1)]
        self.downs = nn.Sequential(
            *(
                sn_conv_block(in_channels if k == 0 else widths[k - 1], widths[k], 2)
                for k in range(n_convs - 1)
            )
        )
        c = 2 * widths[-1]
        self.refine = sn_conv_block(widths[-1], c, 1)
        self.cam = nn.utils.spectral_norm(MorphCAM(c))
        self.head = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(1),
                conv=nn.utils.spectral_norm(nn.Conv2d(c, 1, 4)),
            )
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.refine(self.downs(x))  # (B, C, ., .)
        h, logits = self.cam(h)
        return self.head(h), logits


class MorphDiscriminator(nn.Module):
    """(B, in_channels, H, W) -> (local logits, local CAM logits (B, 2), global logits,
    global CAM logits (B, 2)).

    The global branch has n_blocks convs (stride 32 for the default 6, needs H >= 128); the
    local one n_blocks - 2 (stride 8). A 128x128 input gives 14x14 local and 2x2 global maps.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_blocks: int = 6) -> None:
        super().__init__()
        if n_blocks < 4:
            raise ValueError(f"n_blocks must be >= 4, got {n_blocks}")
        self.local_branch = MorphBranch(in_channels, ndf, n_blocks - 2)
        self.global_branch = MorphBranch(in_channels, ndf, n_blocks)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        local_x, local_class = self.local_branch(x)
        global_x, global_class = self.global_branch(x)
        return local_x, local_class, global_x, global_class


# ------------------------------------------------------------------------------ generator


def domain_code(
    batch: int,
    target: Literal["A", "B"],
    z_dim: int = 32,
    generator: torch.Generator | None = None,
    noise: float = 0.2,
    device: torch.device | str | None = None,
) -> Tensor:
    """A domain code z (B, 2 * z_dim) as the official training samples it: randn * noise, plus 1
    on the FIRST z_dim entries to translate into domain B (A -> B, and B -> B for the identity
    loss) or on the LAST z_dim entries to translate into domain A.

    `generator` is a `torch.Generator` for reproducible draws (on `device`).
    """
    if target not in ("A", "B"):
        raise ValueError(f"target must be 'A' or 'B', got {target!r}")
    z = torch.randn(batch, 2 * z_dim, generator=generator, device=device) * noise
    # the official code marks "towards B" on the first half (`z[:, :z_dim] += 1`)
    half = slice(0, z_dim) if target == "B" else slice(z_dim, 2 * z_dim)
    z[:, half] += 1
    return z


class MorphEncoderBlock(nn.Module):
    """x + [pad, conv 3x3, IN, ReLU, pad, conv 3x3, IN](x) with biased convs and AFFINE instance
    norms (unlike U-GAT-IT's): (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.norm1 = nn.InstanceNorm2d(channels, affine=True)
        self.act = nn.ReLU()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.norm2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(self.pad1(x))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class MorphDecoderBlock(nn.Module):
    """x + [pad, conv 3x3, AdaLIN(w), ReLU, pad, conv 3x3, AdaLIN(w)](x), biased convs:
    ((B, C, H, W), w (B, w_dim)) -> (B, C, H, W). Both norms read the same w."""

    def __init__(self, channels: int, w_dim: int | None = None) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.norm1 = MorphAdaLIN(channels, w_dim)
        self.act = nn.ReLU()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.norm2 = MorphAdaLIN(channels, w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(self.pad1(x)), w))
        return x + self.norm2(self.conv2(self.pad2(h)), w)


def _morph_down(c_in: int, c_out: int) -> nn.Sequential:
    """Conv 3x3 s2 with ZERO padding 1 (the official encoder does not reflect here), affine IN,
    ReLU: (B, c_in, H, W) -> (B, c_out, ceil(H/2), ceil(W/2))."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
            norm=nn.InstanceNorm2d(c_out, affine=True),
            act=nn.ReLU(),
        )
    )


def _morph_conv_lin(c_in: int, c_out: int, *, upsample: bool) -> nn.Sequential:
    """[bilinear x2,] reflect-pad 1, conv 3x3, LayerInstanceNorm, ReLU. The upsampling uses
    align_corners=True, which is what the official `nn.UpsamplingBilinear2d` does (the
    functional default, False, samples other points and would not reproduce checkpoints)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if upsample:
        layers["up"] = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    layers["pad"] = nn.ReflectionPad2d(1)
    layers["conv"] = nn.Conv2d(c_in, c_out, 3)
    layers["norm"] = LayerInstanceNorm(c_out)
    layers["act"] = nn.ReLU()
    return nn.Sequential(layers)


class MorphGenerator(nn.Module):
    """Morph-UGATIT's generator: (image (B, in, H, W) in [-1, 1], domain code z (B, 2 z_dim))
    -> (image (B, out, H, W) in [-1, 1], cam_logit (B, 2), encoder features e (B, C, H/4, W/4)),
    C = 4 ngf, H and W multiples of 4. For ngf = g:

        stem            reflect-pad 3, conv 7x7 (in -> g), affine IN, ReLU        (B, g, H, W)
        down1, down2    conv 3x3 s2 (zero pad), affine IN, ReLU                   (B, C, H/4, W/4)
        encoder_blocks  n_blocks x [x + (pad, conv, IN, ReLU, pad, conv, IN)(x)]  -> e
        cam             `MorphCAM` (logits from e; the fused map feeds the decoder), ReLU
        mapping         `MappingNetwork` z (B, 2 z_dim) -> w (B, C), 8 layers (mapping=False:
                        w = z, the AdaLIN layers read z directly)
        decoder_blocks  n_blocks x [x + (pad, conv, AdaLIN(w), ReLU, pad, conv, AdaLIN(w))(x)]
        up1, refine1    bilinear x2, conv 3x3 (C -> 2g), LIN, ReLU; conv 3x3, LIN, ReLU
        up2, refine2    the same, 2g -> g                                         (B, g, H, W)
        head            reflect-pad 3, conv 7x7 (g -> out), tanh

    Every decoder block reads the same w. The official AdaLIN is built for 256 channels and the
    mapping network for width 256, so the official net exists for ngf = 64 only; here both
    take the width 4 ngf, which lets small nets (ngf = 8) run on a CPU. Only ngf = 64 matches
    official checkpoints (`xdomain.convert.ugatit.morph_generator`).

    Morphing encodes once and decodes with several latents:
        e = g.encode(x); w_a, w_b = g.mapping(z_a), g.mapping(z_b)
        images = [g.decode(e, torch.lerp(w_a, w_b, t))[0] for t in ts]
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 4,
        z_dim: int = 32,
        mapping: bool = True,
        mapping_layers: int = 8,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.z_dim = z_dim
        c = 4 * ngf
        self.stem = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(3),
                conv=nn.Conv2d(in_channels, ngf, 7),
                norm=nn.InstanceNorm2d(ngf, affine=True),
                act=nn.ReLU(),
            )
        )
        self.down1 = _morph_down(ngf, 2 * ngf)
        self.down2 = _morph_down(2 * ngf, c)
        self.encoder_blocks = nn.Sequential(*(MorphEncoderBlock(c) for _ in range(n_blocks)))
        self.cam = MorphCAM(c, slope=0.0)
        # mapping=False (the Morph-UGATIT article's config B, no MLP): z itself is the latent
        # and feeds the AdaLIN layers' gamma/beta Linear layers directly
        self.mapping: nn.Module = (
            MappingNetwork(2 * z_dim, c, n_layers=mapping_layers) if mapping else nn.Identity()
        )
        w_dim = c if mapping else 2 * z_dim
        self.decoder_blocks = nn.ModuleList(MorphDecoderBlock(c, w_dim) for _ in range(n_blocks))
        self.up1 = _morph_conv_lin(c, 2 * ngf, upsample=True)
        self.refine1 = _morph_conv_lin(2 * ngf, 2 * ngf, upsample=False)
        self.up2 = _morph_conv_lin(2 * ngf, ngf, upsample=True)
        self.refine2 = _morph_conv_lin(ngf, ngf, upsample=False)
        self.head = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(3),
                conv=nn.Conv2d(ngf, out_channels, 7),
                act=nn.Tanh(),
            )
        )

    def encode(self, x: Tensor) -> Tensor:
        """Image (B, in, H, W) -> encoder features e (B, C, H/4, W/4) (the official
        `only_encoder=True` output, used by the identity-preserving loss)."""
        h, w = x.shape[-2:]
        if h % 4 or w % 4:
            # the zero-padded stride-2 convs round up and the decoder doubles exactly, so any
            # other size would come back larger than it went in
            raise ValueError(f"the Morph-UGATIT generator needs H, W multiples of 4, got {h}x{w}")
        f = self.down2(self.down1(self.stem(x)))  # (B, C, H/4, W/4)
        return self.encoder_blocks(f)

    def attend(self, e: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder features (B, C, h, w) -> (CAM-fused features (B, C, h, w), cam_logit (B, 2)).
        Independent of w: compute it once when decoding one image with several latents."""
        return self.cam(e)

    def synthesize(self, f: Tensor, w: Tensor) -> Tensor:
        """CAM-fused features (B, C, h, w) and latent w (B, C) -> image (B, out, 4h, 4w)."""
        for block in self.decoder_blocks:
            f = block(f, w)  # (B, C, h, w)
        f = self.refine1(self.up1(f))  # (B, 2g, 2h, 2w)
        f = self.refine2(self.up2(f))  # (B, g, 4h, 4w)
        return self.head(f)

    def decode(self, e: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder features e (B, C, h, w) and latent w (B, C) -> (image (B, out, 4h, 4w),
        cam_logit (B, 2))."""
        f, cam_logit = self.attend(e)
        return self.synthesize(f, w), cam_logit

    def forward(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(image (B, in, H, W), z (B, 2 z_dim)) -> (image, cam_logit (B, 2), e), as the
        official `forward(img, z)`; sample z with `domain_code`."""
        e = self.encode(x)
        image, cam_logit = self.decode(e, self.mapping(z))
        return image, cam_logit, e
