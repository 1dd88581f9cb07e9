"""U-GAT-IT and Morph-UGATIT parity: official weights load into our networks and reproduce the
official outputs in train and eval mode; `infer_*` recovers the constructor arguments; the
official checkpoint bundle reads back; bad files and states fail in one line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from parity import check_parity, load_fixture, official_state
from torch import Tensor, nn

from xdomain.convert import ugatit
from xdomain.errors import CheckpointError
from xdomain.nn.morph import LayerInstanceNorm, MappingNetwork, MorphAdaLIN, MorphDiscriminator
from xdomain.nn.ugatit import UGATITDiscriminator, UGATITGenerator

Convert = Callable[[dict[str, Tensor]], dict[str, Tensor]]

# fixture -> (our class, constructor kwargs from the manifest, converter, infer_*)
CASES: dict[str, tuple[type[nn.Module], dict, Convert, Callable]] = {
    "ugatit_G": (
        UGATITGenerator,
        {"ngf": 8, "n_blocks": 4, "img_size": 64, "light": False},
        ugatit.generator,
        ugatit.infer_generator,
    ),
    "ugatit_G_light": (
        UGATITGenerator,
        {"ngf": 8, "n_blocks": 4, "img_size": 64, "light": True},
        ugatit.generator,
        ugatit.infer_generator,
    ),
    "ugatit_D_global": (
        UGATITDiscriminator,
        {"ndf": 8, "n_layers": 7},
        ugatit.discriminator,
        ugatit.infer_discriminator,
    ),
    "ugatit_D_local": (
        UGATITDiscriminator,
        {"ndf": 8, "n_layers": 5},
        ugatit.discriminator,
        ugatit.infer_discriminator,
    ),
    "morph_ugatit_MLP": (
        MappingNetwork,
        {"in_features": 64, "dim": 256, "n_layers": 8},
        ugatit.morph_mapping,
        ugatit.infer_morph_mapping,
    ),
    "morph_ugatit_AdaLIN": (
        MorphAdaLIN,
        {"z_dim": 256},
        ugatit.morph_adalin,
        ugatit.infer_morph_adalin,
    ),
    "morph_ugatit_LayerInstanceNorm": (
        LayerInstanceNorm,
        {"channels": 64},
        ugatit.morph_lin,
        ugatit.infer_morph_lin,
    ),
    "morph_ugatit_D": (
        MorphDiscriminator,
        {"ndf": 8, "n_blocks": 6},
        ugatit.morph_discriminator,
        ugatit.infer_morph_discriminator,
    ),
}
SPECTRAL = ["ugatit_D_global", "ugatit_D_local", "morph_ugatit_D"]


def _build(name: str) -> nn.Module:
    cls, kw, _, _ = CASES[name]
    return cls(**kw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity(name):
    _, _, convert, _ = CASES[name]
    forward = None
    if name == "morph_ugatit_AdaLIN":  # forward(x, w): w is the mapping network's output

        def forward(net: nn.Module, fx: dict[str, Tensor]) -> Tensor:
            return net(fx["input"].clone(), fx["z"].clone())

    check_parity(name, lambda: _build(name), convert, forward)


@pytest.mark.parametrize("name", sorted(CASES))
def test_infer_recovers_constructor_arguments(name):
    _, kw, _, infer = CASES[name]
    got = infer(official_state(load_fixture(name)))
    want = dict(kw)
    if name.startswith("ugatit_G"):
        want |= {"in_channels": 3, "out_channels": 3}
        if want["light"]:
            del want["img_size"]  # the light variant's weights do not depend on it
    elif name.startswith(("ugatit_D", "morph_ugatit_D")):
        want["in_channels"] = 3
    assert got == want


@pytest.mark.parametrize("name", SPECTRAL)
def test_train_forward_runs_one_power_iteration_like_the_official(name):
    """u, v after one train forward equal the official `buffers_after_train/*` (mapped). The
    stored u, v were rounded to float16 after converging, so that iteration moves them by ~1e-3:
    a forward that skipped it would fail here."""
    fx = load_fixture(name)
    _, _, convert, _ = CASES[name]
    after = {
        k.split("/", 1)[1]: v.float() for k, v in fx.items() if k.startswith("buffers_after_train/")
    }
    assert after
    before = convert(official_state(fx))
    want = convert({**official_state(fx), **after})  # the same renaming for the buffers
    net = _build(name)
    net.load_state_dict(before, strict=True)
    net.train()
    net(fx["input"].clone())
    got = net.state_dict()
    moved = 0.0
    for key in want:
        if key.endswith(("weight_u", "weight_v")):
            torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-5)
            moved = max(moved, float((want[key] - before[key]).abs().max()))
    assert moved > 1e-4


def test_clip_rho_clamps_every_rho():
    net = UGATITGenerator(ngf=2, n_blocks=1, light=True)
    rhos = [p.detach() for n, p in net.named_parameters() if n.endswith("rho")]
    assert len(rhos) == 4  # two AdaLIN in the block, two LIN in the up path
    with torch.no_grad():
        for i, p in enumerate(rhos):
            p.fill_(1.5 if i % 2 else -0.5)
    net.clip_rho()
    assert all(float(p.min()) >= 0.0 and float(p.max()) <= 1.0 for p in rhos)
    assert {float(p.mean()) for p in rhos} == {0.0, 1.0}


def test_generator_sizes():
    torch.manual_seed(0)
    light = UGATITGenerator(ngf=2, n_blocks=1, light=True).eval()
    for h, w in [(30, 45), (32, 48), (13, 9)]:
        with torch.no_grad():
            y, cam_logit, heatmap = light(torch.rand(2, 3, h, w) * 2 - 1)
        assert y.shape == (2, 3, h, w) and torch.isfinite(y).all()
        assert cam_logit.shape == (2, 2)
        assert heatmap.shape == (2, 1, -(-h // 4), -(-w // 4))
    full = UGATITGenerator(ngf=2, n_blocks=1, img_size=32).eval()
    with torch.no_grad():
        assert full(torch.zeros(1, 3, 32, 32))[0].shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="32x32 inputs only"):
        full(torch.zeros(1, 3, 64, 64))


def test_mapping_converter_takes_generator_keys():
    state = official_state(load_fixture("morph_ugatit_MLP"))
    want = ugatit.morph_mapping(state)
    in_generator = {f"mlp.{k}": v for k, v in state.items()} | {"cam_w": torch.zeros(256, 1)}
    assert ugatit.infer_morph_mapping(in_generator) == {
        "in_features": 64,
        "dim": 256,
        "n_layers": 8,
    }
    got = ugatit.morph_mapping(in_generator)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_converter_errors_are_one_line():
    g = official_state(load_fixture("ugatit_G"))
    d = official_state(load_fixture("ugatit_D_local"))
    with pytest.raises(CheckpointError, match=r"DownBlock\.1\.weight") as e:
        ugatit.generator(d)  # a discriminator is not a generator
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"model\.1\.weight_orig"):
        ugatit.discriminator(g)
    with pytest.raises(CheckpointError, match=r"unexpected key 'conv\.weight'"):
        ugatit.discriminator({**d, "conv.weight": torch.ones(1, 64, 4, 4)})
    with pytest.raises(CheckpointError, match=r"'gap_fc\.weight_u' is missing"):
        ugatit.discriminator({k: v for k, v in d.items() if k != "gap_fc.weight_u"})
    with pytest.raises(CheckpointError, match="neither 32 \\(light\\)"):
        ugatit.generator({**g, "FC.0.weight": torch.zeros(32, 33)})
    lin = official_state(load_fixture("morph_ugatit_LayerInstanceNorm"))
    with pytest.raises(CheckpointError, match=r"'beta' has shape \(1, 8, 1, 1\)"):
        ugatit.morph_lin({**lin, "beta": torch.zeros(1, 8, 1, 1)})
    with pytest.raises(CheckpointError, match=r"key 'gamma' is missing"):
        ugatit.morph_lin({k: v for k, v in lin.items() if k != "gamma"})


def _bundle() -> dict[str, dict[str, Tensor]]:
    """An official-layout checkpoint made of fixture states (two of each kind)."""
    g = official_state(load_fixture("ugatit_G"))
    g_light = official_state(load_fixture("ugatit_G_light"))
    d_global = official_state(load_fixture("ugatit_D_global"))
    d_local = official_state(load_fixture("ugatit_D_local"))
    return {
        "genA2B": g,
        "genB2A": g_light,
        "disGA": d_global,
        "disGB": d_global,
        "disLA": d_local,
        "disLB": d_local,
    }


def test_read_official_round_trip(tmp_path):
    params = _bundle()
    path = tmp_path / "selfie2anime_params_0001000.pt"
    torch.save(params, path)
    got = ugatit.read_official(path)
    assert list(got) == list(ugatit.UGATIT_NETWORKS)
    for name, state in params.items():
        assert got[name].keys() == state.keys()
        assert all(torch.equal(got[name][k], state[k]) for k in state)
    # each entry converts and loads strictly into the network infer_* describes
    for name in ("genA2B", "genB2A"):
        UGATITGenerator(**ugatit.infer_generator(got[name])).load_state_dict(
            ugatit.generator(got[name], source=f"{path}[{name}]"), strict=True
        )
    for name in ("disGA", "disLB"):
        UGATITDiscriminator(**ugatit.infer_discriminator(got[name])).load_state_dict(
            ugatit.discriminator(got[name]), strict=True
        )


def test_read_official_errors(tmp_path):
    params = _bundle()
    for legacy in (False, True):
        cut = tmp_path / f"truncated_{legacy}.pt"
        torch.save(params, cut, _use_new_zipfile_serialization=not legacy)
        cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
        with pytest.raises(CheckpointError, match="truncated") as e:
            ugatit.read_official(cut)
        assert str(cut) in str(e.value) and "\n" not in str(e.value)

    with pytest.raises(CheckpointError, match="no such file"):
        ugatit.read_official(tmp_path / "absent.pt")

    lone = tmp_path / "genA2B.pt"
    torch.save(params["genA2B"], lone)  # one state_dict, not the bundle
    with pytest.raises(CheckpointError, match=r"no entry 'genA2B' \(6 of 6 missing") as e:
        ugatit.read_official(lone)
    assert str(lone) in str(e.value)

    odd = tmp_path / "odd.pt"
    torch.save({**params, "disLB": [1, 2]}, odd)
    with pytest.raises(CheckpointError, match="entry 'disLB' holds a list"):
        ugatit.read_official(odd)

    plain = tmp_path / "plain.pt"
    torch.save([params["genA2B"]], plain)
    with pytest.raises(CheckpointError, match="holds a list, not an official U-GAT-IT"):
        ugatit.read_official(plain)


def test_read_morph_official(tmp_path):
    d = official_state(load_fixture("morph_ugatit_D"))
    mlp = official_state(load_fixture("morph_ugatit_MLP"))
    path = tmp_path / "morph.pth"
    torch.save({"G": {f"mlp.{k}": v for k, v in mlp.items()}, "D_A": d, "D_B": d}, path)
    got = ugatit.read_morph_official(path)
    assert list(got) == ["G", "D_A", "D_B"]
    MappingNetwork(**ugatit.infer_morph_mapping(got["G"])).load_state_dict(
        ugatit.morph_mapping(got["G"]), strict=True
    )
    MorphDiscriminator(**ugatit.infer_morph_discriminator(got["D_B"])).load_state_dict(
        ugatit.morph_discriminator(got["D_B"]), strict=True
    )
