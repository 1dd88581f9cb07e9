"""CycleGAN / pix2pix checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix) -> xdomain networks.

The official `models/networks.py` builds each network as one `nn.Sequential` called `model`, so
its state_dict keys are positions (`model.10.conv_block.5.weight`). The converters here rename
them to our module names (`blocks.0.conv2.weight`) through a table computed from the official
layout, then check the result against our network built on the meta device: every key present,
every shape right, nothing left over. `infer_*` reads the constructor arguments off the keys and
shapes, so a user needs no flags:

    state = read_official("latest_net_G_A.pth")
    net = ResnetGenerator(**infer_resnet_generator(state))
    net.load_state_dict(resnet_generator(state))

Quirks of real official files that the converters absorb: the `module.` prefix of a net saved
inside nn.DataParallel; InstanceNorm `running_mean/running_var/num_batches_tracked` left in old
CycleGAN releases (upstream's `load_networks` deletes them, and so do we); BatchNorm states from
before PyTorch 0.4 without `num_batches_tracked` (added as 0).

Files are read without a plain unpickle: `.pth` files go through `torch.load(weights_only=True)`
(`xdomain.convert.common`), and every failure is one `CheckpointError` line that names the file,
the problem and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from xdomain.convert.common import (
    DEFAULT_SOURCE,
    as_state_dict,
    conv_weight,
    load_weights_only,
    norm_kind,
    remap,
    strip_data_parallel,
)
from xdomain.convert.registry import Network, Reader, Shapes
from xdomain.data.types import DataSpec
from xdomain.errors import CheckpointError
from xdomain.nn.patchgan import PatchDiscriminator
from xdomain.nn.resnet import ResnetGenerator

_RESNET_WHAT = "an official CycleGAN ResnetGenerator"
_RESNET_HINT = "model.{i}.weight/bias and model.{i}.conv_block.{j}.* keys"
_PATCH_WHAT = "an official pix2pix/CycleGAN NLayerDiscriminator"
_PATCH_HINT = "model.{i}.weight/bias keys"

# ----------------------------------------------------------------------------- ResnetGenerator


def _resnet_prefixes(n_blocks: int, dropout: bool) -> dict[str, str]:
    """Official module path -> ours, from the layout of the official Sequential:
    0 pad, 1 conv, 2 norm, 3 relu | 4-6, 7-9 down (conv, norm, relu) | 10 .. 10+n-1 blocks |
    two (convT, norm, relu) ups | pad, conv, tanh. Norm positions are listed even for instance
    norm, so that stale InstanceNorm keys find their layer and can be dropped.
    """
    table = {
        "model.1": "stem.conv",
        "model.2": "stem.norm",
        "model.4": "down1.conv",
        "model.5": "down1.norm",
        "model.7": "down2.conv",
        "model.8": "down2.norm",
    }
    # block: pad, conv, norm, relu, [dropout], pad, conv, norm: dropout shifts the second pair
    second = 6 if dropout else 5
    for b in range(n_blocks):
        block = f"model.{10 + b}.conv_block"
        table[f"{block}.1"] = f"blocks.{b}.conv1"
        table[f"{block}.2"] = f"blocks.{b}.norm1"
        table[f"{block}.{second}"] = f"blocks.{b}.conv2"
        table[f"{block}.{second + 1}"] = f"blocks.{b}.norm2"
    up = 10 + n_blocks
    table[f"model.{up}"] = "up1.conv"
    table[f"model.{up + 1}"] = "up1.norm"
    table[f"model.{up + 3}"] = "up2.conv"
    table[f"model.{up + 4}"] = "up2.norm"
    table[f"model.{up + 7}"] = "head.conv"
    return table


def infer_resnet_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`ResnetGenerator` keyword arguments (in_channels, out_channels, ngf, n_blocks, norm,
    dropout) read off an official state_dict's keys and shapes."""
    s = strip_data_parallel(state)
    stem = conv_weight(s, "model.1.weight", source, _RESNET_WHAT, "the 7x7 input conv")
    ngf, in_channels = int(stem.shape[0]), int(stem.shape[1])
    blocks = sorted({int(m[1]) for k in s if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    n_blocks = len(blocks)
    if blocks != list(range(10, 10 + n_blocks)):
        raise CheckpointError(
            f"{source}: residual blocks at model.{blocks} are not numbered 10, 11, ... as in"
            f" {_RESNET_WHAT} (padding_type='reflect'); the file holds another network"
        )
    # a conv (4-D weight) at conv_block.6 means a Dropout took position 4
    second = s.get("model.10.conv_block.6.weight")
    dropout = isinstance(second, Tensor) and second.dim() == 4
    norm = norm_kind(s, "model.1", "model.2", source, _RESNET_WHAT)
    head_key = f"model.{17 + n_blocks}.weight"
    head = conv_weight(s, head_key, source, _RESNET_WHAT, "the 7x7 output conv")
    return {
        "in_channels": in_channels,
        "out_channels": int(head.shape[0]),
        "ngf": ngf,
        "n_blocks": n_blocks,
        "norm": norm,
        "dropout": dropout,
    }


def resnet_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official `ResnetGenerator` state_dict -> ours (load with `strict=True`)."""
    kw = infer_resnet_generator(state, source=source)
    with torch.device("meta"):  # shapes only: no memory, no init
        net = ResnetGenerator(**kw)
    table = _resnet_prefixes(kw["n_blocks"], kw["dropout"])
    return remap(strip_data_parallel(state), table, net, _RESNET_WHAT, _RESNET_HINT, source)


# ------------------------------------------------------------------------- NLayerDiscriminator


def _patch_prefixes(n_layers: int) -> dict[str, str]:
    """Official module path -> ours: 0 conv, 1 lrelu | (conv, norm, lrelu) per stride-2 layer |
    the stride-1 (conv, norm, lrelu) | final conv."""
    table = {"model.0": "stem.conv"}
    for n in range(1, n_layers):
        i = 2 + 3 * (n - 1)
        table[f"model.{i}"] = f"downs.{n - 1}.conv"
        table[f"model.{i + 1}"] = f"downs.{n - 1}.norm"
    i = 2 + 3 * max(n_layers - 1, 0)
    table[f"model.{i}"] = "refine.conv"
    table[f"model.{i + 1}"] = "refine.norm"
    table[f"model.{i + 3}"] = "head.conv"
    return table


def infer_patch_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`PatchDiscriminator` keyword arguments (in_channels, ndf, n_layers, norm) read off an
    official `NLayerDiscriminator` state_dict."""
    s = strip_data_parallel(state)
    stem = conv_weight(s, "model.0.weight", source, _PATCH_WHAT, "the first conv")
    ndf, in_channels = int(stem.shape[0]), int(stem.shape[1])
    convs = sorted(
        int(m[1])
        for k, v in s.items()
        if (m := re.fullmatch(r"model\.(\d+)\.weight", k))
        and isinstance(v, Tensor)
        and v.dim() == 4
    )
    if len(convs) < 3:
        raise CheckpointError(
            f"{source}: {len(convs)} conv layers, but {_PATCH_WHAT} has at least 3; the file"
            " holds another network"
        )
    n_layers = len(convs) - 2
    if n_layers == 1 and s[f"model.{convs[1]}.weight"].shape[0] == ndf:
        # n_layers 0 and 1 share one layout; only the stride-1 conv's width (ndf vs 2 ndf) differs
        n_layers = 0
    norm = norm_kind(s, "model.2", "model.3", source, _PATCH_WHAT)
    return {"in_channels": in_channels, "ndf": ndf, "n_layers": n_layers, "norm": norm}


def patch_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official `NLayerDiscriminator` state_dict -> ours (load with `strict=True`)."""
    kw = infer_patch_discriminator(state, source=source)
    with torch.device("meta"):
        net = PatchDiscriminator(**kw)
    table = _patch_prefixes(kw["n_layers"])
    return remap(strip_data_parallel(state), table, net, _PATCH_WHAT, _PATCH_HINT, source)


# ---------------------------------------------------------------------------- file reader


def read_official(path: str | Path) -> dict[str, Tensor]:
    """An official CycleGAN/pix2pix weight file (`.pth` state_dict, or `.safetensors`) as a
    state_dict, read without running a plain unpickle."""
    path = Path(path)
    what = "a CycleGAN/pix2pix state_dict"
    return as_state_dict(load_weights_only(path, what=what), path, what)


# ------------------------------------------------------------------------ --from cyclegan
#
# Roles follow the official file names: `*G_A*` -> G_ab (A -> B), `*G_B*` -> G_ba, `*D_A*` ->
# D_b (the reference's D_A judges G_A's output, domain B), `*D_B*` -> D_a. A published model
# such as `horse2zebra.pth` is one generator: it fills G_ab.


def _cyclegan_role(name: str, is_g: bool) -> str:
    if is_g:
        return "G_ba" if re.search(r"G_?B", name) else "G_ab"
    return "D_a" if re.search(r"D_?B", name) else "D_b"


def _looks_like_resnet(state: Mapping[str, Tensor]) -> bool:
    w = state.get("model.1.weight", state.get("module.model.1.weight"))
    return w is not None and w.dim() == 4 and w.shape[-1] == 7  # the 7x7 stem


def _read_cyclegan(path: Path) -> list[Network]:
    official = read_official(path)
    src = str(path)
    is_g = any(".conv_block." in k for k in official) or _looks_like_resnet(official)
    role = _cyclegan_role(path.name, is_g)
    if is_g:
        g = resnet_generator(official, source=src)
        return [(role, g, infer_resnet_generator(official, source=src))]
    d = patch_discriminator(official, source=src)
    return [(role, d, infer_patch_discriminator(official, source=src))]


def _cyclegan_config(cls: Callable[..., Any], shapes: Shapes) -> tuple[Any, DataSpec]:
    g, d = shapes.g, shapes.d
    model = cls(
        ngf=g["ngf"],
        n_blocks=g["n_blocks"],
        norm=g.get("norm", "instance"),
        dropout=bool(g.get("dropout", False)),
        ndf=d.get("ndf", 64),
        n_layers_d=d.get("n_layers", 3),
    )
    # fully convolutional: 256 is the training crop of the published models, not a limit
    channels = int(g.get("in_channels", 3))
    return model, DataSpec(kind="image", channels=channels, image_size=256)


READERS = {"cyclegan": Reader(_read_cyclegan, _cyclegan_config)}
