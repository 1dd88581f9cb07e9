"""U-GAT-IT (znxlwm/UGATIT-pytorch) and Morph-UGATIT (shoutOutYangJie/Morph-UGATIT) checkpoints
-> xdomain networks.

The official networks name their layers by position (`DownBlock.12.conv_block.5.weight`,
`UpBlock2.3.rho`, `local_base.7.weight_orig`); the converters here rename them to ours
(`encoder_blocks.0.conv2.weight`, `up1.norm.rho`, `local_branch.downs.2.conv.weight_orig`)
through tables computed from the official layout, then check the result against our network
built on the meta device: every key present, every shape right, nothing left over. `infer_*`
reads the constructor arguments off the keys and shapes:

    nets = read_official("selfie2anime_params_1000000.pt")
    g = UGATITGenerator(**infer_generator(nets["genA2B"]))
    g.load_state_dict(generator(nets["genA2B"]))

Spectral norm: the official discriminators use the legacy `nn.utils.spectral_norm`
(`weight_orig` parameter, `weight_u` / `weight_v` buffers), and so do ours, so those three
leaves carry over unchanged, converged power-iteration vectors included.

Files are read with `torch.load(weights_only=True)` (`xdomain.convert.common`); every failure
is one `CheckpointError` line that names the file, the problem and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from xdomain.convert.common import (
    DEFAULT_SOURCE,
    conv_weight,
    load_weights_only,
    remap,
    strip_data_parallel,
)
from xdomain.convert.registry import Network, Reader, Shapes
from xdomain.data.types import DataSpec
from xdomain.errors import CheckpointError, short
from xdomain.nn.morph import (
    LayerInstanceNorm,
    MappingNetwork,
    MorphAdaLIN,
    MorphDiscriminator,
    MorphGenerator,
)
from xdomain.nn.ugatit import UGATITDiscriminator, UGATITGenerator

_G_WHAT = "an official U-GAT-IT ResnetGenerator"
_G_HINT = "DownBlock.*, gap_fc/gmp_fc/conv1x1, FC.*, gamma/beta, UpBlock1_*, UpBlock2.* keys"
_D_WHAT = "an official U-GAT-IT Discriminator"
_D_HINT = "model.{i}.weight_orig/weight_u/weight_v/bias, gap_fc/gmp_fc/conv.*, conv1x1.* keys"
_MLP_WHAT = "an official Morph-UGATIT MLP (mapping network)"
_MLP_HINT = "mlp.{1,4,7,...}.weight/bias keys"
_ADALIN_WHAT = "an official Morph-UGATIT AdaLIN"
_ADALIN_HINT = "rho, gamma.weight/bias, beta.weight/bias"
_LIN_WHAT = "an official Morph-UGATIT LayerInstanceNorm"
_LIN_HINT = "rho, gamma, beta"
_MD_WHAT = "an official Morph-UGATIT Discriminator"
_MD_HINT = "local_/global_ base.{i}.*, cam.*, head.1.* keys"
_MG_WHAT = "an official Morph-UGATIT Generator"
_MG_HINT = "encoder.*, cam_w, cam_bias, conv1x1.0.*, mlp.mlp.*, adain_resblocks.*, decoder.* keys"

# the entries of the official U-GAT-IT checkpoint (`UGATIT.save`), and of Morph-UGATIT's
UGATIT_NETWORKS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
MORPH_NETWORKS = ("G", "D_A", "D_B")


def _tensor(state: Mapping[str, Tensor], key: str, dim: int, source: str, what: str) -> Tensor:
    """`state[key]`, which must be a `dim`-D tensor, or a CheckpointError saying so."""
    t = state.get(key)
    if not isinstance(t, Tensor) or t.dim() != dim:
        found = "absent" if t is None else f"a {short(getattr(t, 'shape', type(t).__name__))}"
        raise CheckpointError(
            f"{source}: no {dim}-D tensor {key!r} ({found}), so this is not {what}; check that"
            " the file holds this network"
        )
    return t


def _indices(state: Mapping[str, Tensor], pattern: str) -> list[int]:
    """The sorted distinct integers that `pattern` (one group) captures from the keys."""
    return sorted({int(m[1]) for k in state if (m := re.fullmatch(pattern, k))})


def _check_layout(found: list[int], want: list[int], where: str, source: str, what: str) -> None:
    if found != want:
        raise CheckpointError(
            f"{source}: {where} layers at positions {found}, but {what} has them at {want};"
            " the file holds another network"
        )


def _remap_flat(
    state: Mapping[str, Tensor], net: nn.Module, what: str, hint: str, source: str
) -> dict[str, Tensor]:
    """`remap` for a network whose official keys are ours already (root-level parameters such
    as `rho` have no module path for a table): the same checks, names unchanged."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for key, value in state.items():
        if key not in expected:
            raise CheckpointError(
                f"{source}: unexpected key {short(key)} for {what} (expected {hint}); check that"
                " the file holds this network"
            )
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{source}: {key!r} holds a {type(value).__name__}, not a tensor; the file is"
                " not a state_dict"
            )
        if tuple(value.shape) != expected[key]:
            raise CheckpointError(
                f"{source}: {key!r} has shape {tuple(value.shape)}, but {what} with the"
                f" architecture read from the other keys needs {expected[key]}; the file mixes"
                " layers of different networks"
            )
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(
            f"{source}: key {missing[0]!r} is missing ({len(missing)} missing in all) for"
            f" {what}; the file is incomplete or holds another network"
        )
    return dict(state)


# ------------------------------------------------------------------------ U-GAT-IT generator


def _generator_prefixes(n_blocks: int) -> dict[str, str]:
    """Official module path -> ours. DownBlock: 0 pad, 1 conv, 2 IN, 3 relu | 4-7, 8-11 down
    (pad, conv, IN, relu) | 12.. residual blocks (pad, conv, IN, relu, pad, conv, IN).
    UpBlock2: 0 up, 1 pad, 2 conv, 3 ILN, 4 relu | 5-9 the same | 10 pad, 11 conv, 12 tanh."""
    table = {
        "DownBlock.1": "stem.conv",
        "DownBlock.5": "down1.conv",
        "DownBlock.9": "down2.conv",
        "gap_fc": "cam.gap_fc",
        "gmp_fc": "cam.gmp_fc",
        "conv1x1": "cam.fuse",
        "FC.0": "style.fc1",
        "FC.2": "style.fc2",
        "gamma": "style.gamma",
        "beta": "style.beta",
        "UpBlock2.2": "up1.conv",
        "UpBlock2.3": "up1.norm",
        "UpBlock2.7": "up2.conv",
        "UpBlock2.8": "up2.norm",
        "UpBlock2.11": "head.conv",
    }
    for b in range(n_blocks):
        table[f"DownBlock.{12 + b}.conv_block.1"] = f"encoder_blocks.{b}.conv1"
        table[f"DownBlock.{12 + b}.conv_block.5"] = f"encoder_blocks.{b}.conv2"
        for part in ("conv1", "norm1", "conv2", "norm2"):
            table[f"UpBlock1_{b + 1}.{part}"] = f"decoder_blocks.{b}.{part}"
    return table


def infer_generator(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """`UGATITGenerator` keyword arguments (in_channels, out_channels, ngf, n_blocks, light, and
    img_size for the full variant) read off an official `ResnetGenerator` state_dict.

    The light variant's weights do not depend on the image size, so no `img_size` is returned
    for it; the full one's first style layer reads (img_size / 4)**2 * 4 ngf features.
    """
    s = strip_data_parallel(state)
    stem = conv_weight(s, "DownBlock.1.weight", source, _G_WHAT, "the 7x7 input conv")
    ngf, in_channels = int(stem.shape[0]), int(stem.shape[1])
    encoder = _indices(s, r"DownBlock\.(\d+)\.conv_block\..+")
    n_blocks = len(encoder)
    _check_layout(encoder, list(range(12, 12 + n_blocks)), "residual", source, _G_WHAT)
    decoder = _indices(s, r"UpBlock1_(\d+)\..+")
    _check_layout(decoder, list(range(1, n_blocks + 1)), "AdaILN residual", source, _G_WHAT)
    head = conv_weight(s, "UpBlock2.11.weight", source, _G_WHAT, "the 7x7 output conv")
    c = 4 * ngf
    fc_in = int(_tensor(s, "FC.0.weight", 2, source, _G_WHAT).shape[1])
    kw: dict[str, Any] = {
        "in_channels": in_channels,
        "out_channels": int(head.shape[0]),
        "ngf": ngf,
        "n_blocks": n_blocks,
    }
    # light: FC.0 reads the pooled C features; full: the flattened (C, img/4, img/4) map (an
    # img_size of 4 would read C too, but such a net cannot run: its blocks pad a 1x1 map)
    if fc_in == c:
        return {**kw, "light": True}
    side = math.isqrt(fc_in // c) if fc_in % c == 0 else 0
    if side < 2 or side * side * c != fc_in:
        raise CheckpointError(
            f"{source}: FC.0.weight reads {fc_in} features, which is neither {c} (light) nor"
            f" (img_size / 4)**2 * {c} (full) for {_G_WHAT} with ngf={ngf}; the file mixes"
            " layers of different networks"
        )
    return {**kw, "img_size": 4 * side, "light": False}


def generator(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Tensor]:
    """An official U-GAT-IT `ResnetGenerator` state_dict -> ours (load with `strict=True`)."""
    kw = infer_generator(state, source=source)
    with torch.device("meta"):  # shapes only: no memory, no init
        net = UGATITGenerator(**kw)
    table = _generator_prefixes(kw["n_blocks"])
    return remap(strip_data_parallel(state), table, net, _G_WHAT, _G_HINT, source)


# -------------------------------------------------------------------- U-GAT-IT discriminator


def _discriminator_prefixes(n_layers: int) -> dict[str, str]:
    """Official module path -> ours: `model` is (pad, conv, lrelu) triplets, n_layers - 2 of
    stride 2 and one of stride 1; `conv` is the output conv after `pad`."""
    n_down = n_layers - 2
    table = {f"model.{1 + 3 * k}": f"downs.{k}.conv" for k in range(n_down)}
    table[f"model.{1 + 3 * n_down}"] = "refine.conv"
    table |= {"gap_fc": "cam.gap_fc", "gmp_fc": "cam.gmp_fc", "conv1x1": "cam.fuse"}
    table["conv"] = "head.conv"
    return table


def infer_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`UGATITDiscriminator` keyword arguments (in_channels, ndf, n_layers) read off an official
    `Discriminator` state_dict: n_layers is the number of convs in `model` plus one."""
    s = strip_data_parallel(state)
    first = _tensor(s, "model.1.weight_orig", 4, source, _D_WHAT)
    convs = _indices(s, r"model\.(\d+)\.weight_orig")
    _check_layout(convs, [1 + 3 * k for k in range(len(convs))], "conv", source, _D_WHAT)
    if len(convs) < 2:
        raise CheckpointError(
            f"{source}: {len(convs)} conv in `model`, but {_D_WHAT} has at least 2 (n_layers"
            " >= 3); the file holds another network"
        )
    return {
        "in_channels": int(first.shape[1]),
        "ndf": int(first.shape[0]),
        "n_layers": len(convs) + 1,
    }


def discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official U-GAT-IT `Discriminator` state_dict -> ours (load with `strict=True`)."""
    kw = infer_discriminator(state, source=source)
    with torch.device("meta"):
        net = UGATITDiscriminator(**kw)
    table = _discriminator_prefixes(kw["n_layers"])
    return remap(strip_data_parallel(state), table, net, _D_WHAT, _D_HINT, source)


# ------------------------------------------------------------------ Morph-UGATIT parts


def _mlp_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The MLP's own keys: `mlp.{i}.*` as saved alone, or `mlp.mlp.{i}.*` as in a generator
    checkpoint (only those keys are kept then)."""
    s = strip_data_parallel(state)
    if any(k.startswith("mlp.mlp.") for k in s):
        return {k[len("mlp.") :]: v for k, v in s.items() if k.startswith("mlp.mlp.")}
    return s


def infer_morph_mapping(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`MappingNetwork` keyword arguments (in_features, dim, n_layers) read off an official
    Morph-UGATIT `MLP` state_dict (or a generator's, whose `mlp.mlp.*` keys are used)."""
    s = _mlp_state(state)
    first = _tensor(s, "mlp.1.weight", 2, source, _MLP_WHAT)
    linears = _indices(s, r"mlp\.(\d+)\.weight")
    _check_layout(linears, [1 + 3 * k for k in range(len(linears))], "Linear", source, _MLP_WHAT)
    return {
        "in_features": int(first.shape[1]),
        "dim": int(first.shape[0]),
        "n_layers": len(linears),
    }


def morph_mapping(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official Morph-UGATIT `MLP` state_dict -> our `MappingNetwork`'s. The Sequential is
    PixelNorm, then [Linear, LeakyReLU, PixelNorm] per layer (no LeakyReLU after the last), so
    the Linear layers sit at 1, 4, 7, ..."""
    kw = infer_morph_mapping(state, source=source)
    with torch.device("meta"):
        net = MappingNetwork(**kw)
    table = {f"mlp.{1 + 3 * k}": f"fcs.{k}" for k in range(kw["n_layers"])}
    return remap(_mlp_state(state), table, net, _MLP_WHAT, _MLP_HINT, source)


def infer_morph_adalin(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`MorphAdaLIN` keyword arguments (z_dim) read off an official `AdaLIN` state_dict."""
    gamma = _tensor(strip_data_parallel(state), "gamma.weight", 2, source, _ADALIN_WHAT)
    return {"z_dim": int(gamma.shape[1])}


def morph_adalin(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Tensor]:
    """An official Morph-UGATIT `AdaLIN` state_dict -> ours (the same names, checked)."""
    kw = infer_morph_adalin(state, source=source)
    with torch.device("meta"):
        net = MorphAdaLIN(**kw)
    return _remap_flat(strip_data_parallel(state), net, _ADALIN_WHAT, _ADALIN_HINT, source)


def infer_morph_lin(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """`LayerInstanceNorm` keyword arguments (channels) read off an official state_dict."""
    rho = _tensor(strip_data_parallel(state), "rho", 4, source, _LIN_WHAT)
    return {"channels": int(rho.shape[1])}


def morph_lin(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Tensor]:
    """An official Morph-UGATIT `LayerInstanceNorm` state_dict -> ours (same names, checked)."""
    kw = infer_morph_lin(state, source=source)
    with torch.device("meta"):
        net = LayerInstanceNorm(**kw)
    return _remap_flat(strip_data_parallel(state), net, _LIN_WHAT, _LIN_HINT, source)


def _morph_discriminator_prefixes(n_blocks: int) -> dict[str, str]:
    """Official module path -> ours. Each `*_base` is (pad, conv, lrelu) triplets, the last of
    stride 1; `*_cam` is the (spectrally normed) CAM with `conv1x1` = Sequential(conv, lrelu);
    `*_head` is (pad, conv)."""
    table: dict[str, str] = {}
    for official, ours, n_convs in (
        ("local", "local_branch", n_blocks - 2),
        ("global", "global_branch", n_blocks),
    ):
        for k in range(n_convs - 1):
            table[f"{official}_base.{1 + 3 * k}"] = f"{ours}.downs.{k}.conv"
        table[f"{official}_base.{1 + 3 * (n_convs - 1)}"] = f"{ours}.refine.conv"
        table[f"{official}_cam"] = f"{ours}.cam"
        table[f"{official}_cam.conv1x1.0"] = f"{ours}.cam.fuse.0"
        table[f"{official}_head.1"] = f"{ours}.head.conv"
    return table


def infer_morph_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`MorphDiscriminator` keyword arguments (in_channels, ndf, n_blocks) read off an official
    Morph-UGATIT `Discriminator` state_dict: n_blocks convs in the global base, two fewer in
    the local one."""
    s = strip_data_parallel(state)
    first = _tensor(s, "global_base.1.weight_orig", 4, source, _MD_WHAT)
    n_blocks = len(_indices(s, r"global_base\.(\d+)\.weight_orig"))
    for branch, n in (("global", n_blocks), ("local", n_blocks - 2)):
        convs = _indices(s, rf"{branch}_base\.(\d+)\.weight_orig")
        _check_layout(
            convs, [1 + 3 * k for k in range(max(n, 0))], f"{branch}_base conv", source, _MD_WHAT
        )
    if n_blocks < 4:
        raise CheckpointError(
            f"{source}: {n_blocks} convs in global_base, but {_MD_WHAT} has at least 4; the"
            " file holds another network"
        )
    return {"in_channels": int(first.shape[1]), "ndf": int(first.shape[0]), "n_blocks": n_blocks}


def morph_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official Morph-UGATIT `Discriminator` state_dict -> ours (load with `strict=True`)."""
    kw = infer_morph_discriminator(state, source=source)
    with torch.device("meta"):
        net = MorphDiscriminator(**kw)
    table = _morph_discriminator_prefixes(kw["n_blocks"])
    return remap(strip_data_parallel(state), table, net, _MD_WHAT, _MD_HINT, source)


def _morph_generator_prefixes(n_blocks: int) -> dict[str, str]:
    """Official module path -> ours. `encoder`: 0 pad, 1 conv, 2 IN, 3 relu | 4-6, 7-9 down
    (conv, IN, relu) | 10.. ResnetBlocks (`conv_block`: pad, conv, IN, relu, pad, conv, IN).
    `decoder`: 0 up, 1 pad, 2 conv, 3 LIN, 4 relu | 5 pad, 6 conv, 7 LIN, 8 relu | 9-17 the
    same at half width | 18 pad, 19 conv, 20 tanh. The root parameters `cam_w`, `cam_bias`
    are renamed before this table applies (see `_MORPH_ROOT_KEYS`)."""
    table = {
        "encoder.1": "stem.conv",
        "encoder.2": "stem.norm",
        "encoder.4": "down1.conv",
        "encoder.5": "down1.norm",
        "encoder.7": "down2.conv",
        "encoder.8": "down2.norm",
        "cam": "cam",
        "conv1x1.0": "cam.fuse.0",
        "decoder.2": "up1.conv",
        "decoder.3": "up1.norm",
        "decoder.6": "refine1.conv",
        "decoder.7": "refine1.norm",
        "decoder.11": "up2.conv",
        "decoder.12": "up2.norm",
        "decoder.15": "refine2.conv",
        "decoder.16": "refine2.norm",
        "decoder.19": "head.conv",
    }
    table |= {f"mlp.mlp.{1 + 3 * k}": f"mapping.fcs.{k}" for k in range(8)}
    for b in range(n_blocks):
        official, ours = f"encoder.{10 + b}.conv_block", f"encoder_blocks.{b}"
        table |= {
            f"{official}.1": f"{ours}.conv1",
            f"{official}.2": f"{ours}.norm1",
            f"{official}.5": f"{ours}.conv2",
            f"{official}.6": f"{ours}.norm2",
        }
        official, ours = f"adain_resblocks.{b}", f"decoder_blocks.{b}"
        table |= {f"{official}.conv1.1": f"{ours}.conv1", f"{official}.conv2.1": f"{ours}.conv2"}
        for k in (1, 2):
            norm = f"{ours}.norm{k}"
            table[f"{official}.addin_{k}"] = norm
            table[f"{official}.addin_{k}.gamma"] = f"{norm}.gamma"
            table[f"{official}.addin_{k}.beta"] = f"{norm}.beta"
    return table


# the generator's CAM parameters sit on the official root module, which a module-path table
# cannot address; they become our `cam` module's leaves first
_MORPH_ROOT_KEYS = {"cam_w": "cam.weight", "cam_bias": "cam.cam_bias"}


def infer_morph_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`MorphGenerator` keyword arguments (in_channels, out_channels, ngf, n_blocks, z_dim) read
    off an official Morph-UGATIT `Generator` state_dict: z_dim is half the mapping network's
    input width, n_blocks the number of AdaLIN residual blocks (and of encoder ResnetBlocks)."""
    s = strip_data_parallel(state)
    stem = conv_weight(s, "encoder.1.weight", source, _MG_WHAT, "the 7x7 input conv")
    head = conv_weight(s, "decoder.19.weight", source, _MG_WHAT, "the 7x7 output conv")
    _tensor(s, "cam_w", 2, source, _MG_WHAT)
    _tensor(s, "cam_bias", 1, source, _MG_WHAT)
    mlp_in = int(_tensor(s, "mlp.mlp.1.weight", 2, source, _MG_WHAT).shape[1])
    if mlp_in % 2:
        raise CheckpointError(
            f"{source}: mlp.mlp.1.weight reads {mlp_in} features, but {_MG_WHAT} reads"
            " 2 * z_dim (an even number); the file mixes layers of different networks"
        )
    adain = _indices(s, r"adain_resblocks\.(\d+)\..+")
    n_blocks = len(adain)
    _check_layout(adain, list(range(n_blocks)), "AdaLIN residual", source, _MG_WHAT)
    encoder = _indices(s, r"encoder\.(\d+)\.conv_block\..+")
    _check_layout(encoder, list(range(10, 10 + n_blocks)), "encoder residual", source, _MG_WHAT)
    return {
        "in_channels": int(stem.shape[1]),
        "out_channels": int(head.shape[0]),
        "ngf": int(stem.shape[0]),
        "n_blocks": n_blocks,
        "z_dim": mlp_in // 2,
    }


def morph_generator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official Morph-UGATIT `Generator` state_dict (the checkpoint's `G`) -> our
    `MorphGenerator`'s (load with `strict=True`). Official generators all have ngf=64: the
    official AdaLIN and mapping network are 256 wide."""
    kw = infer_morph_generator(state, source=source)
    with torch.device("meta"):
        net = MorphGenerator(**kw)
    s = {_MORPH_ROOT_KEYS.get(k, k): v for k, v in strip_data_parallel(state).items()}
    table = _morph_generator_prefixes(kw["n_blocks"])
    return remap(s, table, net, _MG_WHAT, _MG_HINT, source)


# ---------------------------------------------------------------------------- file readers


def _read_bundle(
    path: str | Path, names: tuple[str, ...], what: str, optional: tuple[str, ...] = ()
) -> dict[str, dict[str, Tensor]]:
    """A `torch.save` of {name: state_dict} as {name: {key: tensor}}, every entry of `names`
    required and those of `optional` read where present; other entries are ignored."""
    path = Path(path)
    obj = load_weights_only(path, what=what)
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not {what} (a dict with entries"
            f" {', '.join(names)}); pass the checkpoint the official training script saved"
        )
    missing = [n for n in names if n not in obj]
    if missing:
        found = ", ".join(short(k, 30) for k in list(obj)[:8]) or "nothing"
        raise CheckpointError(
            f"{path}: no entry {missing[0]!r} ({len(missing)} of {len(names)} missing; found"
            f" {found}), so this is not {what}; a single network's state_dict goes straight to"
            " the converters"
        )
    out: dict[str, dict[str, Tensor]] = {}
    for name in (*names, *(n for n in optional if n in obj)):
        state = obj[name]
        if not isinstance(state, Mapping):
            raise CheckpointError(
                f"{path}: entry {name!r} holds a {type(state).__name__}, not a state_dict, so"
                f" this is not {what}"
            )
        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, Tensor):
                raise CheckpointError(
                    f"{path}: {name}[{short(key)}] holds a {type(value).__name__}, not a"
                    f" tensor, so this is not {what}"
                )
        out[name] = dict(state)
    return out


def read_official(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """An official U-GAT-IT checkpoint (`<dataset>_params_<step>.pt`: one `torch.save` of
    {genA2B, genB2A, disGA, disGB, disLA, disLB: state_dict}) as {name: state_dict}, read
    without a plain unpickle. genA2B translates A -> B; disGA / disLA judge domain A."""
    return _read_bundle(path, UGATIT_NETWORKS, "an official U-GAT-IT checkpoint")


def read_morph_official(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """An official Morph-UGATIT checkpoint ({G, D_A, D_B: state_dict}; the training script
    saves the Ds beside G, a test-time file may hold G alone) as {name: state_dict}: G through
    `morph_generator`, D_A and D_B through `morph_discriminator`. The official D_A judges
    domain B (it sees G's A -> B output), D_B domain A."""
    return _read_bundle(
        path, MORPH_NETWORKS[:1], "an official Morph-UGATIT checkpoint", MORPH_NETWORKS[1:]
    )


# ------------------------------------------------------------- --from ugatit / morph-ugatit

# our network names for the six entries of an official U-GAT-IT checkpoint: disGA / disLA
# judge domain A
UGATIT_ROLES = {
    "genA2B": "G_ab",
    "genB2A": "G_ba",
    "disGA": "D_a",
    "disGB": "D_b",
    "disLA": "D_a_local",
    "disLB": "D_b_local",
}
# and of an official Morph-UGATIT checkpoint: G is the one generator, the reference's D_A
# judges the A -> B output (domain B), D_B domain A; a file of G alone leaves both Ds untrained
MORPH_ROLES = {"G": "G", "D_A": "D_b", "D_B": "D_a"}


def _read_ugatit(path: Path) -> list[Network]:
    bundle, src = read_official(path), str(path)
    out: list[Network] = []
    for key, role in UGATIT_ROLES.items():
        st = bundle[key]
        if role.startswith("G"):
            out.append((role, generator(st, source=src), infer_generator(st, source=src)))
        else:
            d = discriminator(st, source=src)
            out.append((role, d, infer_discriminator(st, source=src)))
    return out


def _read_morph(path: Path) -> list[Network]:
    bundle, src = read_morph_official(path), str(path)
    out: list[Network] = []
    for key, st in bundle.items():
        if key == "G":
            net = (morph_generator(st, source=src), infer_morph_generator(st, source=src))
        else:
            net = (morph_discriminator(st, source=src), infer_morph_discriminator(st, source=src))
        out.append((MORPH_ROLES[key], *net))
    return out


def _ugatit_config(cls: Callable[..., Any], shapes: Shapes) -> tuple[Any, DataSpec]:
    g, d = shapes.g, shapes.d
    size = int(g.get("img_size", 256))  # a light generator does not record its size
    model = cls(
        ngf=g["ngf"],
        n_blocks=g["n_blocks"],
        light=bool(g.get("light", False)),
        ndf=d.get("ndf", 64),
        n_layers_global=shapes.get("D_a").get("n_layers", 7),
        n_layers_local=shapes.get("D_a_local").get("n_layers", 5),
    )
    return model, DataSpec(kind="image", channels=int(g.get("in_channels", 3)), image_size=size)


def _morph_config(cls: Callable[..., Any], shapes: Shapes) -> tuple[Any, DataSpec]:
    g, d = shapes.g, shapes.d
    model = cls(
        ngf=g["ngf"],
        n_blocks=g["n_blocks"],
        z_dim=g["z_dim"],
        ndf=d.get("ndf", 64),
        n_blocks_d=d.get("n_blocks", 6),
    )
    # the reference trains on 256 px (load_size); the generator itself takes any multiple
    # of 4, the converted run translates at 256 like the reference's test script
    channels = int(g.get("in_channels", 3))
    return model, DataSpec(kind="image", channels=channels, image_size=256)


READERS = {
    "ugatit": Reader(_read_ugatit, _ugatit_config),
    "morph-ugatit": Reader(_read_morph, _morph_config),
}
