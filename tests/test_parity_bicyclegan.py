"""BicycleGAN parity: official G_Unet_add_all, E_ResNet and D_NLayersMulti weights load into
ours and reproduce the official outputs; the variants the fixtures do not cover (G_Unet_add_input,
batch/no norm, bilinear upsampling, E_NLayers) match re-statements of the official layouts; the
converters read the architecture off the keys, and bad files fail in one line."""

from __future__ import annotations

import functools

import pytest
import torch
from parity import check_parity, load_fixture, official_state, outputs
from torch import nn

from xdomain.convert import bicyclegan
from xdomain.errors import CheckpointError
from xdomain.nn import (
    MultiScaleDiscriminator,
    NLayerEncoder,
    PatchDiscriminator,
    ResnetEncoder,
    UnetZGenerator,
)

# constructor arguments from the manifest (widths reduced to 8 there)
G_NAME, G_KW = "bicyclegan_G_unet_128_add_all", {"nz": 8, "num_downs": 7, "ngf": 8}
E_NAME, E_KW = "bicyclegan_E_resnet_256", {"nz": 8, "ndf": 8, "n_blocks": 5}
D_NAME, D_KW = "bicyclegan_D_basic_256_multi", {"ndf": 8, "n_layers": 3, "num_d": 2}


def _with_z(net, fx):
    return net(fx["input"].clone(), fx["z"].clone())


def test_unet_z_generator_parity():
    build = functools.partial(UnetZGenerator, where_add="all", **G_KW)
    check_parity(G_NAME, build, bicyclegan.unet_z_generator, forward=_with_z)


def test_resnet_encoder_parity():
    check_parity(E_NAME, lambda: ResnetEncoder(**E_KW), bicyclegan.resnet_encoder)


def test_multiscale_discriminator_parity():
    check_parity(
        D_NAME, lambda: MultiScaleDiscriminator(**D_KW), bicyclegan.multiscale_discriminator
    )


def test_infer_and_role():
    g = official_state(load_fixture(G_NAME))
    g_kw = {"in_channels": 3, "out_channels": 3, "norm": "instance", "nl": "relu", **G_KW}
    g_kw |= {"dropout": False, "where_add": "all", "upsample": "basic"}
    assert bicyclegan.infer_unet_z_generator(g) == g_kw
    e = official_state(load_fixture(E_NAME))
    e_kw = {"in_channels": 3, "norm": "instance", "nl": "lrelu", "vae_like": True, **E_KW}
    assert bicyclegan.infer_resnet_encoder(e) == e_kw
    d = official_state(load_fixture(D_NAME))
    d_kw = {"in_channels": 3, "norm": "instance", **D_KW}
    assert bicyclegan.infer_multiscale_discriminator(d) == d_kw
    assert [bicyclegan.role(s) for s in (g, e, d)] == ["G", "E", "D"]
    assert bicyclegan.infer(g) == ("UnetZGenerator", g_kw)
    assert bicyclegan.infer(e) == ("ResnetEncoder", e_kw)
    assert bicyclegan.infer(d) == ("MultiScaleDiscriminator", d_kw)
    others = {"cyclegan_resnet_6blocks_G": "ResnetGenerator", "patchgan_basic_D_batch": "Patch"}
    for name, kind in others.items():
        assert bicyclegan.infer(official_state(load_fixture(name)))[0].startswith(kind)


def test_single_scale_discriminator_file():
    """A `model.*` D (D_NLayersMulti with num_D=1) is scale 0 of the fixture; as a one-scale
    MultiScaleDiscriminator or (the same net) a PatchDiscriminator it gives output 0."""
    fx = load_fixture(D_NAME)
    state = {
        "model." + k.split(".", 1)[1]: v
        for k, v in official_state(fx).items()
        if k.startswith("model_0.")
    }
    want = outputs(fx, "eval")[0]
    kw = {"in_channels": 3, "ndf": 8, "n_layers": 3, "norm": "instance", "num_d": 1}
    assert bicyclegan.infer(state, family="bicyclegan") == ("MultiScaleDiscriminator", kw)
    for family in ("bicyclegan", None):
        kind, kw, ours = bicyclegan.convert(state, family=family)
        net = bicyclegan.KINDS[kind](**kw).eval()
        net.load_state_dict(ours, strict=True)
        with torch.no_grad():
            got = net(fx["input"].clone())
        got = got[0] if isinstance(got, list) else got
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert bicyclegan.infer(state)[0] == "PatchDiscriminator"


def test_other_sizes_and_inputs():
    torch.manual_seed(0)
    x, z = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 8)
    for where in ("input", "all"):
        net = UnetZGenerator(nz=8, num_downs=6, ngf=2, where_add=where).eval()
        with torch.no_grad():
            y = net(x, z)
        assert y.shape == (2, 3, 64, 64) and torch.isfinite(y).all()
        with pytest.raises(ValueError, match=r"z must have shape \(2, 8\)"):
            net(x, torch.randn(2, 4))
    plain = UnetZGenerator(nz=0, num_downs=6, ngf=2).eval()
    assert plain(x).shape == (2, 3, 64, 64)
    enc = ResnetEncoder(nz=4, ndf=4, n_blocks=4).eval()  # resnet_128
    mu, logvar = enc(torch.rand(2, 3, 128, 128))
    assert mu.shape == logvar.shape == (2, 4)
    with pytest.raises(ValueError, match="128x128"):
        enc(torch.rand(1, 3, 256, 256))
    mu = ResnetEncoder(nz=4, ndf=4, n_blocks=4, vae_like=False)(torch.rand(1, 3, 128, 128))
    assert isinstance(mu, torch.Tensor) and mu.shape == (1, 4)
    assert NLayerEncoder(nz=4, ndf=4, n_layers=4)(torch.rand(1, 3, 128, 128))[0].shape == (1, 4)
    one = MultiScaleDiscriminator(ndf=4, n_layers=3, num_d=1)(x)
    assert isinstance(one, list) and [o.shape for o in one] == [(2, 1, 6, 6)]
    three = MultiScaleDiscriminator(ndf=10, n_layers=2, num_d=3, norm="none")(x)
    assert [o.shape[-1] for o in three] == [14, 6, 2]


# ------------------------------------------------------- re-statements of the official layouts


def _norm_layer(norm):  # the official get_norm_layer
    return {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "none": None}[norm]


def _nl_layer(nl):  # the official get_non_linearity (in place)
    if nl == "relu":
        return functools.partial(nn.ReLU, inplace=True)
    return functools.partial(nn.LeakyReLU, negative_slope=0.2, inplace=True)


def _up_layers(c_in, c_out, upsample):  # the official upsampleLayer
    if upsample == "basic":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
    pad = nn.ReflectionPad2d(1)
    return [nn.Upsample(scale_factor=2, mode="bilinear"), pad, nn.Conv2d(c_in, c_out, 3)]


def _randomize(net):
    """Random BN statistics and affine parameters, so that a misplaced key shows."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_(1, 0.3)
            m.bias.data.normal_()
    return net.eval()


class _UnetBlock(nn.Module):
    """The official UnetBlock (G_Unet_add_input), padding 'zero'."""

    def __init__(self, in_nc, outer, inner, sub=None, outermost=False, innermost=False, **kw):
        super().__init__()
        norm, nl, upsample = kw["norm"], kw["nl"], kw["upsample"]
        self.outermost = outermost
        down = [nn.Conv2d(in_nc, inner, 4, 2, 1)]
        n_out = [norm(outer)] if norm else []
        if outermost:
            layers = [*down, sub, nl(), *_up_layers(2 * inner, outer, upsample), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), *down, nl(), *_up_layers(inner, outer, upsample)]
            layers += n_out
        else:
            layers = [nn.LeakyReLU(0.2, True), *down, *([norm(inner)] if norm else []), sub, nl()]
            layers += [*_up_layers(2 * inner, outer, upsample), *n_out]
            layers += [nn.Dropout(0.5)] if kw.get("dropout") else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([self.model(x), x], 1)


class _ZBlock(nn.Module):
    """The official UnetBlock_with_z (G_Unet_add_all), padding 'zero'."""

    def __init__(self, in_nc, outer, inner, nz, sub=None, outermost=False, innermost=False, **kw):
        super().__init__()
        norm, nl, upsample = kw["norm"], kw["nl"], kw["upsample"]
        self.outermost, self.innermost, self.nz = outermost, innermost, nz
        conv = nn.Conv2d(in_nc + nz, inner, 4, 2, 1)
        if outermost:
            down, up = [conv], [nl(), *_up_layers(2 * inner, outer, upsample), nn.Tanh()]
        elif innermost:
            down, up = [nn.LeakyReLU(0.2, True), conv], [nl(), *_up_layers(inner, outer, upsample)]
            up += [norm(outer)] if norm else []
        else:
            down = [nn.LeakyReLU(0.2, True), conv, *([norm(inner)] if norm else [])]
            up = [nl(), *_up_layers(2 * inner, outer, upsample), *([norm(outer)] if norm else [])]
            up += [nn.Dropout(0.5)] if kw.get("dropout") else []
        self.down, self.submodule, self.up = nn.Sequential(*down), sub, nn.Sequential(*up)

    def forward(self, x, z):
        b, _, h, w = x.shape
        x_and_z = torch.cat([x, z.view(b, -1, 1, 1).expand(b, self.nz, h, w)], 1) if self.nz else x
        if self.outermost:
            return self.up(self.submodule(self.down(x_and_z), z))
        if self.innermost:
            return torch.cat([self.up(self.down(x_and_z)), x], 1)
        return torch.cat([self.up(self.submodule(self.down(x_and_z), z)), x], 1)


class _OfficialG(nn.Module):
    """G_Unet_add_input / G_Unet_add_all, keys "model...."."""

    def __init__(self, where_add, nz, num_downs, ngf, norm, nl, upsample, dropout=False):
        super().__init__()
        self.nz, self.where_add = nz, where_add
        kw = {"norm": _norm_layer(norm), "nl": _nl_layer(nl), "upsample": upsample}
        c8 = 8 * ngf
        if where_add == "input":
            b = _UnetBlock(c8, c8, c8, innermost=True, **kw)
            for _ in range(num_downs - 5):
                b = _UnetBlock(c8, c8, c8, b, dropout=dropout, **kw)
            for m in (4, 2, 1):
                b = _UnetBlock(ngf * m, ngf * m, 2 * ngf * m, b, **kw)
            self.model = _UnetBlock(3 + nz, 3, ngf, b, outermost=True, **kw)
        else:
            b = _ZBlock(c8, c8, c8, nz, innermost=True, **kw)
            for _ in range(num_downs - 5):  # one unconditional block + num_downs - 6
                b = _ZBlock(c8, c8, c8, nz, b, dropout=dropout, **kw)
            for m in (4, 2, 1):
                b = _ZBlock(ngf * m, ngf * m, 2 * ngf * m, nz, b, **kw)
            self.model = _ZBlock(3, 3, ngf, nz, b, outermost=True, **kw)

    def forward(self, x, z):
        if self.where_add == "all":
            return self.model(x, z)
        if self.nz:
            b, _, h, w = x.shape
            x = torch.cat([x, z.view(b, self.nz, 1, 1).expand(b, self.nz, h, w)], 1)
        return self.model(x)


G_VARIANTS = [
    # where_add, nz, num_downs, norm, nl, upsample
    ("input", 3, 6, "batch", "relu", "basic"),
    ("input", 2, 6, "none", "lrelu", "bilinear"),
    ("input", 0, 5, "instance", "lrelu", "basic"),
    ("all", 2, 6, "batch", "lrelu", "bilinear"),
    ("all", 3, 7, "instance", "lrelu", "basic"),
]


@pytest.mark.parametrize(("where_add", "nz", "num_downs", "norm", "nl", "upsample"), G_VARIANTS)
def test_unet_z_variants_match_the_official_layout(where_add, nz, num_downs, norm, nl, upsample):
    torch.manual_seed(0)
    official = _randomize(_OfficialG(where_add, nz, num_downs, 2, norm, nl, upsample, True))
    state = official.state_dict()
    kw = bicyclegan.infer_unet_z_generator(state)
    want = {"in_channels": 3, "out_channels": 3, "nz": nz, "num_downs": num_downs, "ngf": 2}
    want |= {"norm": norm, "nl": "relu", "dropout": False, "where_add": where_add}
    assert kw == {**want, "upsample": upsample}
    family = "bicyclegan" if (norm, nz) == ("instance", 0) else None  # else the keys decide
    assert bicyclegan.infer(state, family=family) == ("UnetZGenerator", kw)
    if family:
        assert bicyclegan.infer(state)[0] == "UnetGenerator"  # same keys as pix2pix's
    ours = _randomize(UnetZGenerator(**{**kw, "nl": nl}))
    ours.load_state_dict(bicyclegan.unet_z_generator(state), strict=True)
    size = 2**num_downs
    x, z = torch.rand(2, 3, size, size) * 2 - 1, torch.randn(2, max(nz, 1))[:, :nz]
    with torch.no_grad():
        torch.testing.assert_close(ours(x, z), official(x, z), atol=1e-5, rtol=1e-5)


class _BasicBlock(nn.Module):  # the official BasicBlock
    def __init__(self, c_in, c_out, norm, nl):
        super().__init__()
        layers = [*([norm(c_in)] if norm else []), nl(), nn.Conv2d(c_in, c_in, 3, 1, 1)]
        layers += [*([norm(c_in)] if norm else []), nl()]
        layers += [nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.AvgPool2d(2, 2))]
        self.conv = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x):
        return self.conv(x) + self.shortcut(x)


class _OfficialE(nn.Module):
    """E_ResNet (kind "resnet") or E_NLayers (kind "conv"), nl forced to LeakyReLU(0.2)."""

    def __init__(self, kind, nz, ndf, depth, norm, vae_like):
        super().__init__()
        norm_layer, nl = _norm_layer(norm), _nl_layer("lrelu")
        self.vae_like = vae_like
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1)]
        if kind == "resnet":
            for n in range(1, depth):
                layers += [_BasicBlock(ndf * min(4, n), ndf * min(4, n + 1), norm_layer, nl)]
            layers += [nl(), nn.AvgPool2d(8)]
            c = ndf * min(4, depth)
        else:
            layers += [nl()]
            for n in range(1, depth):
                layers += [nn.Conv2d(ndf * min(2 ** (n - 1), 4), ndf * min(2**n, 4), 4, 2, 1)]
                layers += [*([norm_layer(ndf * min(2**n, 4))] if norm_layer else []), nl()]
            layers += [nn.AvgPool2d(8)]
            c = ndf * min(2 ** (depth - 1), 4)
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c, nz))
        if vae_like:
            self.fcVar = nn.Sequential(nn.Linear(c, nz))

    def forward(self, x):
        f = self.conv(x).view(x.size(0), -1)
        return (self.fc(f), self.fcVar(f)) if self.vae_like else self.fc(f)


@pytest.mark.parametrize(
    ("kind", "norm", "vae_like"),
    [
        ("resnet", "batch", True),
        ("resnet", "none", False),
        ("conv", "instance", True),
        ("conv", "batch", False),
        ("conv", "none", True),
    ],
)
def test_encoder_variants_match_the_official_layout(kind, norm, vae_like):
    torch.manual_seed(0)
    official = _randomize(_OfficialE(kind, 5, 3, 4, norm, vae_like))
    state = official.state_dict()
    depth = "n_blocks" if kind == "resnet" else "n_layers"
    want = {"in_channels": 3, "nz": 5, "ndf": 3, depth: 4, "norm": norm}
    want |= {"nl": "lrelu", "vae_like": vae_like}
    cls = ResnetEncoder if kind == "resnet" else NLayerEncoder
    assert bicyclegan.infer(state) == (cls.__name__, want)
    _, kw, converted = bicyclegan.convert({f"module.{k}": v for k, v in state.items()})
    ours = _randomize(cls(**kw))
    ours.load_state_dict(converted, strict=True)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        got, ref = ours(x), official(x)
    for g, r in zip(got if vae_like else [got], ref if vae_like else [ref], strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def _official_d_layers(ndf, n_layers, norm):  # D_NLayersMulti.get_layers: every conv biased
    seq = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2**n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), norm(ndf * mult), nn.LeakyReLU(0.2)]
    prev, mult = mult, min(2**n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), norm(ndf * mult), nn.LeakyReLU(0.2)]
    return nn.Sequential(*seq, nn.Conv2d(ndf * mult, 1, 4, 1, 1))


def test_batch_norm_multiscale_matches_the_official_layout():
    torch.manual_seed(0)
    # ndf 10, 3 scales: widths 10, 5, round(2.5) = 2 (Python rounds halves to even)
    scales = [_official_d_layers(w, 2, nn.BatchNorm2d) for w in (10, 5, 2)]
    official = _randomize(nn.Module())
    for i, s in enumerate(scales):
        official.add_module(f"model_{i}", _randomize(s))
    state = official.state_dict()
    kw = bicyclegan.infer_multiscale_discriminator(state)
    assert kw == {"in_channels": 3, "ndf": 10, "n_layers": 2, "norm": "batch", "num_d": 3}
    ours = _randomize(MultiScaleDiscriminator(**kw))
    ours.load_state_dict(bicyclegan.multiscale_discriminator(state), strict=True)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    with torch.no_grad():
        got = ours(x)
        for i, s in enumerate(scales):
            torch.testing.assert_close(got[i], s(x), atol=1e-5, rtol=1e-5)
            x = down(x)
    single = {k[len("model_0.") :]: v for k, v in state.items() if k.startswith("model_0.")}
    single = {f"model.{k}": v for k, v in single.items()}
    assert bicyclegan.infer(single) == ("MultiScaleDiscriminator", {**kw, "ndf": 10, "num_d": 1})


def test_bad_files_are_one_line_errors(tmp_path):
    d = official_state(load_fixture(D_NAME))
    pth = tmp_path / "latest_net_D2.pth"
    torch.save(d, pth)
    assert bicyclegan.read_official(pth).keys() == d.keys()
    text = tmp_path / "latest_net_E.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointError) as e:
        bicyclegan.read_official(text)
    assert str(text) in str(e.value) and "\n" not in str(e.value)

    with pytest.raises(CheckpointError, match="match no pix2pix/BicycleGAN network") as e:
        bicyclegan.role({"encoder.weight": torch.zeros(2, 2)}, source="x.pth")
    assert str(e.value).startswith("x.pth: ") and "\n" not in str(e.value)

    mixed = {**d, "model_1.0.weight": torch.zeros(5, 3, 4, 4), "model_1.0.bias": torch.zeros(5)}
    with pytest.raises(CheckpointError, match="mixes networks") as e:
        bicyclegan.multiscale_discriminator(mixed)
    assert "\n" not in str(e.value)

    # an NLayerDiscriminator with batch norm (no conv biases) is not a D_NLayersMulti
    patch = official_state(load_fixture("patchgan_basic_D_batch"))
    with pytest.raises(CheckpointError, match="patch_discriminator"):
        bicyclegan.multiscale_discriminator(patch)
    assert isinstance(bicyclegan.KINDS[bicyclegan.infer(patch)[0]](), PatchDiscriminator)

    g = official_state(load_fixture(G_NAME))
    with pytest.raises(CheckpointError, match="unexpected key"):
        bicyclegan.unet_z_generator({**g, "model.submodule.up.7.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"'model\.submodule\.up\.1\.bias' is missing"):
        bicyclegan.unet_z_generator(
            {k: v for k, v in g.items() if k != "model.submodule.up.1.bias"}
        )
    pix = official_state(load_fixture("pix2pix_unet_128_G"))
    with pytest.raises(CheckpointError, match="convert it with unet_generator"):
        bicyclegan.unet_z_generator(pix)
    e_state = official_state(load_fixture(E_NAME))
    with pytest.raises(CheckpointError, match="E_ResNet"):
        bicyclegan.resnet_encoder({k: v for k, v in e_state.items() if k != "conv.0.weight"})
