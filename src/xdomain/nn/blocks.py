"""Conv-norm-act building blocks, chosen by name so that configs can switch them.

Norms and activations are looked up by name (`"batch"`, `"instance"`, `"instance_affine"`,
`"none"`; `"relu"`, `"lrelu"`, `"tanh"`, `"none"`), so a method's Config can expose them as plain
strings. `"instance"` is the reference CycleGAN/pix2pix norm (no scale/shift, no running stats),
so official checkpoints load into networks built with it; `"instance_affine"` adds the learned
per-channel scale and shift.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

Norm = Literal["batch", "instance", "instance_affine", "none"]
Act = Literal["relu", "lrelu", "tanh", "none"]


def get_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name (`none` -> identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        # as in the official CycleGAN/pix2pix code: no parameters and no running stats, so the
        # official state_dicts (which have no norm keys) load strictly
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "instance_affine":
        # learned scale/shift: lets the next layer get back a per-channel scale the norm erased
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; valid: batch, instance, instance_affine, none")


def get_act(kind: str) -> nn.Module:
    """An activation by name; `lrelu` uses slope 0.2 (DCGAN discriminators)."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation '{kind}'; valid: relu, lrelu, tanh, none")


def maybe_sn(layer: nn.Module, sn: bool) -> nn.Module:
    """Wrap a conv/linear layer in spectral normalisation (Miyato et al. 2018) when `sn`."""
    return nn.utils.parametrizations.spectral_norm(layer) if sn else layer


def conv_block(
    c_in: int,
    c_out: int,
    kernel: int = 4,
    stride: int = 2,
    padding: int = 1,
    *,
    norm: str = "batch",
    act: str = "relu",
    sn: bool = False,
) -> nn.Sequential:
    """Conv -> norm -> act. With the defaults (k4 s2 p1) it halves H and W: (B, c_in, H, W) ->
    (B, c_out, H/2, W/2). The conv has no bias when a norm follows (the norm's shift replaces it).
    """
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=norm == "none")
    return nn.Sequential(maybe_sn(conv, sn), get_norm(norm, c_out), get_act(act))


def deconv_block(
    c_in: int,
    c_out: int,
    kernel: int = 4,
    stride: int = 2,
    padding: int = 1,
    *,
    norm: str = "batch",
    act: str = "relu",
    sn: bool = False,
) -> nn.Sequential:
    """Transposed conv -> norm -> act. Defaults double H and W: (B, c_in, H, W) ->
    (B, c_out, 2H, 2W); k4 s1 p0 on a 1x1 input gives 4x4 (a DCGAN generator's first layer).
    """
    conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, bias=norm == "none")
    return nn.Sequential(maybe_sn(conv, sn), get_norm(norm, c_out), get_act(act))


def init_weights(net: nn.Module, std: float = 0.02) -> None:
    """DCGAN init: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0.

    Spectral-normalised layers keep PyTorch's default init: their weight is a parametrization and
    is rescaled anyway.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if nn.utils.parametrize.is_parametrized(m):
                continue
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            # a norm without affine parameters (`instance`) has nothing to initialise
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def xavier_init(net: nn.Module, gain: float) -> None:
    """junyanz's `init_type=xavier` (BicycleGAN's default): conv/linear weights ~
    Xavier-normal(gain), biases 0; batch-norm scales ~ N(1, gain)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
