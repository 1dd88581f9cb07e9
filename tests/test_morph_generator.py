"""Morph-UGATIT generator: our `MorphGenerator` against a re-built official layout, the
converter and `infer_*` on it, the encode-once / decode-many path that morphing uses, and the
domain code convention of the official training.

No fixture holds the official generator (too large, see the manifest's `skipped`), so this file
re-builds its module layout by hand: the same `nn.Sequential` positions and parameter names as
`models/s_ugatit_plus.py`, with its own plain re-implementation of the maths. Its default-config
keys and shapes are checked against the manifest's list, where the manifest is present.
"""

from __future__ import annotations

import json

import pytest
import torch
from parity import reference_dir
from torch import Tensor, nn

from xdomain.convert import ugatit
from xdomain.errors import CheckpointError
from xdomain.nn.morph import MorphGenerator, domain_code

ATOL = 1e-5

# --------------------------------------------------------------- the official layout, re-built


def _mixed_norm(x: Tensor, rho: Tensor) -> Tensor:
    """rho * IN(x) + (1 - rho) * LN(x) from flattened views, unbiased variance, eps 1e-6."""
    b, c = x.shape[:2]
    per_channel = x.reshape(b, c, -1)
    x_in = (x - per_channel.mean(2).view(b, c, 1, 1)) / torch.sqrt(
        per_channel.var(2).view(b, c, 1, 1) + 1e-6
    )
    per_sample = x.reshape(b, -1)
    x_ln = (x - per_sample.mean(1).view(b, 1, 1, 1)) / torch.sqrt(
        per_sample.var(1).view(b, 1, 1, 1) + 1e-6
    )
    return rho * x_in + (1 - rho) * x_ln


class _PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt((x * x).mean(dim=1, keepdim=True) + 1e-5)


class _OfficialMLP(nn.Module):
    """`mlp`: PixelNorm, then [Linear, LeakyReLU, PixelNorm] x 7, then [Linear, PixelNorm]."""

    def __init__(self, inc: int, dim: int = 256, n_layers: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = [_PixelNorm()]
        for k in range(n_layers):
            layers.append(nn.Linear(inc if k == 0 else dim, dim))
            if k < n_layers - 1:
                layers.append(nn.LeakyReLU(0.2))
            layers.append(_PixelNorm())
        self.mlp = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.mlp(z)


class _OfficialAdaLIN(nn.Module):
    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.rho = nn.Parameter(torch.ones(1))
        self.gamma = nn.Linear(dim, dim)
        self.beta = nn.Linear(dim, dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        out = _mixed_norm(x, (self.rho - 0.1).clamp(0, 1))
        b, c = x.shape[:2]
        return out * self.gamma(w).view(b, c, 1, 1) + self.beta(w).view(b, c, 1, 1)


class _OfficialLIN(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.rho = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return _mixed_norm(x, self.rho.clamp(0, 1)) * self.gamma + self.beta


class _OfficialResnetBlock(nn.Module):
    """`conv_block`: 0 pad, 1 conv, 2 affine IN, 3 ReLU, 4 pad, 5 conv, 6 affine IN."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim, affine=True),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class _OfficialAdaBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))
        self.addin_1 = _OfficialAdaLIN(dim)
        self.addin_2 = _OfficialAdaLIN(dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        h = torch.relu(self.addin_1(self.conv1(x), w))
        return x + self.addin_2(self.conv2(h), w)


class _OfficialGenerator(nn.Module):
    """The official `Generator`'s state layout and forward (ngf must be 64: 256-wide AdaLIN)."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, n_blocks: int = 4, z_dim: int = 32):
        super().__init__()
        g, c = 64, 256
        encoder: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, g, 7),
            nn.InstanceNorm2d(g, affine=True),
            nn.ReLU(),
        ]
        for c_in in (g, 2 * g):  # positions 4-6, 7-9
            encoder += [
                nn.Conv2d(c_in, 2 * c_in, 3, stride=2, padding=1),
                nn.InstanceNorm2d(2 * c_in, affine=True),
                nn.ReLU(),
            ]
        encoder += [_OfficialResnetBlock(c) for _ in range(n_blocks)]  # positions 10..
        self.encoder = nn.Sequential(*encoder)
        self.cam_w = nn.Parameter(nn.init.xavier_uniform_(torch.empty(c, 1)))
        self.cam_bias = nn.Parameter(torch.zeros(1))
        self.conv1x1 = nn.Sequential(nn.Conv2d(2 * c, c, 1), nn.ReLU())
        self.mlp = _OfficialMLP(2 * z_dim)
        self.adain_resblocks = nn.ModuleList(_OfficialAdaBlock(c) for _ in range(n_blocks))
        decoder: list[nn.Module] = []
        for c_in in (c, c // 2):  # positions 0-8, 9-17
            c_out = c_in // 2
            decoder += [
                nn.UpsamplingBilinear2d(scale_factor=2),
                nn.ReflectionPad2d(1),
                nn.Conv2d(c_in, c_out, 3),
                _OfficialLIN(c_out),
                nn.ReLU(),
                nn.ReflectionPad2d(1),
                nn.Conv2d(c_out, c_out, 3),
                _OfficialLIN(c_out),
                nn.ReLU(),
            ]
        decoder += [nn.ReflectionPad2d(3), nn.Conv2d(g, output_nc, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    def forward(self, img: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e = self.encoder(img)
        c = e.shape[1]
        logits = [
            e.mean(dim=(2, 3)) @ self.cam_w + self.cam_bias,
            e.amax(dim=(2, 3)) @ self.cam_w + self.cam_bias,
        ]
        attended = e * (self.cam_w + self.cam_bias).view(1, c, 1, 1)
        x = self.conv1x1(torch.cat([attended, attended], dim=1))
        w = self.mlp(z)
        for block in self.adain_resblocks:
            x = block(x, w)
        return self.decoder(x), torch.cat(logits, dim=1), e


def _official(n_blocks: int = 1, **kw: int) -> _OfficialGenerator:
    """A seeded official-layout generator whose norm parameters are moved off their initial
    values (rho inside and outside [0, 1], so the clamps matter)."""
    torch.manual_seed(0)
    net = _OfficialGenerator(n_blocks=n_blocks, **kw)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("rho"):
                p.uniform_(-0.2, 1.2)
            elif p.dim() == 1 or name.endswith(("gamma", "beta")):
                p.add_(0.1 * torch.randn_like(p))
    return net


def _meta_state(**kw: int) -> dict[str, Tensor]:
    """An official-layout state_dict with shapes only (no memory, no init)."""
    with torch.device("meta"):
        return dict(_OfficialGenerator(**kw).state_dict())


# ------------------------------------------------------------------------------------ tests


def test_rebuilt_layout_matches_the_manifest():
    path = reference_dir() / "manifest.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent (set XDOMAIN_REFERENCE to the folder holding it)")
    manifest = json.loads(path.read_text())
    want = manifest["skipped"]["morph_ugatit_G"]["state_keys_for_default_config"]
    got = {k: list(v.shape) for k, v in _meta_state().items()}
    assert got == want


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_converted_official_layout_reproduces_its_outputs(mode):
    official = _official(n_blocks=1)
    ours = MorphGenerator(ngf=64, n_blocks=1)
    ours.load_state_dict(ugatit.morph_generator(official.state_dict()), strict=True)
    official.train(mode == "train")
    ours.train(mode == "train")
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1  # (B, 3, H, W)
    z = torch.cat([domain_code(1, "B"), domain_code(1, "A")])  # (B, 64): one per direction
    with torch.no_grad():
        want = official(x, z)
        got = ours(x, z)
    for name, g, w in zip(("image", "cam_logit", "e"), got, want, strict=True):
        assert g.shape == w.shape, name
        torch.testing.assert_close(g, w, atol=ATOL, rtol=0, msg=name)
    assert got[0].std() > 0.05  # not a saturated or constant image that would hide a mismatch


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({}, {"in_channels": 3, "out_channels": 3, "ngf": 64, "n_blocks": 4, "z_dim": 32}),
        (
            {"input_nc": 1, "output_nc": 3, "n_blocks": 2, "z_dim": 8},
            {"in_channels": 1, "out_channels": 3, "ngf": 64, "n_blocks": 2, "z_dim": 8},
        ),
        (
            {"n_blocks": 0},
            {"in_channels": 3, "out_channels": 3, "ngf": 64, "n_blocks": 0, "z_dim": 32},
        ),
    ],
)
def test_infer_recovers_constructor_arguments(kw, want):
    state = _meta_state(**kw)
    assert ugatit.infer_morph_generator(state) == want
    with torch.device("meta"):
        ours = MorphGenerator(**want)
    converted = ugatit.morph_generator(state)
    assert {k: v.shape for k, v in converted.items()} == {
        k: v.shape for k, v in ours.state_dict().items()
    }


def test_data_parallel_prefix_is_accepted():
    state = {f"module.{k}": v for k, v in _meta_state(n_blocks=1).items()}
    assert ugatit.infer_morph_generator(state)["n_blocks"] == 1
    assert "mapping.fcs.7.weight" in ugatit.morph_generator(state)


def _without(state: dict[str, Tensor], key: str) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if k != key}


def _renamed(state: dict[str, Tensor], old: str, new: str) -> dict[str, Tensor]:
    return {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in state.items()}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: {**s, "decoder.6.weight": torch.empty(128, 128, 5, 5)}, "decoder.6.weight"),
        (lambda s: {**s, "decoder.21.weight": torch.empty(3)}, "unexpected key"),
        (lambda s: {**s, "adain_resblocks.0.addin_1.sigma": torch.empty(1)}, "unexpected key"),
        (lambda s: _without(s, "cam_w"), "cam_w"),
        (lambda s: _without(s, "decoder.16.rho"), "decoder.16.rho"),
        (lambda s: _renamed(s, "encoder.10.", "encoder.11."), "encoder residual"),
        (lambda s: {**s, "mlp.mlp.1.weight": torch.empty(256, 63)}, "even"),
    ],
    ids=["shape", "extra-layer", "extra-leaf", "no-cam_w", "missing", "positions", "odd-z"],
)
def test_bad_state_fails_in_one_line(edit, match):
    state = edit(_meta_state(n_blocks=1))
    with pytest.raises(CheckpointError, match=match) as info:
        ugatit.morph_generator(state, source="g.pth")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("g.pth: ")


def test_encode_once_decode_with_several_latents():
    torch.manual_seed(0)
    g = MorphGenerator(ngf=8, n_blocks=2).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    z_b, z_a = domain_code(2, "B"), domain_code(2, "A")
    with torch.no_grad():
        image, cam_logit, e = g(x, z_b)
        e_once = g.encode(x)  # (B, 32, 4, 4)
        w_b, w_a = g.mapping(z_b), g.mapping(z_a)  # (B, 32)
        via_decode, cam_via_decode = g.decode(e_once, w_b)
        towards_a, _ = g.decode(e_once, w_a)
        f, cam_once = g.attend(e_once)
        halfway = g.synthesize(f, torch.lerp(w_b, w_a, 0.5))
    assert e_once.shape == (2, 32, 4, 4)
    torch.testing.assert_close(e_once, e, atol=0, rtol=0)
    torch.testing.assert_close(via_decode, image, atol=0, rtol=0)
    torch.testing.assert_close(cam_via_decode, cam_logit, atol=0, rtol=0)
    torch.testing.assert_close(cam_once, cam_logit, atol=0, rtol=0)
    assert (towards_a - image).abs().max() > 1e-3
    assert (halfway - image).abs().max() > 1e-4
    assert (halfway - towards_a).abs().max() > 1e-4


@pytest.mark.parametrize(("target", "marked"), [("B", 0), ("A", 1)])
def test_domain_code_marks_the_official_half(target, marked):
    z_dim = 16
    exact = domain_code(3, target, z_dim, noise=0.0)
    assert exact.shape == (3, 2 * z_dim)
    halves = exact.split(z_dim, dim=1)
    assert torch.equal(halves[marked], torch.ones(3, z_dim))
    assert torch.equal(halves[1 - marked], torch.zeros(3, z_dim))
    # randn * 0.2 + mark, drawn like `torch.randn(b, 2 * z_dim) * 0.2` from the same stream
    rng = torch.Generator().manual_seed(7)
    z = domain_code(3, target, z_dim, generator=rng)
    noise = torch.randn(3, 2 * z_dim, generator=torch.Generator().manual_seed(7)) * 0.2
    torch.testing.assert_close(z - exact, noise, atol=1e-7, rtol=0)


def test_domain_code_rejects_an_unknown_target():
    with pytest.raises(ValueError, match="'A' or 'B'"):
        domain_code(1, "C", 4)  # type: ignore[arg-type]


def test_small_net_runs_forward_and_backward_at_32px():
    torch.manual_seed(0)
    g = MorphGenerator(ngf=8, n_blocks=4, z_dim=4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    image, cam_logit, e = g(x, domain_code(2, "A", 4))
    assert image.shape == (2, 3, 32, 32)
    assert cam_logit.shape == (2, 2)
    assert e.shape == (2, 32, 8, 8)
    assert image.abs().max() <= 1
    (image.mean() + cam_logit.mean()).backward()
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


def test_size_not_a_multiple_of_4_is_refused():
    g = MorphGenerator(ngf=4, n_blocks=0, z_dim=2)
    with pytest.raises(ValueError, match="multiples of 4"):
        g.encode(torch.zeros(1, 3, 30, 32))
