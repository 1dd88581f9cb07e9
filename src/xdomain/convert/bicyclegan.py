"""pix2pix U-Net and BicycleGAN checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix,
junyanz/BicycleGAN) -> xdomain networks.

The official U-Nets nest one skip block inside the next, so their keys are paths through the
nesting (`model.model.1.model.3.model.1.weight`, `model.submodule.submodule.down.1.weight`);
ours are flat per level (`downs.2.conv.weight`, see `xdomain.nn.unet`). As in
`xdomain.convert.junyanz`, a table computed from the official layout renames module paths, the
result is checked against our network built on the meta device, and `infer_*` reads the
constructor arguments off the keys and shapes:

    state = read_official("latest_net_G.pth")
    kind, kwargs = infer(state)                  # ("UnetZGenerator", {"nz": 8, ...})
    net = KINDS[kind](**kwargs)
    net.load_state_dict(convert(state)[2])

Official files: pix2pix saves `latest_net_G.pth` (UnetGenerator, or a ResnetGenerator) and
`latest_net_D.pth` (NLayerDiscriminator); BicycleGAN `latest_net_G.pth` (G_Unet_add_all or
G_Unet_add_input), `latest_net_E.pth` (E_ResNet or E_NLayers), `latest_net_D.pth` and
`latest_net_D2.pth` (D_NLayersMulti). All are plain state_dicts.

What the keys cannot show, and what `infer_*` then assumes:
- dropout (it has no weights and sits last in its block): False. pix2pix trains with it;
- the up-path activation of a BicycleGAN U-Net (`nl`): "relu", the BicycleGAN default;
- instance norm vs no norm in G_Unet_add_all (neither leaves keys nor shifts positions):
  "instance", the BicycleGAN default;
- how G_Unet_add_input's first conv splits into image and z channels: in_channels ==
  out_channels unless `nz` is given;
- pix2pix's UnetGenerator vs G_Unet_add_input with instance norm and upconvs, which have the
  same keys when nz = 0: `family` picks; without it the file is pix2pix's unless its first conv
  reads more channels than the last one writes (then the extra channels are z).

Quirks absorbed as in `xdomain.convert.junyanz`: the `module.` prefix of nn.DataParallel, stale
InstanceNorm statistics of old releases (dropped), BatchNorm states without
`num_batches_tracked` (added as 0). Every failure is one `CheckpointError` line that names the
source, the problem and the fix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from xdomain.convert import junyanz
from xdomain.convert.common import (
    DEFAULT_SOURCE,
    as_state_dict,
    conv_weight,
    load_weights_only,
    remap,
    strip_data_parallel,
)
from xdomain.convert.registry import Network, Reader, Shapes
from xdomain.data.types import DataSpec
from xdomain.errors import CheckpointError, XDomainError, short
from xdomain.nn.bicyclegan import (
    MultiScaleDiscriminator,
    NLayerEncoder,
    ResnetEncoder,
    scale_widths,
)
from xdomain.nn.patchgan import PatchDiscriminator
from xdomain.nn.resnet import ResnetGenerator
from xdomain.nn.unet import UnetGenerator, UnetZGenerator

Family = Literal["pix2pix", "bicyclegan"]

# the classes `infer` names, for building what it inferred
KINDS: dict[str, type[nn.Module]] = {
    "UnetGenerator": UnetGenerator,
    "UnetZGenerator": UnetZGenerator,
    "ResnetGenerator": ResnetGenerator,
    "ResnetEncoder": ResnetEncoder,
    "NLayerEncoder": NLayerEncoder,
    "MultiScaleDiscriminator": MultiScaleDiscriminator,
    "PatchDiscriminator": PatchDiscriminator,
}

_UNET_WHAT = "an official pix2pix UnetGenerator"
_NESTED_HINT = "nested model.model.1.model.{i}... keys"
_ZIN_WHAT = "an official BicycleGAN G_Unet_add_input"
_ZALL_WHAT = "an official BicycleGAN G_Unet_add_all"
_ZALL_HINT = "model(.submodule)*.down.{i}/up.{i} keys"
_ERES_WHAT = "an official BicycleGAN E_ResNet"
_ERES_HINT = "conv.0, conv.{k}.conv.{j}, conv.{k}.shortcut.1, fc.0 and fcVar.0 keys"
_ENL_WHAT = "an official BicycleGAN E_NLayers"
_ENL_HINT = "conv.{i}, fc.0 and fcVar.0 keys"
_D_WHAT = "an official BicycleGAN D_NLayersMulti"
_D_HINT = "model_{i}.{j}.weight/bias keys (model.{j} for num_D=1)"


def _is_conv(state: Mapping[str, Tensor], key: str) -> bool:
    v = state.get(key)
    return isinstance(v, Tensor) and v.dim() == 4


def _has_prefix(state: Mapping[str, Tensor], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in state)


def _meta(cls: type[nn.Module], kw: Mapping[str, Any]) -> nn.Module:
    with torch.device("meta"):  # shapes only: no memory, no init
        return cls(**kw)


# ------------------------------------------------------------------ nested U-Nets (both repos)
#
# One level's Sequential (`model` inside each block), padding 'zero':
#   outermost  0 down conv | 1 submodule | 2 act | up | tanh
#   middle     0 LeakyReLU | 1 down conv | [2 norm] | submodule | act | up | [norm] | [Dropout]
#   innermost  0 LeakyReLU | 1 down conv | 2 act | up | [norm]
# where up is one ConvTranspose2d ("basic") or Upsample, ReflectionPad2d, Conv2d ("bilinear").


def _nested_prefixes(num_downs: int, has_norm: bool, upsample: str) -> dict[str, str]:
    """Official module path -> ours for the nested U-Nets (pix2pix UnetGenerator and
    BicycleGAN G_Unet_add_input). Norm positions are listed for instance norm too, so that
    stale InstanceNorm statistics find their layer and are dropped."""
    shift = 0 if upsample == "basic" else 2  # Upsample and ReflectionPad2d precede the conv
    sub = 3 if has_norm else 2
    table = {"model.model.0": "downs.0.conv", f"model.model.{3 + shift}": "ups.0.conv"}
    path = "model.model.1.model"
    for i in range(1, num_downs):
        table[f"{path}.1"] = f"downs.{i}.conv"
        if i == num_downs - 1:
            up = 3 + shift
        else:
            if has_norm:
                table[f"{path}.2"] = f"downs.{i}.norm"
            up = sub + 2 + shift
        table[f"{path}.{up}"] = f"ups.{i}.conv"
        if has_norm:
            table[f"{path}.{up + 1}"] = f"ups.{i}.norm"
        path = f"{path}.{sub}.model"
    return table


def _nested_layout(s: Mapping[str, Tensor], source: str, what: str) -> dict[str, Any]:
    """What the keys of a nested U-Net show: widths, depth, norm, upsampling, biases."""
    first = conv_weight(s, "model.model.0.weight", source, what, "the outermost down conv")
    one = "model.model.1.model"
    conv_weight(s, f"{one}.1.weight", source, what, "the second level's down conv")
    norm_weight = s.get(f"{one}.2.weight")
    if isinstance(norm_weight, Tensor) and norm_weight.dim() == 1:
        norm = "batch"
    elif _has_prefix(s, f"{one}.2.model."):
        norm = "none"  # BicycleGAN without norm layers: the submodule moves up to position 2
    else:
        norm = "instance"
    sub = 2 if norm == "none" else 3
    if _is_conv(s, "model.model.3.weight"):
        upsample, up_key = "basic", "model.model.3.weight"
    elif _is_conv(s, "model.model.5.weight"):
        upsample, up_key = "bilinear", "model.model.5.weight"
    else:
        raise CheckpointError(
            f"{source}: neither model.model.3.weight (ConvTranspose2d) nor model.model.5.weight"
            f" (bilinear upsampling conv) is a conv weight, so this is not {what}; check that"
            " the file holds this network"
        )
    up = s[up_key]
    out_channels = int(up.shape[1] if upsample == "basic" else up.shape[0])
    num_downs, path = 1, one
    while _is_conv(s, f"{path}.1.weight"):
        num_downs += 1
        path = f"{path}.{sub}.model"
    if num_downs < 5:
        raise CheckpointError(
            f"{source}: {num_downs} U-Net levels, but {what} has at least 5; the file is"
            " incomplete or holds another network"
        )
    return {
        "ngf": int(first.shape[0]),
        "first_in": int(first.shape[1]),
        "out_channels": out_channels,
        "num_downs": num_downs,
        "norm": norm,
        "upsample": upsample,
        "biased": "model.model.0.bias" in s,
    }


def infer_unet_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`UnetGenerator` keyword arguments (in_channels, out_channels, num_downs, ngf, norm,
    dropout) read off an official pix2pix state_dict. dropout is always False: the files do not
    record it (pass dropout=True to reproduce pix2pix's train-mode inference noise)."""
    s = strip_data_parallel(state)
    lay = _nested_layout(s, source, _UNET_WHAT)
    bicycle = lay["norm"] == "none" or lay["upsample"] != "basic"
    bicycle = bicycle or (lay["norm"] == "batch" and lay["biased"])
    if bicycle:
        raise CheckpointError(
            f"{source}: this nested U-Net has {_bicycle_sign(lay)}, which pix2pix's"
            " UnetGenerator never has: it is BicycleGAN's G_Unet_add_input; convert it with"
            " unet_z_generator"
        )
    return {
        "in_channels": lay["first_in"],
        "out_channels": lay["out_channels"],
        "num_downs": lay["num_downs"],
        "ngf": lay["ngf"],
        "norm": lay["norm"],
        "dropout": False,
    }


def _bicycle_sign(lay: Mapping[str, Any]) -> str:
    if lay["norm"] == "none":
        return "no norm layers"
    if lay["upsample"] != "basic":
        return "bilinear upsampling"
    return "conv biases before batch norm"


def unet_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official pix2pix `UnetGenerator` state_dict -> ours (load with `strict=True`)."""
    kw = infer_unet_generator(state, source=source)
    table = _nested_prefixes(kw["num_downs"], True, "basic")
    net = _meta(UnetGenerator, kw)
    return remap(strip_data_parallel(state), table, net, _UNET_WHAT, _NESTED_HINT, source)


# ---------------------------------------------------------------------- BicycleGAN U-Nets
#
# G_Unet_add_all: each level is a UnetBlock_with_z with `down`, `submodule` and `up`:
#   down  outermost [0 conv]; others [0 LeakyReLU, 1 conv, (2 norm, not innermost)]
#   up    [0 act, up (1 ConvTranspose2d | 1 Upsample, 2 pad, 3 conv), norm (not outermost),
#          (Dropout)], outermost ending in tanh


def _add_all_prefixes(num_downs: int, has_norm: bool, upsample: str) -> dict[str, str]:
    """Official module path -> ours for G_Unet_add_all."""
    conv = 1 if upsample == "basic" else 3
    table: dict[str, str] = {}
    for i in range(num_downs):
        block = "model" + ".submodule" * i
        if i == 0:
            table[f"{block}.down.0"] = "downs.0.conv"
        else:
            table[f"{block}.down.1"] = f"downs.{i}.conv"
            if has_norm and i < num_downs - 1:
                table[f"{block}.down.2"] = f"downs.{i}.norm"
        table[f"{block}.up.{conv}"] = f"ups.{i}.conv"
        if has_norm and i > 0:
            table[f"{block}.up.{conv + 1}"] = f"ups.{i}.norm"
    return table


def _infer_add_all(s: Mapping[str, Tensor], source: str) -> dict[str, Any]:
    first = conv_weight(s, "model.down.0.weight", source, _ZALL_WHAT, "the outermost down conv")
    ngf = int(first.shape[0])
    second = conv_weight(
        s, "model.submodule.down.1.weight", source, _ZALL_WHAT, "the second level's down conv"
    )
    nz = int(second.shape[1]) - ngf  # every down conv reads its input + the tiled z
    if nz < 0 or nz >= int(first.shape[1]):
        raise CheckpointError(
            f"{source}: the second down conv reads {int(second.shape[1])} channels but the"
            f" first writes {ngf}, which {_ZALL_WHAT} cannot have; the file mixes networks"
        )
    num_downs = 1
    while _is_conv(s, f"model{'.submodule' * num_downs}.down.1.weight"):
        num_downs += 1
    if _is_conv(s, "model.up.1.weight"):
        upsample, out_channels = "basic", int(s["model.up.1.weight"].shape[1])
    elif _is_conv(s, "model.up.3.weight"):
        upsample, out_channels = "bilinear", int(s["model.up.3.weight"].shape[0])
    else:
        raise CheckpointError(
            f"{source}: neither model.up.1.weight nor model.up.3.weight is a conv weight, so"
            f" this is not {_ZALL_WHAT}; check that the file holds this network"
        )
    if num_downs < 6:
        raise CheckpointError(
            f"{source}: {num_downs} U-Net levels, but {_ZALL_WHAT} has at least 6; the file is"
            " incomplete or holds another network"
        )
    norm = "batch" if "model.submodule.down.2.weight" in s else "instance"
    return {
        "in_channels": int(first.shape[1]) - nz,
        "out_channels": out_channels,
        "nz": nz,
        "num_downs": num_downs,
        "ngf": ngf,
        "norm": norm,
        "nl": "relu",
        "dropout": False,
        "where_add": "all",
        "upsample": upsample,
    }


def infer_unet_z_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE, nz: int | None = None
) -> dict[str, Any]:
    """`UnetZGenerator` keyword arguments (in_channels, out_channels, nz, num_downs, ngf, norm,
    nl, dropout, where_add, upsample) read off an official BicycleGAN G_Unet_add_all
    (`model.down.*` keys) or G_Unet_add_input (nested `model.model.*` keys) state_dict.

    For add_input, `nz` says how many of the first conv's input channels are z; by default
    in_channels == out_channels. nl ("relu"), dropout (False) and, for add_all, instance norm
    vs none are not in the keys: the BicycleGAN defaults are returned.
    """
    s = strip_data_parallel(state)
    if "model.down.0.weight" in s:
        kw = _infer_add_all(s, source)
        if nz is not None and nz != kw["nz"]:
            raise CheckpointError(
                f"{source}: nz={nz} was given, but this G_Unet_add_all's convs read nz="
                f"{kw['nz']} extra channels; drop the nz argument"
            )
        return kw
    lay = _nested_layout(s, source, _ZIN_WHAT)
    if not lay["biased"]:
        raise CheckpointError(
            f"{source}: the outermost down conv has no bias, which BicycleGAN's"
            " G_Unet_add_input always has: this is pix2pix's UnetGenerator; convert it with"
            " unet_generator"
        )
    if nz is None:
        nz = max(lay["first_in"] - lay["out_channels"], 0)
    if not 0 <= nz < lay["first_in"]:
        raise CheckpointError(
            f"{source}: nz={nz} does not fit the first conv's {lay['first_in']} input channels"
            " (image + z); pass a smaller nz"
        )
    return {
        "in_channels": lay["first_in"] - nz,
        "out_channels": lay["out_channels"],
        "nz": nz,
        "num_downs": lay["num_downs"],
        "ngf": lay["ngf"],
        "norm": lay["norm"],
        "nl": "relu",
        "dropout": False,
        "where_add": "input",
        "upsample": lay["upsample"],
    }


def unet_z_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official BicycleGAN `G_Unet_add_all` / `G_Unet_add_input` state_dict -> ours (load
    with `strict=True` into `UnetZGenerator(**infer_unet_z_generator(state))`)."""
    kw = infer_unet_z_generator(state, source=source)
    has_norm = kw["norm"] != "none"
    net = _meta(UnetZGenerator, kw)
    s = strip_data_parallel(state)
    if kw["where_add"] == "all":
        table = _add_all_prefixes(kw["num_downs"], has_norm, kw["upsample"])
        return remap(s, table, net, _ZALL_WHAT, _ZALL_HINT, source)
    table = _nested_prefixes(kw["num_downs"], has_norm, kw["upsample"])
    return remap(s, table, net, _ZIN_WHAT, _NESTED_HINT, source)


# ----------------------------------------------------------------------------- encoders
#
# E_ResNet `conv`: 0 conv 4x4 | k = 1..n_blocks-1 BasicBlock | act | AvgPool2d(8). BasicBlock
# `conv`: [0 norm] act conv3x3 [norm] act convMeanpool(.0 conv3x3, .1 pool); so 2, 5.0 with a
# norm, 1, 3.0 without; `shortcut`: 0 pool, 1 conv1x1. fc.0 = mu, fcVar.0 = logvar.


def _resnet_encoder_prefixes(n_blocks: int, has_norm: bool) -> dict[str, str]:
    """Official module path -> ours for E_ResNet."""
    table = {"conv.0": "stem", "fc.0": "fc_mu", "fcVar.0": "fc_logvar"}
    for k in range(1, n_blocks):
        main, ours = f"conv.{k}.conv", f"blocks.{k - 1}"
        if has_norm:
            table[f"{main}.0"] = f"{ours}.norm1"
            table[f"{main}.2"] = f"{ours}.conv1"
            table[f"{main}.3"] = f"{ours}.norm2"
            table[f"{main}.5.0"] = f"{ours}.conv2"
        else:
            table[f"{main}.1"] = f"{ours}.conv1"
            table[f"{main}.3.0"] = f"{ours}.conv2"
        table[f"conv.{k}.shortcut.1"] = f"{ours}.shortcut"
    return table


def _encoder_head(s: Mapping[str, Tensor], source: str, what: str) -> tuple[int, bool]:
    fc = s.get("fc.0.weight")
    if not isinstance(fc, Tensor) or fc.dim() != 2:
        raise CheckpointError(
            f"{source}: no Linear weight 'fc.0.weight' (the mu head), so this is not {what};"
            " check that the file holds this network"
        )
    return int(fc.shape[0]), "fcVar.0.weight" in s


def infer_resnet_encoder(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`ResnetEncoder` keyword arguments (in_channels, nz, ndf, n_blocks, norm, nl, vae_like)
    read off an official E_ResNet state_dict (nl is always "lrelu": define_E forces it)."""
    s = strip_data_parallel(state)
    stem = conv_weight(s, "conv.0.weight", source, _ERES_WHAT, "the first conv")
    blocks = sorted(
        int(m[1]) for k in s if (m := re.fullmatch(r"conv\.(\d+)\.shortcut\.1\.weight", k))
    )
    if not blocks or blocks != list(range(1, len(blocks) + 1)):
        raise CheckpointError(
            f"{source}: residual blocks at conv.{blocks or '[]'} are not numbered 1, 2, ... as"
            f" in {_ERES_WHAT}; the file holds another network"
        )
    if "conv.1.conv.0.weight" in s:
        norm = "batch"
    elif _is_conv(s, "conv.1.conv.1.weight"):
        norm = "none"
    else:
        norm = "instance"
    nz, vae_like = _encoder_head(s, source, _ERES_WHAT)
    return {
        "in_channels": int(stem.shape[1]),
        "nz": nz,
        "ndf": int(stem.shape[0]),
        "n_blocks": len(blocks) + 1,
        "norm": norm,
        "nl": "lrelu",
        "vae_like": vae_like,
    }


def resnet_encoder(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official BicycleGAN `E_ResNet` state_dict -> ours (load with `strict=True`)."""
    kw = infer_resnet_encoder(state, source=source)
    table = _resnet_encoder_prefixes(kw["n_blocks"], kw["norm"] != "none")
    net = _meta(ResnetEncoder, kw)
    return remap(strip_data_parallel(state), table, net, _ERES_WHAT, _ERES_HINT, source)


# E_NLayers `conv`: 0 conv, 1 act | per further layer: conv, [norm], act | AvgPool2d(8)


def _nlayer_encoder_prefixes(n_layers: int, has_norm: bool) -> dict[str, str]:
    """Official module path -> ours for E_NLayers."""
    table = {"conv.0": "stem.conv", "fc.0": "fc_mu", "fcVar.0": "fc_logvar"}
    step = 3 if has_norm else 2
    for n in range(1, n_layers):
        i = 2 + step * (n - 1)
        table[f"conv.{i}"] = f"downs.{n - 1}.conv"
        if has_norm:
            table[f"conv.{i + 1}"] = f"downs.{n - 1}.norm"
    return table


def infer_nlayer_encoder(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`NLayerEncoder` keyword arguments (in_channels, nz, ndf, n_layers, norm, nl, vae_like)
    read off an official E_NLayers state_dict. With two conv layers instance norm and no norm
    leave the same keys: "instance" is returned."""
    s = strip_data_parallel(state)
    stem = conv_weight(s, "conv.0.weight", source, _ENL_WHAT, "the first conv")
    convs = sorted(
        int(m[1])
        for k, v in s.items()
        if (m := re.fullmatch(r"conv\.(\d+)\.weight", k)) and isinstance(v, Tensor) and v.dim() == 4
    )
    if "conv.3.weight" in s and not _is_conv(s, "conv.3.weight"):
        norm = "batch"
    elif len(convs) >= 3 and convs[2] - convs[1] == 2:
        norm = "none"
    else:
        norm = "instance"
    nz, vae_like = _encoder_head(s, source, _ENL_WHAT)
    return {
        "in_channels": int(stem.shape[1]),
        "nz": nz,
        "ndf": int(stem.shape[0]),
        "n_layers": len(convs),
        "norm": norm,
        "nl": "lrelu",
        "vae_like": vae_like,
    }


def nlayer_encoder(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official BicycleGAN `E_NLayers` state_dict -> ours (load with `strict=True`)."""
    kw = infer_nlayer_encoder(state, source=source)
    table = _nlayer_encoder_prefixes(kw["n_layers"], kw["norm"] != "none")
    net = _meta(NLayerEncoder, kw)
    return remap(strip_data_parallel(state), table, net, _ENL_WHAT, _ENL_HINT, source)


# ------------------------------------------------------------------------- discriminators
#
# D_NLayersMulti: `model_{i}` per scale (`model` when num_D=1), each NLayerDiscriminator's
# positional layout (0 conv, 1 act | conv, norm, act per layer | conv 4x4 s1 -> 1) with every
# conv biased; the AvgPool2d `down` has no state.


def _scale_prefixes(s: Mapping[str, Tensor]) -> list[str]:
    if "model_0.0.weight" in s:
        n = 0
        while f"model_{n}.0.weight" in s:
            n += 1
        return [f"model_{i}" for i in range(n)]
    return ["model"]


def _infer_scale(s: Mapping[str, Tensor], prefix: str, source: str) -> dict[str, Any]:
    stem = conv_weight(s, f"{prefix}.0.weight", source, _D_WHAT, "the first conv")
    ndf = int(stem.shape[0])
    pattern = re.compile(rf"{re.escape(prefix)}\.(\d+)\.weight")
    convs = sorted(
        int(m[1])
        for k, v in s.items()
        if (m := pattern.fullmatch(k)) and isinstance(v, Tensor) and v.dim() == 4
    )
    if len(convs) < 3:
        raise CheckpointError(
            f"{source}: {len(convs)} conv layers under {prefix}, but {_D_WHAT} has at least 3;"
            " the file holds another network"
        )
    n_layers = len(convs) - 2
    if n_layers == 1 and s[f"{prefix}.{convs[1]}.weight"].shape[0] == ndf:
        n_layers = 0  # n_layers 0 and 1 share one layout; only the stride-1 conv's width differs
    norm = "batch" if f"{prefix}.3.weight" in s else "instance"
    if f"{prefix}.2.bias" not in s:
        raise CheckpointError(
            f"{source}: {prefix}.2 has no bias, which every conv of {_D_WHAT} has: this is a"
            " pix2pix/CycleGAN NLayerDiscriminator; convert it with"
            " xdomain.convert.junyanz.patch_discriminator"
        )
    return {"in_channels": int(stem.shape[1]), "ndf": ndf, "n_layers": n_layers, "norm": norm}


def infer_multiscale_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`MultiScaleDiscriminator` keyword arguments (in_channels, ndf, n_layers, norm, num_d)
    read off an official D_NLayersMulti state_dict (`model_{i}.*`, or `model.*` for num_D=1)."""
    s = strip_data_parallel(state)
    prefixes = _scale_prefixes(s)
    scales = [_infer_scale(s, p, source) for p in prefixes]
    first = scales[0]
    want = scale_widths(first["ndf"], len(scales))
    for i, (p, sc) in enumerate(zip(prefixes, scales, strict=True)):
        same = {k: sc[k] for k in ("in_channels", "n_layers", "norm")}
        if same != {k: first[k] for k in same} or sc["ndf"] != want[i]:
            raise CheckpointError(
                f"{source}: scale {p} is {sc}, but {_D_WHAT} with scale 0 = {first} has"
                f" ndf {want[i]} there and the same depth and norm; the file mixes networks"
            )
    return {**first, "num_d": len(scales)}


def multiscale_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official BicycleGAN `D_NLayersMulti` state_dict -> ours (load with `strict=True`)."""
    kw = infer_multiscale_discriminator(state, source=source)
    s = strip_data_parallel(state)
    table: dict[str, str] = {}
    for i, prefix in enumerate(_scale_prefixes(s)):
        # the same positions as an NLayerDiscriminator's `model.{j}`
        for official, ours in junyanz._patch_prefixes(kw["n_layers"]).items():
            table[prefix + official[len("model") :]] = f"scales.{i}.{ours}"
    net = _meta(MultiScaleDiscriminator, kw)
    return remap(s, table, net, _D_WHAT, _D_HINT, source)


# --------------------------------------------------------------------------- dispatching


def role(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> str:
    """Which network an official pix2pix/BicycleGAN state_dict holds, from its keys: "G"
    (generator), "E" (encoder) or "D" (discriminator)."""
    s = strip_data_parallel(state)
    if "conv.0.weight" in s and "fc.0.weight" in s:
        return "E"
    if "model.model.0.weight" in s or "model.down.0.weight" in s:
        return "G"
    if _is_conv(s, "model.1.weight") and s["model.1.weight"].shape[-1] == 7:
        return "G"  # a ResnetGenerator (pix2pix --netG resnet_*)
    if "model_0.0.weight" in s or _is_conv(s, "model.0.weight"):
        return "D"
    keys = sorted(s)[:3]
    raise CheckpointError(
        f"{source}: keys {short(keys)} match no pix2pix/BicycleGAN network (G: model.model.* or"
        " model.down.*, E: conv.* with fc.*, D: model.* or model_0.*); check that the file is"
        " a latest_net_G/E/D/D2.pth state_dict of these repositories"
    )


def infer(
    state: Mapping[str, Tensor],
    *,
    source: str = DEFAULT_SOURCE,
    family: Family | None = None,
) -> tuple[str, dict[str, Any]]:
    """(kind, kwargs): which class of `KINDS` to build for an official pix2pix/BicycleGAN
    state_dict, and its keyword arguments.

    `family` only breaks ties the keys leave open: an instance-norm nested U-Net is pix2pix's
    UnetGenerator (default) or BicycleGAN's G_Unet_add_input ("bicyclegan"), a `model.*`
    discriminator with instance norm a PatchDiscriminator (default) or a one-scale
    MultiScaleDiscriminator ("bicyclegan"); both readings compute the same for the
    discriminator.
    """
    if family not in (None, "pix2pix", "bicyclegan"):
        raise ValueError(f"unknown family '{family}'; valid: pix2pix, bicyclegan")
    s = strip_data_parallel(state)
    kind = role(s, source=source)
    if kind == "E":
        if "conv.1.shortcut.1.weight" in s:
            return "ResnetEncoder", infer_resnet_encoder(s, source=source)
        return "NLayerEncoder", infer_nlayer_encoder(s, source=source)
    if kind == "D":
        single = "model_0.0.weight" not in s
        pix2pix_layout = single and "model.2.bias" not in s
        tie = single and "model.3.weight" not in s and family != "bicyclegan"
        if pix2pix_layout or tie:
            return "PatchDiscriminator", junyanz.infer_patch_discriminator(s, source=source)
        return "MultiScaleDiscriminator", infer_multiscale_discriminator(s, source=source)
    if "model.down.0.weight" in s:
        return "UnetZGenerator", infer_unet_z_generator(s, source=source)
    if "model.model.0.weight" not in s:
        return "ResnetGenerator", junyanz.infer_resnet_generator(s, source=source)
    lay = _nested_layout(s, source, "an official pix2pix/BicycleGAN U-Net")
    if lay["norm"] == "batch" or not lay["biased"]:
        bicycle = lay["biased"]  # pix2pix drops the biases before batch norm, BicycleGAN not
    elif lay["norm"] == "none" or lay["upsample"] != "basic":
        bicycle = True
    else:  # instance norm and upconvs: the keys match both
        bicycle = family == "bicyclegan" or (
            family is None and lay["first_in"] > lay["out_channels"]
        )
    if bicycle:
        return "UnetZGenerator", infer_unet_z_generator(s, source=source)
    return "UnetGenerator", infer_unet_generator(s, source=source)


_CONVERTERS = {
    "UnetGenerator": unet_generator,
    "UnetZGenerator": unet_z_generator,
    "ResnetGenerator": junyanz.resnet_generator,
    "ResnetEncoder": resnet_encoder,
    "NLayerEncoder": nlayer_encoder,
    "MultiScaleDiscriminator": multiscale_discriminator,
    "PatchDiscriminator": junyanz.patch_discriminator,
}


def convert(
    state: Mapping[str, Tensor],
    *,
    source: str = DEFAULT_SOURCE,
    family: Family | None = None,
) -> tuple[str, dict[str, Any], dict[str, Tensor]]:
    """(kind, kwargs, our state_dict) for an official pix2pix/BicycleGAN state_dict: build
    `KINDS[kind](**kwargs)` and load the state with `strict=True`."""
    kind, kw = infer(state, source=source, family=family)
    return kind, kw, _CONVERTERS[kind](state, source=source)


# ---------------------------------------------------------------------------- file reader


def read_official(path: str | Path) -> dict[str, Tensor]:
    """An official pix2pix/BicycleGAN weight file (`latest_net_G.pth`, `_E`, `_D`, `_D2`: plain
    state_dicts; or `.safetensors`) as a state_dict, read without running a plain unpickle."""
    path = Path(path)
    what = "a pix2pix/BicycleGAN state_dict"
    return as_state_dict(load_weights_only(path, what=what), path, what)


# ------------------------------------------------------------- --from pix2pix / bicyclegan
#
# pix2pix: `latest_net_G.pth` -> G (a U-Net), `latest_net_D.pth` -> D (the conditional
# PatchGAN). BicycleGAN: `*_net_G.pth` -> G, `*_net_E.pth` -> E, `*_net_D.pth` -> D (the
# cVAE-GAN's), `*_net_D2.pth` -> D2 (the cLR-GAN's). The kind comes from the keys, D2 from the
# name; a published BicycleGAN model is G and E, both Ds then stay untrained.


def _read_paired(family: Family, path: Path) -> list[Network]:
    st = read_official(path)
    kind, kw, ours = convert(st, source=str(path), family=family)
    net = role(st, source=str(path))
    if net == "D" and re.search(r"D2", path.name):
        net = "D2"
    return [(net, ours, {**kw, "kind": kind})]


def _paired_config(family: Family, cls: Callable[..., Any], shapes: Shapes) -> tuple[Any, DataSpec]:
    """The Config and DataSpec of the official networks' shapes; a layout our method does not
    build (a ResNet generator, an N-layer encoder, a conditional BicycleGAN D) is a one-line
    error that says so."""
    g_kw, d_kw, e_kw = shapes.g, shapes.d, shapes.get("E")
    want_g = "UnetGenerator" if family == "pix2pix" else "UnetZGenerator"
    if g_kw["kind"] != want_g:
        other = "--from cyclegan (a ResnetGenerator)" if g_kw["kind"] == "ResnetGenerator" else ""
        raise XDomainError(
            f"the G file holds a {g_kw['kind']}; xdomain's {family} uses a {want_g}"
            + (f"; convert it with {other}" if other else "")
        )
    c = int(g_kw["in_channels"])
    if int(g_kw["out_channels"]) != c:
        raise XDomainError(
            f"the G file maps {c} to {g_kw['out_channels']} channels; xdomain's {family} keeps"
            " one channel count for input and output (data.channels)"
        )
    size = 2 ** int(g_kw["num_downs"])
    d_in = 2 * c if family == "pix2pix" else c  # pix2pix's D is conditional, BicycleGAN's not
    if d_kw and int(d_kw["in_channels"]) != d_in:
        raise XDomainError(
            f"the D file takes {d_kw['in_channels']} channels, xdomain's {family} D {d_in}"
            + (" (input and output stacked)" if family == "pix2pix" else " (--conditional_D")
            + ("" if family == "pix2pix" else " models are not supported)")
        )
    common = {"ngf": g_kw["ngf"], "num_downs": g_kw["num_downs"], "norm": g_kw["norm"]}
    common |= {"ndf": d_kw.get("ndf", 64), "n_layers_d": d_kw.get("n_layers", 3)}
    if family == "pix2pix":
        return cls(**common), DataSpec(kind="image", channels=c, image_size=size)
    if e_kw and e_kw.get("kind") != "ResnetEncoder":
        raise XDomainError(
            f"the E file holds a {e_kw.get('kind')}; xdomain's bicyclegan uses the ResNet encoder"
            " (--netE resnet_128 / resnet_256)"
        )
    blocks = int(e_kw.get("n_blocks", max(1, int(g_kw["num_downs"]) - 3)))
    model = cls(
        **common,
        nz=g_kw["nz"],
        nef=e_kw.get("ndf", 64),
        e_blocks=blocks,
        where_add=g_kw["where_add"],
        nl=g_kw.get("nl", "relu"),
        upsample=g_kw.get("upsample", "basic"),
        num_d=d_kw.get("num_d", 2),
    )
    return model, DataSpec(kind="image", channels=c, image_size=size)


READERS = {
    f: Reader(functools.partial(_read_paired, f), functools.partial(_paired_config, f))
    for f in get_args(Family)
}
