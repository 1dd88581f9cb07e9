"""The CycleGAN ResNet generator (Zhu et al. 2017; Johnson et al. 2016's transfer network).

Layer for layer the `ResnetGenerator` of junyanz/pytorch-CycleGAN-and-pix2pix
(`models/networks.py`, reflection padding), so its checkpoints load through
`xdomain.convert.junyanz.resnet_generator`, but with readable module names:

    stem      reflect-pad 3, conv 7x7 (in -> ngf), norm, ReLU       (B, ngf, H, W)
    down1     conv 3x3 s2 (ngf -> 2 ngf), norm, ReLU                (B, 2ngf, H/2, W/2)
    down2     conv 3x3 s2 (2 ngf -> 4 ngf), norm, ReLU              (B, 4ngf, H/4, W/4)
    blocks.i  x + [pad, conv1, norm1, ReLU, (dropout), pad, conv2, norm2](x)
    up1, up2  conv-transpose 3x3 s2 (output_padding 1), norm, ReLU  (B, ngf, H, W)
    head      reflect-pad 3, conv 7x7 (ngf -> out), tanh

Unlike the official network, `forward` takes any H and W: the input is reflect-padded up to a
multiple of 4 (the two stride-2 stages) and the output cropped back, so a 300x451 photo comes out
300x451. Weights are left at PyTorch's default init; CycleGAN trains from
`xdomain.nn.blocks.init_weights(net, 0.02)`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from xdomain.nn.blocks import get_norm

ResnetNorm = Literal["instance", "batch"]


def _check_norm(norm: str) -> None:
    # "none" is not offered: the official code then drops every conv bias, a net nobody trains
    if norm not in ("instance", "batch"):
        raise ValueError(f"unknown norm '{norm}'; valid: instance, batch")


def _conv_norm_relu(conv: nn.Module, norm: str, channels: int, pad: int = 0) -> nn.Sequential:
    """[reflect-pad] -> conv -> norm -> ReLU, with the names `pad`, `conv`, `norm`, `act`."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if pad:
        layers["pad"] = nn.ReflectionPad2d(pad)
    layers["conv"] = conv
    layers["norm"] = get_norm(norm, channels)
    layers["act"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class ResnetBlock(nn.Module):
    """x + F(x) with F = pad, conv 3x3, norm, ReLU, [dropout 0.5], pad, conv 3x3, norm.

    (B, C, H, W) -> (B, C, H, W). No activation after the sum, as in the reference.
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        bias = norm == "instance"  # a batch norm's shift makes a conv bias redundant
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=bias)
        self.norm1 = get_norm(norm, channels)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=bias)
        self.norm2 = get_norm(norm, channels)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(self.pad1(x))))
        h = self.norm2(self.conv2(self.pad2(self.dropout(h))))
        return x + h


class ResnetGenerator(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1], any H, W >= 5
    (the residual blocks reflect-pad the H/4 x W/4 map, which needs 2 pixels a side).

    `norm="instance"` is the reference's InstanceNorm2d without affine parameters or running
    stats; convs before it have a bias (the official `use_bias`), convs before `batch` have none;
    the output conv always has one.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: ResnetNorm = "instance",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        bias = norm == "instance"
        self.stem = _conv_norm_relu(nn.Conv2d(in_channels, ngf, 7, bias=bias), norm, ngf, pad=3)
        self.down1 = _conv_norm_relu(
            nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1, bias=bias), norm, 2 * ngf
        )
        self.down2 = _conv_norm_relu(
            nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1, bias=bias), norm, 4 * ngf
        )
        self.blocks = nn.Sequential(*(ResnetBlock(4 * ngf, norm, dropout) for _ in range(n_blocks)))
        # output_padding=1 makes each stage exactly double H and W
        self.up1 = _conv_norm_relu(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1, bias=bias),
            norm,
            2 * ngf,
        )
        self.up2 = _conv_norm_relu(
            nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1, bias=bias), norm, ngf
        )
        self.head = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(3),
                conv=nn.Conv2d(ngf, out_channels, 7),
                act=nn.Tanh(),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        # two stride-2 stages: pad bottom/right to a multiple of 4 so the up path lands on the
        # padded size exactly, then crop; reflection (not zeros) keeps the border statistics
        # the network saw in training
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")  # (B, C, H + ph, W + pw)
        y = self.stem(x)  # (B, ngf, H', W')
        y = self.down2(self.down1(y))  # (B, 4ngf, H'/4, W'/4)
        y = self.blocks(y)
        y = self.up2(self.up1(y))  # (B, ngf, H', W')
        y = self.head(y)  # (B, out, H', W')
        return y[..., :h, :w]
