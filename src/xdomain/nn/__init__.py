"""Shared network blocks that methods compose (conv-norm-act, spectral norm, ...)."""

from xdomain.nn.blocks import (
    conv_block,
    deconv_block,
    get_act,
    get_norm,
    init_weights,
    maybe_sn,
)

__all__ = ["conv_block", "deconv_block", "get_act", "get_norm", "init_weights", "maybe_sn"]
