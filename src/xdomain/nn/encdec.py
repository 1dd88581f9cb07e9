"""DiscoGAN's encoder-decoder generator and feature-returning discriminator (Kim et al. 2017).

Layer for layer SKTBrain/DiscoGAN `discogan/model.py` (`Generator(extra_layers=False)` and
`Discriminator`) at 64x64, so its checkpoints load through `xdomain.convert.discogan`, with
readable module names and the depth generalised to the image size: `n_down = log2(size) - 2`
stride-2 convs take the image down to 4x4 (64 px: 4, the official net; 32 px: 3).

    down.0    conv 4x4 s2 (in -> w0), LeakyReLU(0.2)           no norm on the first layer
    down.k    conv 4x4 s2 (w_k-1 -> w_k), BatchNorm, LeakyReLU(0.2)
    up.k      conv-transpose 4x4 s2, BatchNorm, ReLU           mirrors down in reverse
    head      G: conv-transpose 4x4 s2 (w0 -> out), sigmoid or tanh
              D: conv 4x4 s1 p0 on the 4x4 map -> one logit

Widths w_k = base * 2**k (64, 128, 256, 512 for the official base 64), capped at 8 * base for
images above 64 px. Every conv is bias-free (BatchNorm's shift replaces it; the official layers
have no bias either, even the first and last). Weights keep PyTorch's default init, as the
reference does.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal

from torch import Tensor, nn


def disco_depth(image_size: int) -> int:
    """The number of stride-2 stages that take `image_size` down to 4: log2(size) - 2."""
    n = int(math.log2(image_size)) if image_size > 0 else 0
    if image_size < 8 or 2**n != image_size:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return n - 2


def disco_widths(n_down: int, base: int = 64) -> list[int]:
    """Channel widths after each down stage: base * 2**k, at most 8 * base."""
    return [base * 2 ** min(k, 3) for k in range(n_down)]


def _down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    """conv 4x4 s2 p1 -> [BatchNorm] -> LeakyReLU(0.2): (B, c_in, S, S) -> (B, c_out, S/2, S/2)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv"] = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)
    if norm:
        layers["norm"] = nn.BatchNorm2d(c_out)
    layers["act"] = nn.LeakyReLU(0.2, inplace=True)
    return nn.Sequential(layers)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """conv-transpose 4x4 s2 p1 -> BatchNorm -> ReLU: (B, c_in, S, S) -> (B, c_out, 2S, 2S)."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
            norm=nn.BatchNorm2d(c_out),
            act=nn.ReLU(inplace=True),
        )
    )


def _encoder(in_channels: int, widths: list[int]) -> nn.ModuleList:
    """The shared down path of G and D; a ModuleList so D can keep each stage's output."""
    chans = [in_channels, *widths]
    return nn.ModuleList(_down(chans[k], chans[k + 1], norm=k > 0) for k in range(len(widths)))


class DiscoGenerator(nn.Module):
    """(B, in_channels, S, S) -> (B, out_channels, S, S), S = image_size.

    `final="sigmoid"` is the official output for images in [0, 1]; `"tanh"` serves [-1, 1].
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: int = 64,
        base: int = 64,
        final: Literal["sigmoid", "tanh"] = "sigmoid",
    ) -> None:
        super().__init__()
        if final not in ("sigmoid", "tanh"):
            raise ValueError(f"unknown final activation '{final}'; valid: sigmoid, tanh")
        self.image_size = image_size
        widths = disco_widths(disco_depth(image_size), base)
        self.down = _encoder(in_channels, widths)
        self.up = nn.Sequential(
            *(_up(widths[k], widths[k - 1]) for k in range(len(widths) - 1, 0, -1))
        )
        self.head = nn.Sequential(
            OrderedDict(
                conv=nn.ConvTranspose2d(widths[0], out_channels, 4, 2, 1, bias=False),
                act=nn.Sigmoid() if final == "sigmoid" else nn.Tanh(),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for stage in self.down:
            h = stage(h)  # halves S; after the last stage (B, w_last, 4, 4)
        h = self.up(h)  # (B, w0, S/2, S/2)
        return self.head(h)  # (B, out, S, S)


class DiscoDiscriminator(nn.Module):
    """(B, in_channels, S, S) -> (logits (B,), [feat_1, ..., feat_k]).

    The features are the activations after each batch-normed stage (`down.1` ...; the official
    relu2, relu3, relu4 at 64 px), which DiscoGAN's feature-matching loss compares. The official
    network returns sigmoid(logit) as (B, 1, 1, 1); we keep the logit for BCE-with-logits.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 64, base: int = 64) -> None:
        super().__init__()
        self.image_size = image_size
        widths = disco_widths(disco_depth(image_size), base)
        self.down = _encoder(in_channels, widths)
        # a 4x4 kernel without padding over the 4x4 map: one logit per image
        self.head = nn.Sequential(OrderedDict(conv=nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        feats: list[Tensor] = []
        h = x
        for k, stage in enumerate(self.down):
            # the in-place LeakyReLU is the stage's last op, and the next stage starts with a
            # conv (not in place), so the kept feature is never overwritten
            h = stage(h)  # (B, w_k, S / 2^(k+1), S / 2^(k+1))
            if k > 0:
                feats.append(h)
        logits = self.head(h)  # (B, 1, 1, 1)
        return logits.flatten(), feats  # (B,)
