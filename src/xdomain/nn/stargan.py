"""StarGAN's generator and discriminator (Choi et al. 2018), layer for layer the `Generator` and
`Discriminator` of yunjey/stargan (`model.py`), so its checkpoints load through
`xdomain.convert.stargan` with the official module indices kept (`main.<i>`).

Generator, for c_dim labels (the label is tiled over the image and concatenated):

    main.0-2     conv 7x7 (C + c_dim -> d), IN, ReLU                 (B, d, H, W)
    main.3-8     2 x [conv 4x4 s2, IN, ReLU]                         (B, 4d, H/4, W/4)
    main.9..     repeat_num residual blocks (conv 3x3, IN, ReLU, conv 3x3, IN)
    then         2 x [conv-transpose 4x4 s2, IN, ReLU], conv 7x7 (-> C), tanh

Every norm is InstanceNorm2d(affine=True, track_running_stats=True), as the official: in eval
mode it normalises with running statistics (the official code never calls `eval()`, so its
samples use batch statistics; the StarGAN method, not written yet, must choose which).
No conv has a bias.

Discriminator (PatchGAN, no norm):

    main         repeat_num x [conv 4x4 s2 (bias), LeakyReLU(0.01)]  (B, d 2**(n-1), H/2**n, W/2**n)
    conv1        conv 3x3 (-> 1), no bias: D_src, one logit per patch
    conv2        conv with kernel H/2**n (-> c_dim), no bias: D_cls, (B, c_dim) label logits
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _norm(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=True, track_running_stats=True)


class ResidualBlock(nn.Module):
    """x + (conv 3x3, IN, ReLU, conv 3x3, IN)(x); official key layout `main.{0,1,3,4}`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
            _norm(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
            _norm(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.main(x)


class StarGenerator(nn.Module):
    """G(x, c): (B, C, H, W) in [-1, 1] and (B, c_dim) labels -> (B, C, H, W); H, W % 4 == 0."""

    def __init__(
        self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6, channels: int = 3
    ) -> None:
        super().__init__()
        self.c_dim = c_dim
        layers: list[nn.Module] = [
            nn.Conv2d(channels + c_dim, conv_dim, 7, 1, 3, bias=False),
            _norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        d = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), _norm(2 * d), nn.ReLU(True)]
            d *= 2
        layers += [ResidualBlock(d) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [
                nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False),
                _norm(d // 2),
                nn.ReLU(inplace=True),
            ]
            d //= 2
        layers += [nn.Conv2d(d, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        # tile c over the image: (B, c_dim) -> (B, c_dim, H, W), concatenated to the channels
        c = c.to(x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class StarDiscriminator(nn.Module):
    """(B, C, S, S) -> (D_src (B, 1, S/2**n, S/2**n) patch logits, D_cls (B, c_dim) logits)."""

    def __init__(
        self,
        image_size: int = 128,
        conv_dim: int = 64,
        c_dim: int = 5,
        repeat_num: int = 6,
        channels: int = 3,
    ) -> None:
        super().__init__()
        if image_size % 2**repeat_num:
            raise ValueError(
                f"image_size {image_size} is not divisible by 2**repeat_num = {2**repeat_num}"
            )
        layers: list[nn.Module] = [nn.Conv2d(channels, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        d = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(d, 2 * d, 4, 2, 1), nn.LeakyReLU(0.01)]
            d *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(d, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(d, c_dim, image_size // 2**repeat_num, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.main(x)
        out_cls = self.conv2(h)  # (B, c_dim, 1, 1)
        return self.conv1(h), out_cls.view(out_cls.size(0), out_cls.size(1))
