"""pix2pix parity: official UnetGenerator weights load into ours and reproduce the official
outputs in train and eval mode; the converter reads the architecture off the keys, absorbs
real-file quirks, and bad files fail in one line."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from parity import check_parity, load_fixture, official_state
from torch import nn

from xdomain.convert import bicyclegan
from xdomain.errors import CheckpointError
from xdomain.nn import UnetGenerator

NAME = "pix2pix_unet_128_G"
KW = {"num_downs": 7, "ngf": 8, "norm": "batch"}  # the manifest's arguments (unet_128)


def test_unet_generator_parity():
    check_parity(NAME, lambda: UnetGenerator(**KW), bicyclegan.unet_generator)


def test_infer_unet_generator():
    state = official_state(load_fixture(NAME))
    want = {"in_channels": 3, "out_channels": 3, "dropout": False, **KW}
    assert bicyclegan.infer_unet_generator(state) == want
    assert bicyclegan.role(state) == "G"
    assert bicyclegan.infer(state) == ("UnetGenerator", want)
    kind, kw, ours = bicyclegan.convert(state)
    net = bicyclegan.KINDS[kind](**kw)
    net.load_state_dict(ours, strict=True)


def test_unet_generator_other_sizes():
    torch.manual_seed(0)
    net = UnetGenerator(1, 2, num_downs=6, ngf=4, norm="instance").eval()
    with torch.no_grad():
        y = net(torch.rand(2, 1, 64, 64) * 2 - 1)
        assert y.shape == (2, 2, 64, 64) and torch.isfinite(y).all() and y.abs().max() <= 1
        y = net(torch.rand(1, 1, 128, 64) * 2 - 1)
    assert y.shape == (1, 2, 128, 64)
    with pytest.raises(ValueError, match="multiples of 64"):
        net(torch.zeros(1, 1, 96, 100))
    with pytest.raises(ValueError, match="num_downs must be >= 5"):
        UnetGenerator(num_downs=4)


def test_dropout_sits_in_the_middle_levels_and_leaves_keys_alone():
    torch.manual_seed(0)
    plain = UnetGenerator(num_downs=8, ngf=2)
    dropped = UnetGenerator(num_downs=8, ngf=2, dropout=True)
    levels = [i for i, up in enumerate(dropped.ups) if any(isinstance(m, nn.Dropout) for m in up)]
    assert levels == [4, 5, 6]  # the num_downs - 5 ngf*8 blocks, not the innermost
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(x), plain.eval()(x))


def test_old_files_convert_and_load_strictly():
    state = official_state(load_fixture(NAME))
    want = bicyclegan.unet_generator(state)
    # pre-0.4 BatchNorm (no num_batches_tracked), saved from inside nn.DataParallel
    old = {f"module.{k}": v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    got = bicyclegan.unet_generator(old)
    assert got.keys() == want.keys()
    assert int(got["downs.1.norm.num_batches_tracked"]) == 0
    UnetGenerator(**KW).load_state_dict(got, strict=True)


class _OfficialBlock(nn.Module):
    """The official UnetSkipConnectionBlock's layout and forward (in-place activations kept),
    for the instance-norm and dropout variants the fixture does not cover."""

    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(input_nc or outer, inner, 4, 2, 1)  # instance norm: bias=True
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1)]
            layers += [nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True)]
            layers += [nn.ConvTranspose2d(inner, outer, 4, 2, 1), nn.InstanceNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nn.InstanceNorm2d(inner), sub, nn.ReLU(True)]
            layers += [nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.InstanceNorm2d(outer)]
            layers += [nn.Dropout(0.5)] if outer == inner else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def test_instance_norm_variant_matches_the_official_layout():
    torch.manual_seed(0)
    ngf, num_downs = 2, 6
    block = _OfficialBlock(8 * ngf, 8 * ngf, innermost=True)
    for _ in range(num_downs - 5):
        block = _OfficialBlock(8 * ngf, 8 * ngf, sub=block)  # with dropout
    for m in (4, 2, 1):
        block = _OfficialBlock(ngf * m, 2 * ngf * m, sub=block)
    outer = _OfficialBlock(3, ngf, 3, sub=block, outermost=True)
    official = nn.Sequential(OrderedDict(model=outer)).eval()  # keys "model.model.{i}..."
    state = dict(official.state_dict())
    for name, m in official.named_modules():  # what old releases left at InstanceNorm layers
        if isinstance(m, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(m.num_features)
            state[f"{name}.running_var"] = torch.ones(m.num_features)
    kw = bicyclegan.infer_unet_generator(state)
    assert kw == {
        "in_channels": 3,
        "out_channels": 3,
        "num_downs": num_downs,
        "ngf": ngf,
        "norm": "instance",
        "dropout": False,
    }
    assert bicyclegan.infer(state)[0] == "UnetGenerator"
    ours = UnetGenerator(**{**kw, "dropout": True}).eval()
    ours.load_state_dict(bicyclegan.unet_generator(state), strict=True)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), atol=1e-5, rtol=1e-5)


def test_bad_files_are_one_line_errors(tmp_path):
    state = official_state(load_fixture(NAME))
    garbage = tmp_path / "latest_net_G.pth"
    garbage.write_bytes(b"not a checkpoint\n" * 20)
    with pytest.raises(CheckpointError) as e:
        bicyclegan.read_official(garbage)
    assert str(garbage) in str(e.value) and "\n" not in str(e.value)

    pth = tmp_path / "good_net_G.pth"
    torch.save(state, pth)
    assert bicyclegan.read_official(pth).keys() == state.keys()

    key = "model.model.1.model.3.model.5.weight"
    partial = {k: v for k, v in state.items() if k != key}
    with pytest.raises(CheckpointError, match="is missing") as e:
        bicyclegan.unet_generator(partial, source="latest_net_G.pth")
    assert str(e.value).startswith("latest_net_G.pth: ") and "\n" not in str(e.value)

    d_state = official_state(load_fixture("patchgan_basic_D_batch"))
    with pytest.raises(CheckpointError, match=r"model\.model\.0\.weight") as e:
        bicyclegan.unet_generator(d_state)
    assert "\n" not in str(e.value)

    # biases before batch norm: only BicycleGAN writes those
    biased = dict(state)
    biased["model.model.0.bias"] = torch.zeros(8)
    biased["model.model.1.model.1.bias"] = torch.zeros(16)
    with pytest.raises(CheckpointError, match="unet_z_generator") as e:
        bicyclegan.unet_generator(biased)
    assert "\n" not in str(e.value)
