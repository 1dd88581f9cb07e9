"""Morph-UGATIT's own parts (shoutOutYangJie/Morph-UGATIT, `models/s_ugatit_plus.py`).

Morph-UGATIT rebuilds U-GAT-IT around one generator for both directions, steered by a domain
code z: a mapping network turns z into a latent w, and every decoder AdaLIN reads its gamma and
beta from w (not from the image features). These are the parts the reference fixtures cover,
layer for layer the official ones so that checkpoints load through `xdomain.convert.ugatit`:

    MappingNetwork     z (B, 64) -> w (B, 256): PixelNorm, then n_layers x [Linear,
                       LeakyReLU(0.2) (not after the last), PixelNorm]
    MorphAdaLIN        AdaLIN whose gamma, beta are Linear(w) layers with bias; one scalar rho
                       used as clamp(rho - 0.1, 0, 1)
    LayerInstanceNorm  LIN with per-channel rho, gamma, beta; rho clamped to [0, 1] in forward
    MorphDiscriminator a local (stride 8) and a global (stride 32) PatchGAN branch in one
                       module, each with its own CAM; spectral norm everywhere but the 1x1 convs

Unlike U-GAT-IT the norms here add eps 1e-6 (not 1e-5) and clamp rho inside `forward`, so no
clipping step is needed after the optimiser.
"""

from __future__ import annotations

from collections import OrderedDict

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

    def __init__(self, z_dim: int = 256) -> None:
        super().__init__()
        self.rho = nn.Parameter(torch.ones(1))
        self.gamma = nn.Linear(z_dim, z_dim)
        self.beta = nn.Linear(z_dim, z_dim)

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
    """Morph-UGATIT's discriminator CAM: one weight vector (C, 1) and a scalar `cam_bias`.

    logits = [GAP(x) @ W + b, GMP(x) @ W + b] (B, 2). Both attention maps are x * (W + b) per
    channel, i.e. the SAME map twice (the official code weights both by the pooled-agnostic
    vector); concatenated they pass a 1x1 conv + LeakyReLU(0.2). The discriminator wraps the
    whole module in spectral norm, so W is the normalised weight in both places.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1))
        self.cam_bias = nn.Parameter(torch.zeros(1))
        nn.init.xavier_uniform_(self.weight)
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 1), nn.LeakyReLU(0.2))

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
