"""U-Net generators: pix2pix's `UnetGenerator` (Isola et al. 2017) and BicycleGAN's U-Nets that
take a latent code z (Zhu et al. 2017, `G_Unet_add_input` / `G_Unet_add_all`).

Layer for layer the official networks (junyanz/pytorch-CycleGAN-and-pix2pix and
junyanz/BicycleGAN, `models/networks.py`), so their checkpoints load through
`xdomain.convert.bicyclegan`. The official code nests one skip block inside the next; here the
same layers sit flat, one entry per level i = 0 (outermost) .. num_downs - 1 (innermost):

    downs.i   [LeakyReLU(0.2)] -> conv 4x4 s2 p1 -> [norm]     (B, C, H, W) -> (B, c_i, H/2, W/2)
    ups.i     ReLU -> up 2x -> [norm] -> [Dropout(0.5)]       (B, *, h, w) -> (B, c_{i-1}, 2h, 2w)
              (level 0: ReLU -> up 2x -> tanh, to out_channels)

with widths c_i = ngf * min(2**i, 8). Level 0's down has no activation and no norm, the
innermost down no norm, and level 0's up no norm. Each level but the outermost concatenates the
upsampled map with the level's skip, so ups.i (i < innermost) reads 2 c_i channels. A 2**num_downs
input reaches 1x1 at the bottleneck: unet_128 is num_downs=7, unet_256 num_downs=8. H and W must be
multiples of 2**num_downs.

Dropout, when asked for, sits in the up path of the ngf*8 levels 4 .. num_downs - 2 (the
num_downs - 5 middle blocks of the official code; never the innermost); it has no weights, so
checkpoints load either way.

Quirks kept from the official code:
- the skip is the *activated* level input LeakyReLU(x): the official blocks' in-place LeakyReLU
  overwrites x before it is concatenated. BicycleGAN's add_all blocks concatenate z first, so the
  in-place activation hits the copy and their skip is the raw x (z is activated with it). This
  only shows with `nl="lrelu"`: the ReLU that starts the next up path erases the difference;
- pix2pix concatenates [skip, up]; BicycleGAN [up, skip];
- pix2pix convs have a bias only with instance norm (the outermost up conv always has one);
  BicycleGAN convs always have one.

Weights keep PyTorch's default init; the official code trains from N(0, 0.02)
(`xdomain.nn.blocks.init_weights`; BicycleGAN's default is xavier with gain 0.02).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
from torch import Tensor, nn

from xdomain.errors import ConfigError
from xdomain.nn.blocks import get_norm

Pix2pixNorm = Literal["batch", "instance"]
BicycleNorm = Literal["instance", "batch", "none"]
WhereAdd = Literal["input", "all"]
Upsample = Literal["basic", "bilinear"]


def unet_widths(ngf: int, num_downs: int) -> list[int]:
    """Channels after each level's down conv: ngf, 2 ngf, 4 ngf, then 8 ngf."""
    return [ngf * min(2**i, 8) for i in range(num_downs)]


def dropout_levels(num_downs: int) -> range:
    """Levels whose up path ends in Dropout(0.5) when dropout is on: the ngf*8 middle levels."""
    return range(4, num_downs - 1)


def _check(num_downs: int, ngf: int, norm: str, norms: tuple[str, ...]) -> None:
    if norm not in norms:
        raise ValueError(f"unknown norm '{norm}'; valid: {', '.join(norms)}")
    if num_downs < 5:
        # the official layout always has the ngf, 2 ngf, 4 ngf, 8 ngf and innermost levels
        raise ValueError(f"num_downs must be >= 5, got {num_downs}")
    if ngf < 1:
        raise ValueError(f"ngf must be >= 1, got {ngf}")


def _check_size(x: Tensor, num_downs: int) -> None:
    h, w = x.shape[-2:]
    step = 2**num_downs
    if h % step or w % step:
        raise ValueError(
            f"input is {h}x{w}, but a U-Net with num_downs={num_downs} needs H and W that are"
            f" multiples of {step}; resize or crop the image (or use fewer levels)"
        )


class UnetDown(nn.Module):
    """One encoder level: act -> conv 4x4 s2 p1 -> norm (act and norm may be Identity).

    (B, C, H, W) -> (activated input (B, C, H, W), output (B, C', H/2, W/2)); the activated input
    is returned too because the official code's skip connection is that tensor.
    """

    def __init__(self, c_in: int, c_out: int, *, act: bool, norm: str, bias: bool) -> None:
        super().__init__()
        self.act: nn.Module = nn.LeakyReLU(0.2) if act else nn.Identity()
        self.conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias)
        self.norm = get_norm(norm, c_out)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a = self.act(x)
        return a, self.norm(self.conv(a))


def unet_up(
    c_in: int,
    c_out: int,
    *,
    act: str,
    norm: str,
    bias: bool,
    upsample: str = "basic",
    dropout: bool = False,
    outermost: bool = False,
) -> nn.Sequential:
    """One decoder level, (B, c_in, h, w) -> (B, c_out, 2h, 2w), with the names
    `act`, [`upsample`, `pad`], `conv`, [`norm`], [`dropout`] and, outermost, `tanh`.

    `upsample="basic"` is ConvTranspose2d(4, 2, 1); `"bilinear"` is BicycleGAN's
    Upsample(2, bilinear) -> ReflectionPad2d(1) -> conv 3x3.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["act"] = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)
    if upsample == "basic":
        layers["conv"] = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)
    elif upsample == "bilinear":
        layers["upsample"] = nn.Upsample(scale_factor=2, mode="bilinear")
        layers["pad"] = nn.ReflectionPad2d(1)
        layers["conv"] = nn.Conv2d(c_in, c_out, 3, bias=bias)
    else:
        raise ValueError(f"unknown upsample '{upsample}'; valid: basic, bilinear")
    if outermost:
        layers["tanh"] = nn.Tanh()
        return nn.Sequential(layers)
    if norm != "none":
        layers["norm"] = get_norm(norm, c_out)
    if dropout:
        layers["dropout"] = nn.Dropout(0.5)
    return nn.Sequential(layers)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: (B, in_channels, H, W) -> (B, out_channels, H, W) in [-1, 1] (tanh).

    `norm="batch"` (the pix2pix default) is BatchNorm2d with running stats; `"instance"` the
    official InstanceNorm2d without parameters or running stats. pix2pix trains (and, without
    `--eval`, tests) with `dropout=True`; the official files do not record it.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: Pix2pixNorm = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        _check(num_downs, ngf, norm, ("batch", "instance"))
        self.num_downs = num_downs
        bias = norm == "instance"  # a batch norm's shift makes a conv bias redundant
        widths = unet_widths(ngf, num_downs)
        inner = num_downs - 1
        downs = [UnetDown(in_channels, ngf, act=False, norm="none", bias=bias)]
        for i in range(1, num_downs):
            level_norm = "none" if i == inner else norm
            downs.append(UnetDown(widths[i - 1], widths[i], act=True, norm=level_norm, bias=bias))
        self.downs = nn.ModuleList(downs)
        ups = [unet_up(2 * ngf, out_channels, act="relu", norm="none", bias=True, outermost=True)]
        for i in range(1, num_downs):
            c_in = widths[i] if i == inner else 2 * widths[i]
            drop = dropout and i in dropout_levels(num_downs)
            ups.append(unet_up(c_in, widths[i - 1], act="relu", norm=norm, bias=bias, dropout=drop))
        self.ups = nn.ModuleList(ups)

    def forward(self, x: Tensor) -> Tensor:
        _check_size(x, self.num_downs)
        skips: list[Tensor] = []
        h = x
        for down in self.downs:
            a, h = down(h)  # a: the level input after LeakyReLU (identity at level 0)
            skips.append(a)
        # h: (B, 8 ngf, H / 2**num_downs, W / 2**num_downs), 1x1 for the intended size
        for i in reversed(range(1, self.num_downs)):
            h = torch.cat([skips[i], self.ups[i](h)], 1)  # [skip, up]: (B, 2 c_{i-1}, ...)
        return self.ups[0](h)  # (B, out, H, W)


class UnetZGenerator(nn.Module):
    """BicycleGAN's U-Net with a latent code: forward(x (B, in, H, W), z (B, nz)) ->
    (B, out_channels, H, W) in [-1, 1].

    z is tiled to (B, nz, h, w) and concatenated after the map it joins: with
    `where_add="input"` (G_Unet_add_input) only to the image, so downs.0 reads in + nz channels;
    with `"all"` (G_Unet_add_all, the BicycleGAN default) to the input of every level, so every
    down conv reads its usual channels + nz. nz=0 gives a plain conditional U-Net (z is then
    ignored and may be omitted). `nl` is the up-path activation; the down path always uses
    LeakyReLU(0.2). `norm="none"` drops every norm layer.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        nz: int = 8,
        num_downs: int = 8,
        ngf: int = 64,
        norm: BicycleNorm = "instance",
        nl: Literal["relu", "lrelu"] = "relu",
        dropout: bool = False,
        where_add: WhereAdd = "input",
        upsample: Upsample = "basic",
    ) -> None:
        super().__init__()
        _check(num_downs, ngf, norm, ("instance", "batch", "none"))
        if nl not in ("relu", "lrelu"):
            raise ValueError(f"unknown nl '{nl}'; valid: relu, lrelu")
        if where_add not in ("input", "all"):
            raise ValueError(f"unknown where_add '{where_add}'; valid: input, all")
        if upsample not in ("basic", "bilinear"):
            raise ValueError(f"unknown upsample '{upsample}'; valid: basic, bilinear")
        if nz < 0:
            raise ValueError(f"nz must be >= 0, got {nz}")
        self.nz, self.num_downs, self.where_add = nz, num_downs, where_add
        widths = unet_widths(ngf, num_downs)
        inner = num_downs - 1
        z_at = [nz if (where_add == "all" or i == 0) else 0 for i in range(num_downs)]
        downs = [UnetDown(in_channels + z_at[0], ngf, act=False, norm="none", bias=True)]
        for i in range(1, num_downs):
            level_norm = "none" if i == inner else norm
            c_in = widths[i - 1] + z_at[i]
            downs.append(UnetDown(c_in, widths[i], act=True, norm=level_norm, bias=True))
        self.downs = nn.ModuleList(downs)
        ups = [
            unet_up(
                2 * ngf,
                out_channels,
                act=nl,
                norm="none",
                bias=True,
                upsample=upsample,
                outermost=True,
            )
        ]
        for i in range(1, num_downs):
            c_in = widths[i] if i == inner else 2 * widths[i]
            drop = dropout and i in dropout_levels(num_downs)
            ups.append(
                unet_up(
                    c_in,
                    widths[i - 1],
                    act=nl,
                    norm=norm,
                    bias=True,
                    upsample=upsample,
                    dropout=drop,
                )
            )
        self.ups = nn.ModuleList(ups)

    def _with_z(self, h: Tensor, z: Tensor | None) -> Tensor:
        if not self.nz:
            return h
        assert z is not None
        b, _, height, width = h.shape
        return torch.cat([h, z.view(b, self.nz, 1, 1).expand(b, self.nz, height, width)], 1)

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        _check_size(x, self.num_downs)
        if self.nz and (z is None or z.dim() != 2 or z.shape != (x.shape[0], self.nz)):
            got = None if z is None else tuple(z.shape)
            raise ValueError(f"z must have shape ({x.shape[0]}, {self.nz}), got {got}")
        skips: list[Tensor] = []
        h = x
        for i, down in enumerate(self.downs):
            if i == 0 or self.where_add == "all":
                hz = self._with_z(h, z)  # (B, C + nz, h, w)
                a, out = down(hz)
                # z joined a copy, so the in-place activation of the official code missed h
                skips.append(h if hz is not h else a)
            else:
                a, out = down(h)
                skips.append(a)  # the official in-place LeakyReLU overwrote the skip
            h = out
        for i in reversed(range(1, self.num_downs)):
            h = torch.cat([self.ups[i](h), skips[i]], 1)  # [up, skip]: (B, 2 c_{i-1}, ...)
        return self.ups[0](h)  # (B, out, H, W)


def check_unet_size(image_size: int, num_downs: int) -> None:
    """A U-Net halves its input `num_downs` times down to 1x1: the size must be 2**num_downs."""
    if image_size != 2**num_downs:
        hint = max(1, image_size.bit_length() - 1)
        raise ConfigError(
            f"model.num_downs={num_downs} takes {2**num_downs} px images, data.image_size is"
            f" {image_size}; set model.num_downs={hint} (a U-Net halves the image down to 1x1)"
            if 2**hint == image_size
            else f"data.image_size={image_size} is not a power of two; a U-Net with"
            f" model.num_downs={num_downs} takes {2**num_downs} px images"
        )
