"""DiscoGAN parity: the official Generator / Discriminator weights load into `xdomain.nn.encdec`
and reproduce the official outputs (images in [0, 1], sigmoid G; D's probability and its three
feature maps)."""

from __future__ import annotations

import pytest
import torch
from parity import check_parity, load_fixture, official_state

from xdomain.convert import discogan
from xdomain.errors import CheckpointError
from xdomain.nn import DiscoDiscriminator, DiscoGenerator


def d_forward(net, fx):
    """Our D in the official output form: (sigmoid(logit) as (B, 1, 1, 1), [features])."""
    logits, feats = net(fx["input"].clone())
    return torch.sigmoid(logits).view(-1, 1, 1, 1), feats


def test_generator_parity():
    check_parity("discogan_G", lambda: DiscoGenerator(final="sigmoid"), discogan.generator)


def test_discriminator_parity():
    check_parity("discogan_D", DiscoDiscriminator, discogan.discriminator, d_forward)


def test_infer_recovers_the_official_arguments():
    g = official_state(load_fixture("discogan_G"))
    d = official_state(load_fixture("discogan_D"))
    assert discogan.infer_generator(g) == {
        "in_channels": 3,
        "out_channels": 3,
        "image_size": 64,
        "base": 64,
        "final": "sigmoid",
    }
    assert discogan.infer_discriminator(d) == {"in_channels": 3, "image_size": 64, "base": 64}


def test_converters_take_module_prefix_and_pre_0_4_batchnorm():
    state = official_state(load_fixture("discogan_D"))
    old = {f"module.{k}": v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    got = discogan.discriminator(old)
    assert int(got["down.1.norm.num_batches_tracked"]) == 0
    DiscoDiscriminator().load_state_dict(got, strict=True)


def test_wrong_network_is_one_line_error():
    d = official_state(load_fixture("discogan_D"))
    with pytest.raises(CheckpointError, match=r"main\.0\.weight") as e:
        discogan.generator(d)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("size", [16, 32, 128])
def test_depth_follows_image_size(size):
    torch.manual_seed(0)
    g = DiscoGenerator(image_size=size, base=8, final="tanh")
    d = DiscoDiscriminator(image_size=size, base=8)
    x = torch.rand(2, 3, size, size)
    y = g(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    logits, feats = d(x)
    n_down = size.bit_length() - 3
    assert logits.shape == (2,) and len(feats) == n_down - 1
    assert feats[-1].shape[-2:] == (4, 4)
    # the official D's naming (conv1.., bn2..) generalised to this depth converts back
    named = {}
    for k, v in d.state_dict().items():
        stage, _, rest = k.partition(".")
        if stage == "head":
            named[f"conv{n_down + 1}.{rest.split('.', 1)[1]}"] = v
        else:
            i, layer, leaf = rest.split(".")
            named[f"{'conv' if layer == 'conv' else 'bn'}{int(i) + 1}.{leaf}"] = v
    assert discogan.infer_discriminator(named) == {"in_channels": 3, "image_size": size, "base": 8}
    back = discogan.discriminator(named)
    assert all(torch.equal(back[k], v) for k, v in d.state_dict().items())
