"""The pix2pix/CycleGAN PatchGAN discriminator (Isola et al. 2017).

Layer for layer the `NLayerDiscriminator` of junyanz/pytorch-CycleGAN-and-pix2pix
(`models/networks.py`), so its checkpoints load through
`xdomain.convert.junyanz.patch_discriminator`, with readable module names:

    stem      conv 4x4 s2 (in -> ndf), LeakyReLU(0.2)               (B, ndf, H/2, W/2)
    downs.k   conv 4x4 s2, norm, LeakyReLU(0.2), k = 0..n_layers-2  halves H, W each
    refine    conv 4x4 s1, norm, LeakyReLU(0.2)                     one pixel smaller
    head      conv 4x4 s1 (-> 1): one logit per patch               one pixel smaller again

Widths are ndf * min(2**n, 8). With n_layers=3 every logit sees a 70x70 input patch; a 64x64
input gives a (B, 1, 6, 6) map. Weights keep PyTorch's default init; the reference trains from
`xdomain.nn.blocks.init_weights(net, 0.02)`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import Tensor, nn

from xdomain.nn.blocks import get_norm

PatchNorm = Literal["instance", "batch"]


def _conv_block(c_in: int, c_out: int, stride: int, norm: str | None) -> nn.Sequential:
    """conv 4x4 (padding 1) -> [norm] -> LeakyReLU(0.2), named `conv`, `norm`, `act`.

    The conv has a bias unless a batch norm follows (its shift makes the bias redundant; the
    reference keeps the bias before instance norm, and so do we, for its checkpoints).
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv"] = nn.Conv2d(c_in, c_out, 4, stride, 1, bias=norm != "batch")
    if norm is not None:
        layers["norm"] = get_norm(norm, c_out)
    layers["act"] = nn.LeakyReLU(0.2, inplace=True)
    return nn.Sequential(layers)


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) -> (B, 1, h, w) patch logits (no sigmoid: the loss applies it)."""

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: PatchNorm = "instance",
    ) -> None:
        super().__init__()
        if norm not in ("instance", "batch"):
            raise ValueError(f"unknown norm '{norm}'; valid: instance, batch")
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        widths = [ndf * min(2**n, 8) for n in range(n_layers + 1)]
        self.stem = _conv_block(in_channels, ndf, 2, None)
        self.downs = nn.Sequential(
            *(_conv_block(widths[n - 1], widths[n], 2, norm) for n in range(1, n_layers))
        )
        self.refine = _conv_block(widths[max(n_layers - 1, 0)], widths[-1], 1, norm)
        self.head = nn.Sequential(OrderedDict(conv=nn.Conv2d(widths[-1], 1, 4, 1, 1)))

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)  # (B, ndf, H/2, W/2)
        h = self.downs(h)  # (B, C, H/2^n_layers, W/2^n_layers)
        h = self.refine(h)  # k4 s1 p1: one pixel smaller, (B, C', h - 1, w - 1)
        return self.head(h)  # (B, 1, h - 2, w - 2)
