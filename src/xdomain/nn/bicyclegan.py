"""BicycleGAN's encoders and multi-scale discriminator (Zhu et al. 2017).

Layer for layer `E_ResNet`, `E_NLayers` and `D_NLayersMulti` of junyanz/BicycleGAN
(`models/networks.py`), so their checkpoints load through `xdomain.convert.bicyclegan`, with
readable module names. The generator is `xdomain.nn.unet.UnetZGenerator`.

`ResnetEncoder` (E_ResNet; resnet_128: n_blocks=4 at 128 px, resnet_256: n_blocks=5 at 256 px):

    stem       conv 4x4 s2 p1 (in -> ndf)                              (B, ndf, H/2, W/2)
    blocks.k   ResidualDownBlock, k = 0 .. n_blocks-2: widths
               ndf * min(4, k+1) -> ndf * min(4, k+2), halves H, W      (B, C, H/2^(k+2), ...)
    act, pool  LeakyReLU(0.2), AvgPool2d(8): the map must be 8x8 here   (B, C, 1, 1)
    fc_mu      Linear(C -> nz): mu
    fc_logvar  Linear(C -> nz): log variance (vae_like only)

`NLayerEncoder` (E_NLayers; conv_128: n_layers=4, conv_256: n_layers=5):

    stem       conv 4x4 s2 p1 (in -> ndf), act                          (B, ndf, H/2, W/2)
    downs.k    conv 4x4 s2 p1, [norm], act; widths ndf * min(2**(k+1), 4)
    pool       AvgPool2d(8), then fc_mu / fc_logvar as above

`MultiScaleDiscriminator` (D_NLayersMulti): `scales.i` is a `PatchDiscriminator` of width
round(ndf / 2**i) that sees the input average-pooled i times by
AvgPool2d(3, stride 2, padding 1, count_include_pad=False); forward returns the list of the
num_d patch-logit maps, finest first.

Weights keep PyTorch's default init; BicycleGAN trains from xavier (gain 0.02) by default.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import Tensor, nn

from xdomain.nn.blocks import get_norm
from xdomain.nn.patchgan import PatchDiscriminator

EncoderNorm = Literal["instance", "batch", "none"]
Nonlinearity = Literal["lrelu", "relu"]


def _act(nl: str) -> nn.Module:
    if nl == "lrelu":
        return nn.LeakyReLU(0.2)
    if nl == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown nl '{nl}'; valid: lrelu, relu")


def _check_norm(norm: str) -> None:
    if norm not in ("instance", "batch", "none"):
        raise ValueError(f"unknown norm '{norm}'; valid: instance, batch, none")


def _pooled_features(h: Tensor, what: str, size: str) -> Tensor:
    """(B, C, 1, 1) after the final AvgPool2d(8) -> (B, C); anything else is a wrong input size."""
    if h.shape[-2:] != (1, 1):
        raise ValueError(
            f"{what} needs a {size} input (an 8x8 map before its AvgPool2d(8)); the pooled map is"
            f" {h.shape[-2]}x{h.shape[-1]}: resize the image"
        )
    return h.flatten(1)


class ResidualDownBlock(nn.Module):
    """E_ResNet's BasicBlock: (B, C_in, H, W) -> (B, C_out, H/2, W/2),

        main      norm1, act1, conv1 3x3 (C_in -> C_in), norm2, act2, conv2 3x3 (-> C_out), pool 2
        shortcut  pool 2, conv 1x1 (C_in -> C_out)

    and their sum. All convs have a bias. Official quirk kept: with `norm="none"` the official
    in-place activation overwrites the block input, so the shortcut then sees act(x), not x.
    """

    def __init__(self, c_in: int, c_out: int, norm: str = "instance", nl: str = "lrelu") -> None:
        super().__init__()
        self.norm1 = get_norm(norm, c_in)
        self.act1 = _act(nl)
        self.conv1 = nn.Conv2d(c_in, c_in, 3, 1, 1)
        self.norm2 = get_norm(norm, c_in)
        self.act2 = _act(nl)
        self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.pool = nn.AvgPool2d(2, 2)
        self.shortcut_pool = nn.AvgPool2d(2, 2)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)
        self.shortcut_sees_act = norm == "none"

    def forward(self, x: Tensor) -> Tensor:
        a = self.act1(self.norm1(x))  # (B, C_in, H, W)
        h = self.conv1(a)
        h = self.pool(self.conv2(self.act2(self.norm2(h))))  # (B, C_out, H/2, W/2)
        skip = a if self.shortcut_sees_act else x
        return h + self.shortcut(self.shortcut_pool(skip))


class ResnetEncoder(nn.Module):
    """BicycleGAN's E_ResNet: (B, in_channels, H, W) -> (mu, logvar), each (B, nz), or mu alone
    when `vae_like=False`. H = W = 8 * 2**n_blocks (128 for n_blocks=4, 256 for 5)."""

    def __init__(
        self,
        in_channels: int = 3,
        nz: int = 8,
        ndf: int = 64,
        n_blocks: int = 4,
        norm: EncoderNorm = "instance",
        nl: Nonlinearity = "lrelu",
        vae_like: bool = True,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        _act(nl)
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        self.n_blocks, self.vae_like = n_blocks, vae_like
        self.stem = nn.Conv2d(in_channels, ndf, 4, 2, 1)
        widths = [ndf * min(4, n) for n in range(1, n_blocks + 1)]
        self.blocks = nn.Sequential(
            *(ResidualDownBlock(widths[k], widths[k + 1], norm, nl) for k in range(n_blocks - 1))
        )
        self.act = _act(nl)
        self.pool = nn.AvgPool2d(8)
        self.fc_mu = nn.Linear(widths[-1], nz)
        self.fc_logvar = nn.Linear(widths[-1], nz) if vae_like else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        h = self.blocks(self.stem(x))  # (B, C, 8, 8) for the intended input size
        size = f"{8 * 2**self.n_blocks}x{8 * 2**self.n_blocks}"
        f = _pooled_features(self.pool(self.act(h)), "ResnetEncoder", size)  # (B, C)
        mu = self.fc_mu(f)  # (B, nz)
        if self.fc_logvar is None:
            return mu
        return mu, self.fc_logvar(f)


class NLayerEncoder(nn.Module):
    """BicycleGAN's E_NLayers: (B, in_channels, H, W) -> (mu, logvar) or mu, each (B, nz);
    H = W = 8 * 2**n_layers (128 for n_layers=4, 256 for 5)."""

    def __init__(
        self,
        in_channels: int = 3,
        nz: int = 8,
        ndf: int = 64,
        n_layers: int = 4,
        norm: EncoderNorm = "instance",
        nl: Nonlinearity = "lrelu",
        vae_like: bool = True,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        _act(nl)
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers, self.vae_like = n_layers, vae_like
        widths = [ndf * min(2**n, 4) for n in range(n_layers)]
        self.stem = nn.Sequential(
            OrderedDict(conv=nn.Conv2d(in_channels, ndf, 4, 2, 1), act=_act(nl))
        )
        downs = []
        for n in range(1, n_layers):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            layers["conv"] = nn.Conv2d(widths[n - 1], widths[n], 4, 2, 1)
            if norm != "none":
                layers["norm"] = get_norm(norm, widths[n])
            layers["act"] = _act(nl)
            downs.append(nn.Sequential(layers))
        self.downs = nn.Sequential(*downs)
        self.pool = nn.AvgPool2d(8)
        self.fc_mu = nn.Linear(widths[-1], nz)
        self.fc_logvar = nn.Linear(widths[-1], nz) if vae_like else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        h = self.downs(self.stem(x))  # (B, C, H / 2**n_layers, W / 2**n_layers)
        size = f"{8 * 2**self.n_layers}x{8 * 2**self.n_layers}"
        f = _pooled_features(self.pool(h), "NLayerEncoder", size)  # (B, C)
        mu = self.fc_mu(f)
        if self.fc_logvar is None:
            return mu
        return mu, self.fc_logvar(f)


def scale_widths(ndf: int, num_d: int) -> list[int]:
    """The first-conv width of each scale, as the official int(round(ndf / 2**i)) (Python's
    round: halves go to the even neighbour)."""
    return [round(ndf / 2**i) for i in range(num_d)]


def _bicycle_patch(in_channels: int, ndf: int, n_layers: int, norm: str) -> PatchDiscriminator:
    """A `PatchDiscriminator` with D_NLayersMulti's differences: every conv has a bias (also
    before batch norm), and norm may be "none"."""
    net = PatchDiscriminator(in_channels, ndf, n_layers, "instance" if norm == "none" else norm)
    for block in [*net.downs, net.refine]:
        conv = block.conv
        if conv.bias is None:  # batch norm: PatchDiscriminator drops it, D_NLayersMulti does not
            donor = nn.Conv2d(conv.in_channels, conv.out_channels, 4, device=conv.weight.device)
            conv.bias = donor.bias
        if norm == "none":
            block.norm = nn.Identity()
    return net


class MultiScaleDiscriminator(nn.Module):
    """BicycleGAN's D_NLayersMulti: (B, in_channels, H, W) -> list of num_d patch-logit maps
    (B, 1, h_i, w_i), scale i on the input downsampled i times (no sigmoid).

    With n_layers=3 ("basic_256_multi") a 128x128 input gives 14x14 and 6x6 maps for num_d=2.
    num_d=1 returns a one-element list (the official net then returns the bare tensor). The
    official code builds no norm "none" discriminator (it calls the missing norm layer); here
    "none" drops the norm layers.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: EncoderNorm = "instance",
        num_d: int = 2,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1, got {num_d}")
        widths = scale_widths(ndf, num_d)
        if min(widths) < 1:
            raise ValueError(f"ndf={ndf} is too small for num_d={num_d} (width {min(widths)})")
        self.scales = nn.ModuleList(_bicycle_patch(in_channels, w, n_layers, norm) for w in widths)
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        out: list[Tensor] = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.down(x)  # (B, C, ceil(H / 2), ceil(W / 2))
            out.append(scale(x))
        return out
