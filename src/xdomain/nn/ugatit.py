"""U-GAT-IT's generator and discriminator (Kim, Kim, Kang, Lee, ICLR 2020).

Layer for layer the `ResnetGenerator` and `Discriminator` of znxlwm/UGATIT-pytorch
(`networks.py`), so its checkpoints load through `xdomain.convert.ugatit`, with readable module
names. Generator, for ngf = g and C = 4g:

    stem            reflect-pad 3, conv 7x7 (in -> g), IN, ReLU          (B, g, H, W)
    down1, down2    reflect-pad 1, conv 3x3 s2, IN, ReLU                 (B, C, H/4, W/4)
    encoder_blocks  x + [pad, conv, IN, ReLU, pad, conv, IN](x)
    cam             class activation map: GAP/GMP logits (source vs target) whose weights
                    re-weight the channels; 1x1 conv + ReLU fuses both maps -> heatmap
    style           MLP -> per-channel gamma, beta (B, C) for AdaLIN
    decoder_blocks  x + [pad, conv, AdaLIN, ReLU, pad, conv, AdaLIN](x)
    up1, up2        nearest upsample x2, reflect-pad 1, conv 3x3, LIN, ReLU  (B, g, H, W)
    head            reflect-pad 3, conv 7x7 (g -> out), tanh

Every conv is bias-free except the CAM's 1x1 fuse conv, and the IN layers have no parameters,
as in the reference. `light=False` feeds the whole flattened (C, H/4, W/4) map to the style MLP,
so that variant only accepts `img_size` x `img_size` inputs; `light=True` pools it first and
takes any size (padded to a multiple of 4 and cropped back, like `ResnetGenerator`).

Discriminator (spectral norm on every conv and on the CAM's linear layers):

    downs.k         reflect-pad 1, conv 4x4 s2, LeakyReLU(0.2)       n_layers - 2 of them
    refine          reflect-pad 1, conv 4x4 s1, LeakyReLU(0.2)       one pixel smaller
    cam             as in G, with LeakyReLU(0.2)
    head            reflect-pad 1, conv 4x4 s1 (-> 1), no bias       one pixel smaller again

The method uses two per domain: a global one (n_layers=7) and a local one (n_layers=5).
Weights keep PyTorch's default init, as the reference does.

`cam=False` on either network is the paper's "U-GAT-IT w/o CAM" ablation (its Table/Fig. 4):
no CAM module at all, `cam_logit` is None, and the heatmap is the plain channel sum of the
features at the same place, so samples still show where the activations are.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ------------------------------------------------------------------------------ norms


def mix_instance_layer_norm(x: Tensor, rho: Tensor, eps: float) -> Tensor:
    """rho * IN(x) + (1 - rho) * LN(x), both without affine parameters.

    Both statistics use the UNBIASED variance (`torch.var`'s default) with `eps` added inside
    the square root, as the reference does; the biased variance would differ by a factor
    n / (n - 1), visible on the small maps of a reduced network.
    """
    in_mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    in_var = x.var(dim=(2, 3), keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    ln_mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    ln_var = x.var(dim=(1, 2, 3), keepdim=True)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return rho * out_in + (1 - rho) * out_ln


class AdaLIN(nn.Module):
    """Adaptive layer-instance norm: gamma * (rho IN + (1 - rho) LN) + beta, with gamma and
    beta (B, C) given per sample (from the style MLP) and a learned per-channel rho.

    rho starts at 0.9 (mostly instance norm, the paper's choice for the residual blocks) and
    is kept in [0, 1] by `UGATITGenerator.clip_rho` after each optimiser step, not here.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), 0.9))

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        out = mix_instance_layer_norm(x, self.rho, self.eps)  # (B, C, H, W)
        return out * gamma[:, :, None, None] + beta[:, :, None, None]


class LIN(nn.Module):
    """Layer-instance norm with its own learned gamma and beta, used in the up-sampling path.

    rho starts at 0 (pure layer norm); see `AdaLIN` for the clipping.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return mix_instance_layer_norm(x, self.rho, self.eps) * self.gamma + self.beta


# ------------------------------------------------------------------------------ blocks


class EncoderBlock(nn.Module):
    """x + [pad, conv 3x3, IN, ReLU, pad, conv 3x3, IN](x), bias-free convs:
    (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm1 = nn.InstanceNorm2d(channels)
        self.act = nn.ReLU(inplace=True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm2 = nn.InstanceNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(self.pad1(x))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class DecoderBlock(nn.Module):
    """x + [pad, conv 3x3, AdaLIN, ReLU, pad, conv 3x3, AdaLIN](x) with the style's gamma and
    beta: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm1 = AdaLIN(channels)
        self.act = nn.ReLU(inplace=True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm2 = AdaLIN(channels)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        h = self.act(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        return x + self.norm2(self.conv2(self.pad2(h)), gamma, beta)


class ClassActivationMap(nn.Module):
    """The CAM attention of U-GAT-IT's G and D.

    Global average and global max pooling each feed a bias-free Linear(C, 1), whose logits
    form `cam_logit` (B, 2). The same linear weights (1, C) then scale the feature channels,
    one copy per branch; a 1x1 conv fuses the two weighted maps back to C channels.

    With `spectral=True` (the discriminator) the linear layers are spectrally normalised for
    the logits, but the reference scales the channels by the RAW `weight_orig`
    (`list(fc.parameters())[0]`), and so do we: checkpoints trained that way expect it.
    """

    def __init__(self, channels: int, *, spectral: bool = False, slope: float = 0.0) -> None:
        super().__init__()
        self.spectral = spectral
        gap_fc = nn.Linear(channels, 1, bias=False)
        gmp_fc = nn.Linear(channels, 1, bias=False)
        if spectral:
            gap_fc = nn.utils.spectral_norm(gap_fc)
            gmp_fc = nn.utils.spectral_norm(gmp_fc)
        self.gap_fc = gap_fc
        self.gmp_fc = gmp_fc
        self.fuse = nn.Conv2d(2 * channels, channels, 1)
        self.act = nn.LeakyReLU(slope, inplace=True) if slope else nn.ReLU(inplace=True)

    def _channel_weight(self, fc: nn.Module) -> Tensor:
        """The (1, C, 1, 1) channel scale: the un-normalised weight, see the class docstring."""
        w = fc.weight_orig if self.spectral else fc.weight
        return w[:, :, None, None]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, C, h, w) -> (features (B, C, h, w), cam_logit (B, 2), heatmap (B, 1, h, w))."""
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).flatten(1))  # (B, 1)
        gmp_logit = self.gmp_fc(F.adaptive_max_pool2d(x, 1).flatten(1))  # (B, 1)
        cam_logit = torch.cat([gap_logit, gmp_logit], 1)  # (B, 2)
        weighted = torch.cat(
            [x * self._channel_weight(self.gap_fc), x * self._channel_weight(self.gmp_fc)], 1
        )  # (B, 2C, h, w)
        h = self.act(self.fuse(weighted))  # (B, C, h, w)
        heatmap = h.sum(dim=1, keepdim=True)  # (B, 1, h, w)
        return h, cam_logit, heatmap


class StyleHead(nn.Module):
    """Features (B, C, h, w) -> AdaLIN's gamma, beta (B, C) through two Linear + ReLU layers.

    `in_features` is C for the light variant (the map is average-pooled first) and C * h * w
    for the full one (the map is flattened, which ties the network to one input size).
    """

    def __init__(self, channels: int, in_features: int, *, pooled: bool) -> None:
        super().__init__()
        self.pooled = pooled
        self.fc1 = nn.Linear(in_features, channels, bias=False)
        self.fc2 = nn.Linear(channels, channels, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.gamma = nn.Linear(channels, channels, bias=False)
        self.beta = nn.Linear(channels, channels, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        v = F.adaptive_avg_pool2d(x, 1).flatten(1) if self.pooled else x.flatten(1)
        v = self.act(self.fc2(self.act(self.fc1(v))))  # (B, C)
        return self.gamma(v), self.beta(v)


def _up_stage(c_in: int, c_out: int) -> nn.Sequential:
    """Nearest upsample x2, reflect-pad 1, conv 3x3, LIN, ReLU: (B, c_in, h, w) ->
    (B, c_out, 2h, 2w). Upsample + conv instead of a transposed conv avoids checkerboards."""
    return nn.Sequential(
        OrderedDict(
            up=nn.Upsample(scale_factor=2, mode="nearest"),
            pad=nn.ReflectionPad2d(1),
            conv=nn.Conv2d(c_in, c_out, 3, bias=False),
            norm=LIN(c_out),
            act=nn.ReLU(inplace=True),
        )
    )


def sn_conv_block(c_in: int, c_out: int, stride: int, *, bias: bool = True) -> nn.Sequential:
    """Reflect-pad 1, spectrally normalised conv 4x4, LeakyReLU(0.2), named `pad`, `conv`,
    `act`. Stride 2 halves H and W; stride 1 takes one pixel off.

    The legacy `nn.utils.spectral_norm` (parameter `weight_orig`, buffers `weight_u`,
    `weight_v`) is used on purpose: it is what the reference used, so its checkpoints map key
    for key, and its u, v are plain buffers that a checkpoint restores.
    """
    conv = nn.Conv2d(c_in, c_out, 4, stride, bias=bias)
    return nn.Sequential(
        OrderedDict(
            pad=nn.ReflectionPad2d(1),
            conv=nn.utils.spectral_norm(conv),
            act=nn.LeakyReLU(0.2, inplace=True),
        )
    )


def _attend(cam: ClassActivationMap | None, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """The CAM step of G and D; without a CAM (the ablation) the features pass unchanged, with
    no logits and their channel sum as the heatmap."""
    if cam is None:
        return x, None, x.sum(dim=1, keepdim=True)
    return cam(x)


# ------------------------------------------------------------------------------ networks


class UGATITGenerator(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> (image (B, out_channels, H, W) in [-1, 1],
    cam_logit (B, 2), heatmap (B, 1, ceil(H/4), ceil(W/4))).

    `cam_logit` is [GAP logit, GMP logit] of the "needs translating" classifier; `heatmap` is
    the channel sum of the attention-weighted encoder features (for visualisation). The full
    variant (`light=False`) needs H == W == img_size; the light one takes any H, W >= 8.
    Call `clip_rho()` after every optimiser step, as the reference's RhoClipper does.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 4,
        img_size: int = 256,
        light: bool = False,
        cam: bool = True,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if not light and (img_size < 8 or img_size % 4):
            raise ValueError(f"img_size must be a multiple of 4 and >= 8, got {img_size}")
        self.img_size = img_size
        self.light = light
        c = 4 * ngf
        self.stem = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(3),
                conv=nn.Conv2d(in_channels, ngf, 7, bias=False),
                norm=nn.InstanceNorm2d(ngf),
                act=nn.ReLU(inplace=True),
            )
        )
        self.down1 = self._down(ngf, 2 * ngf)
        self.down2 = self._down(2 * ngf, c)
        self.encoder_blocks = nn.Sequential(*(EncoderBlock(c) for _ in range(n_blocks)))
        self.cam = ClassActivationMap(c) if cam else None
        side = img_size // 4
        self.style = StyleHead(c, c if light else side * side * c, pooled=light)
        self.decoder_blocks = nn.ModuleList(DecoderBlock(c) for _ in range(n_blocks))
        self.up1 = _up_stage(c, 2 * ngf)
        self.up2 = _up_stage(2 * ngf, ngf)
        self.head = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(3),
                conv=nn.Conv2d(ngf, out_channels, 7, bias=False),
                act=nn.Tanh(),
            )
        )

    @staticmethod
    def _down(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(1),
                conv=nn.Conv2d(c_in, c_out, 3, stride=2, bias=False),
                norm=nn.InstanceNorm2d(c_out),
                act=nn.ReLU(inplace=True),
            )
        )

    @torch.no_grad()
    def clip_rho(self) -> None:
        """Clamp every AdaLIN / LIN rho to [0, 1] in place (after each optimiser step)."""
        for m in self.modules():
            if isinstance(m, (AdaLIN, LIN)):
                m.rho.clamp_(0.0, 1.0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        h, w = x.shape[-2:]
        if not self.light and (h, w) != (self.img_size, self.img_size):
            raise ValueError(
                f"the full U-GAT-IT generator takes {self.img_size}x{self.img_size} inputs only"
                f" (its style MLP reads the whole feature map), got {h}x{w}; use light=True for"
                " other sizes"
            )
        # two stride-2 stages: pad bottom/right to a multiple of 4 so the up path lands on the
        # padded size exactly, then crop (reflection keeps the border statistics)
        ph, pw = -h % 4, -w % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")  # (B, C_in, H', W')
        f = self.down2(self.down1(self.stem(x)))  # (B, 4ngf, H'/4, W'/4)
        f = self.encoder_blocks(f)
        f, cam_logit, heatmap = _attend(self.cam, f)  # (B, 4ngf, H'/4, W'/4), (B, 2), (B, 1, ., .)
        gamma, beta = self.style(f)  # (B, 4ngf) each
        for block in self.decoder_blocks:
            f = block(f, gamma, beta)
        y = self.head(self.up2(self.up1(f)))  # (B, out, H', W')
        return y[..., :h, :w], cam_logit, heatmap


class UGATITDiscriminator(nn.Module):
    """(B, in_channels, H, W) -> (patch logits (B, 1, h, w), cam_logit (B, 2),
    heatmap (B, 1, h + 1, w + 1)). No sigmoid: the LSGAN loss reads raw logits.

    n_layers - 2 stride-2 convs take H to H / 2**(n_layers - 2); widths ndf * 2**k. The global
    discriminator (n_layers=7) needs inputs of at least 128 px, the local one (5) 32 px.
    """

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, n_layers: int = 5, cam: bool = True
    ) -> None:
        super().__init__()
        if n_layers < 3:
            raise ValueError(f"n_layers must be >= 3, got {n_layers}")
        n_down = n_layers - 2
        widths = [ndf * 2**k for k in range(n_down)]  # after each stride-2 conv
        self.downs = nn.Sequential(
            *(
                sn_conv_block(in_channels if k == 0 else widths[k - 1], widths[k], 2)
                for k in range(n_down)
            )
        )
        c = 2 * widths[-1]
        self.refine = sn_conv_block(widths[-1], c, 1)
        self.cam = ClassActivationMap(c, spectral=True, slope=0.2) if cam else None
        self.head = nn.Sequential(
            OrderedDict(
                pad=nn.ReflectionPad2d(1),
                conv=nn.utils.spectral_norm(nn.Conv2d(c, 1, 4, bias=False)),
            )
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        h = self.refine(self.downs(x))  # (B, C, H / 2**n_down - 1, ...)
        h, cam_logit, heatmap = _attend(self.cam, h)
        return self.head(h), cam_logit, heatmap  # (B, 1, ., .): one pixel smaller again
