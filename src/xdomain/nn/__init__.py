"""Shared network blocks that methods compose (conv-norm-act, spectral norm, ...) and the
reference architectures whose official checkpoints load through `xdomain.convert`."""

from xdomain.nn.bicyclegan import MultiScaleDiscriminator, NLayerEncoder, ResnetEncoder
from xdomain.nn.blocks import (
    conv_block,
    deconv_block,
    get_act,
    get_norm,
    init_weights,
    maybe_sn,
    xavier_init,
)
from xdomain.nn.encdec import DiscoDiscriminator, DiscoGenerator
from xdomain.nn.patchgan import PatchDiscriminator
from xdomain.nn.resnet import ResnetBlock, ResnetGenerator
from xdomain.nn.unet import UnetGenerator, UnetZGenerator

__all__ = [
    "DiscoDiscriminator",
    "DiscoGenerator",
    "MultiScaleDiscriminator",
    "NLayerEncoder",
    "PatchDiscriminator",
    "ResnetBlock",
    "ResnetEncoder",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetZGenerator",
    "conv_block",
    "deconv_block",
    "get_act",
    "get_norm",
    "init_weights",
    "maybe_sn",
    "xavier_init",
]
