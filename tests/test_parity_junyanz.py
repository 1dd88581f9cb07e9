"""CycleGAN/pix2pix parity: official ResnetGenerator / NLayerDiscriminator weights load into ours
and reproduce the official outputs; the converters absorb real-file quirks; bad files fail in one
line."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from parity import check_parity, load_fixture, official_state
from torch import nn

from xdomain.convert import junyanz
from xdomain.errors import CheckpointError
from xdomain.nn import PatchDiscriminator, ResnetGenerator

# constructor arguments from the manifest (ngf/ndf reduced to 8 there)
RESNET = {
    "cyclegan_resnet_9blocks_G": {"ngf": 8, "n_blocks": 9},
    "cyclegan_resnet_6blocks_G": {"ngf": 8, "n_blocks": 6},
}
PATCH = {
    "patchgan_basic_D_instance": {"ndf": 8, "n_layers": 3, "norm": "instance"},
    "patchgan_basic_D_batch": {"ndf": 8, "n_layers": 3, "norm": "batch"},
}


@pytest.mark.parametrize("name", sorted(RESNET))
def test_resnet_generator_parity(name):
    check_parity(name, lambda: ResnetGenerator(**RESNET[name]), junyanz.resnet_generator)


@pytest.mark.parametrize("name", sorted(PATCH))
def test_patch_discriminator_parity(name):
    check_parity(name, lambda: PatchDiscriminator(**PATCH[name]), junyanz.patch_discriminator)


@pytest.mark.parametrize("name", sorted(RESNET))
def test_infer_resnet_generator(name):
    state = official_state(load_fixture(name))
    want = {"in_channels": 3, "out_channels": 3, "norm": "instance", "dropout": False}
    assert junyanz.infer_resnet_generator(state) == {**want, **RESNET[name]}


@pytest.mark.parametrize("name", sorted(PATCH))
def test_infer_patch_discriminator(name):
    state = official_state(load_fixture(name))
    assert junyanz.infer_patch_discriminator(state) == {"in_channels": 3, **PATCH[name]}


def test_resnet_generator_any_size():
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=1).eval()
    for h, w in [(30, 45), (61, 17), (5, 9), (32, 48)]:
        with torch.no_grad():
            y = net(torch.rand(2, 3, h, w) * 2 - 1)
        assert y.shape == (2, 3, h, w) and torch.isfinite(y).all()


def test_stale_instance_norm_keys_and_data_parallel_prefix():
    state = official_state(load_fixture("cyclegan_resnet_9blocks_G"))
    want = junyanz.resnet_generator(state)
    old = dict(state)
    # what an old CycleGAN release holds at every InstanceNorm position
    norms = ["model.2", "model.5", "model.8", "model.20", "model.23"]
    norms += [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (2, 6)]
    for n in norms:
        old[f"{n}.running_mean"] = torch.zeros(1)
        old[f"{n}.running_var"] = torch.ones(1)
        old[f"{n}.num_batches_tracked"] = torch.tensor(0)
    wrapped = {f"module.{k}": v for k, v in old.items()}
    assert junyanz.infer_resnet_generator(wrapped)["n_blocks"] == 9
    got = junyanz.resnet_generator(wrapped)
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_missing_num_batches_tracked_is_added():
    state = official_state(load_fixture("patchgan_basic_D_batch"))
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    got = junyanz.patch_discriminator(old)
    assert got["downs.0.norm.num_batches_tracked"].dtype == torch.long
    assert int(got["refine.norm.num_batches_tracked"]) == 0
    PatchDiscriminator(ndf=8, norm="batch").load_state_dict(got, strict=True)


def test_unexpected_and_missing_keys_are_one_line_errors():
    state = official_state(load_fixture("patchgan_basic_D_instance"))
    with pytest.raises(CheckpointError, match=r"unexpected key 'model\.3\.weight'") as e:
        junyanz.patch_discriminator({**state, "model.3.weight": torch.ones(16)})
    assert "\n" not in str(e.value)
    partial = {k: v for k, v in state.items() if k != "model.5.bias"}
    with pytest.raises(CheckpointError, match=r"'model\.5\.bias' is missing"):
        junyanz.patch_discriminator(partial)
    with pytest.raises(CheckpointError, match=r"model\.1\.weight"):
        junyanz.resnet_generator(state)  # a discriminator is not a generator


def _official_resnet(ngf: int, n_blocks: int, norm: str, dropout: bool) -> nn.Sequential:
    """The official ResnetGenerator's positional layout (manifest key pattern), for the norm and
    dropout variants the fixtures do not cover."""

    def make_norm(c: int) -> nn.Module:
        return nn.BatchNorm2d(c) if norm == "batch" else nn.InstanceNorm2d(c)

    bias = norm == "instance"

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            layers = [nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=bias), make_norm(c)]
            layers += [nn.ReLU(True), *([nn.Dropout(0.5)] if dropout else [])]
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=bias), make_norm(c)]
            self.conv_block = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv_block(x)

    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU()]
    for m in (1, 2):
        layers += [nn.Conv2d(ngf * m, ngf * 2 * m, 3, 2, 1, bias=bias), make_norm(ngf * 2 * m)]
        layers += [nn.ReLU()]
    layers += [Block(4 * ngf) for _ in range(n_blocks)]
    for m in (4, 2):
        up = nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=bias)
        layers += [up, make_norm(ngf * m // 2), nn.ReLU()]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return nn.Sequential(OrderedDict(model=nn.Sequential(*layers)))  # keys "model.{i}..."


@pytest.mark.parametrize(
    ("norm", "dropout"), [("batch", True), ("batch", False), ("instance", True)]
)
def test_resnet_variants_convert(norm, dropout):
    torch.manual_seed(0)
    official = _official_resnet(4, 2, norm, dropout).eval()
    for m in official.modules():  # random BN statistics so that a misplaced key shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_(1, 0.3)
            m.bias.data.normal_()
    state = official.state_dict()
    kw = junyanz.infer_resnet_generator(state)
    assert kw == {
        "in_channels": 3,
        "out_channels": 3,
        "ngf": 4,
        "n_blocks": 2,
        "norm": norm,
        "dropout": dropout,
    }
    ours = ResnetGenerator(**kw).eval()
    ours.load_state_dict(junyanz.resnet_generator(state), strict=True)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), atol=1e-5, rtol=1e-5)


def test_read_official_round_trip_and_errors(tmp_path):
    state = official_state(load_fixture("patchgan_basic_D_batch"))
    pth = tmp_path / "latest_net_D_A.pth"
    torch.save(state, pth)
    got = junyanz.read_official(pth)
    assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)

    from safetensors.torch import save_file

    st = tmp_path / "net_D.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    assert junyanz.read_official(st).keys() == state.keys()

    for legacy in (False, True):
        cut = tmp_path / f"truncated_{legacy}.pth"
        torch.save(state, cut, _use_new_zipfile_serialization=not legacy)
        cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
        with pytest.raises(CheckpointError, match="truncated") as e:
            junyanz.read_official(cut)
        assert str(cut) in str(e.value) and "\n" not in str(e.value)

    with pytest.raises(CheckpointError, match="no such file"):
        junyanz.read_official(tmp_path / "absent.pth")
    notes = tmp_path / "notes.pth"
    torch.save({"epoch": 3, **state}, notes)
    with pytest.raises(CheckpointError, match="'epoch' holds a int"):
        junyanz.read_official(notes)
