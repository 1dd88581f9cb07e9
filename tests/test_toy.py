"""The 2-D toy: mixture data, mode metrics and the three DiscoGAN variants (paper Fig. 4)."""

from __future__ import annotations

import math

import pytest
import torch

from xdomain.config import load_config
from xdomain.data.toy import load_toy, parse_spec
from xdomain.datamodule import build_data
from xdomain.errors import ConfigError, DataError
from xdomain.methods.base import DataSpec
from xdomain.methods.discogan import DiscoGAN
from xdomain.metrics.toy import assign_modes, mode_metrics
from xdomain.train import build_method, train

VARIANTS = ("gan", "gan_recon", "discogan")
POINTS = DataSpec(kind="points", num_classes_a=10, num_classes_b=10)


# --------------------------------------------------------------------------- data


def test_toy_data_is_deterministic_per_seed_and_split() -> None:
    a = load_toy("toy-gmm:line10", "train", seed=3, n=500)
    b = load_toy("toy-gmm:line10", "train", seed=3, n=500)
    assert torch.equal(a.points, b.points) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.points, load_toy("toy-gmm:line10", "train", seed=4, n=500).points)
    assert not torch.equal(a.points, load_toy("toy-gmm:line10", "test", seed=3, n=500).points)
    # a smaller n is not a prefix of a larger one, but each is a fixed function of (spec, seed, n)
    x, y = a[7]
    assert x.dtype == torch.float32 and x.shape == (2,) and isinstance(y, int)
    assert torch.equal(a[(7, 12345)][0], x)  # the augmentation seed is accepted and ignored


def test_toy_geometry_sizes_and_balance() -> None:
    line = load_toy("toy-gmm:line10", "test", seed=0)
    assert len(line) == 10_000 and line.num_classes == 10 and line.sigma == 0.1
    assert torch.allclose(line.centers[[0, -1]], torch.tensor([[-2.0, 0.0], [2.0, 0.0]]))
    assert torch.bincount(line.labels).tolist() == [1000] * 10
    X, y = line.tensors()
    assert X.shape == (10_000, 2) and y.shape == (10_000,)
    # each point is within 5 sigma of its own mode's centre
    assert float((X - line.centers[y]).norm(dim=1).max()) < 5 * line.sigma
    circle = parse_spec("toy-gmm:circle10").centers()
    assert circle.shape == (10, 2)
    assert all(math.isclose(float(r), 2.0) for r in (circle**2).sum(1) ** 0.5)
    arc = parse_spec("toy-gmm:arc5:span=180,r=1,sigma=0.05")
    assert arc.sigma == 0.05 and arc.centers()[-1].round(6).tolist() == [-1.0, 0.0]
    assert len(load_toy("toy-gmm:circle4", "train", seed=0)) == 100_000


@pytest.mark.parametrize(
    "spec",
    [
        "toy-gmm:ring10",
        "toy-gmm:line",
        "toy-gmm:line0",
        "toy-gmm:line10:span=90",
        "toy-gmm:circle10:radius=2",
        "toy-gmm:arc10:sigma=x",
        "toy-gmm:line10:sigma=0",
    ],
)
def test_bad_toy_specs_are_refused_with_the_grammar(spec: str) -> None:
    with pytest.raises(DataError, match=r"line|sigma"):
        load_toy(spec, "train", seed=0)


def test_datamodule_builds_points_spec_and_labelled_fixed_set() -> None:
    cfg = load_config("discogan-toy-line", ["data.n_a=1000", "data.n_b=1000"]).data
    data = build_data(cfg)
    assert data.spec.kind == "points" and data.spec.num_classes_b == 10
    batch = next(data.stream())
    assert batch["a"].shape == (200, 2) and batch["b_label"].shape == (200,)
    fixed = data.fixed()
    assert fixed["a"].shape == (500, 2) and fixed["a_label"].unique().numel() == 10


# --------------------------------------------------------------------------- metrics


def test_mode_metrics_on_hand_built_landings() -> None:
    centers = torch.tensor(parse_spec("toy-gmm:circle10").centers(), dtype=torch.float32)
    sigma = 0.1
    # A modes 0..9 land on B modes 0,0,1,1,2,3,4,5,6 and off (mode 9 sits at the origin)
    target = [0, 0, 1, 1, 2, 3, 4, 5, 6, -1]
    labels = torch.arange(10).repeat_interleave(20)  # (200,)
    pts = torch.stack([centers[t] if t >= 0 else torch.zeros(2) for t in target])
    jitter = torch.tensor([[0.05, -0.05]]).repeat(200, 1)  # 0.71 sigma from the centre
    fake = pts[labels] + jitter
    assert assign_modes(fake, centers, sigma)[::20].tolist() == target
    m = mode_metrics(fake, labels, centers, sigma)
    assert m["modes_covered"] == 7 and m["modes_distinct"] == 7 and m["modes_a_on"] == 9
    assert m["on_mode_frac"] == pytest.approx(0.9) and m["mode_purity"] == 1.0

    # one A mode split 15/5 between two B modes: the majority decides, purity drops
    split = fake.clone()
    split[180:185] = centers[8]  # 5 of A mode 9's points now land on B mode 8
    m = mode_metrics(split, labels, centers, sigma)
    assert m["modes_covered"] == 8  # 5 of 200 points is above the 1% share
    assert m["modes_distinct"] == 7 and m["modes_a_on"] == 9  # A mode 9 still mostly off
    assert m["mode_purity"] == pytest.approx((9 + 15 / 20) / 10)
    assert mode_metrics(split, labels, centers, sigma, min_share=0.05)["modes_covered"] == 7

    # 3.5 sigma away is off, 2.5 sigma away is on
    far = centers[:1] + torch.tensor([[0.35, 0.0]]) * (centers[:1] / 2)
    near = centers[:1] + torch.tensor([[0.25, 0.0]]) * (centers[:1] / 2)
    assert assign_modes(torch.cat([far, near]), centers, sigma).tolist() == [-1, 0]


# --------------------------------------------------------------------------- the method


def _tiny(variant: str, seed: int = 0) -> DiscoGAN:
    torch.manual_seed(seed)
    return DiscoGAN(DiscoGAN.Config(variant=variant, hidden_g=16, hidden_d=16), POINTS)


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return {"a": torch.randn(32, 2, generator=g), "b": torch.randn(32, 2, generator=g) * 2}


def test_variants_share_networks_and_initial_weights() -> None:
    cfg = load_config("discogan-toy-line", ["data.n_a=1000", "data.n_b=1000"])
    data = build_data(cfg.data)
    states = []
    for v in VARIANTS:
        cfg.model.variant = v
        m = build_method(cfg, data)
        assert len(m.G_ab.net) == 5 and len(m.D_b.net) == 9  # 3 and 5 linear layers, ReLUs between
        states.append(m.state_dict())
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        assert all(torch.equal(other[k], states[0][k]) for k in states[0])


@pytest.mark.parametrize(
    ("variant", "trained"),
    [
        ("gan", {"G_ab", "D_b"}),
        ("gan_recon", {"G_ab", "G_ba", "D_b"}),
        ("discogan", {"G_ab", "G_ba", "D_a", "D_b"}),
    ],
)
def test_each_variant_trains_only_its_own_networks(variant: str, trained: set[str]) -> None:
    m = _tiny(variant)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train_step(_batch(), 0)
    after = m.state_dict()
    for net in ("G_ab", "G_ba", "D_a", "D_b"):
        moved = any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net))
        assert moved == (net in trained), net


GOLDEN = {  # first-step logs, hidden 16, seed 0, the batch of _batch(); CPU float32
    "gan": {"loss_d": 1.390782, "loss_adv": 0.622899},
    "gan_recon": {"loss_d": 1.390782, "loss_const": 1.051121, "loss_adv": 0.622899},
    "discogan": {"loss_d": 2.782394, "loss_const": 5.475223, "loss_adv": 1.245539},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_first_step_golden_numbers(variant: str) -> None:
    logs = _tiny(variant).train_step(_batch(), 0)
    assert logs.keys() == GOLDEN[variant].keys()
    for k, v in GOLDEN[variant].items():
        assert logs[k] == pytest.approx(v, rel=1e-4), k


def test_mlp_refuses_image_data_and_config_refuses_unknown_variant() -> None:
    with pytest.raises(ConfigError, match="points"):
        DiscoGAN(DiscoGAN.Config(), DataSpec(kind="image"))
    with pytest.raises(ConfigError, match="gan_recon"):
        load_config("discogan-toy", ["model.variant=cyclegan"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_few_steps_through_the_trainer(variant: str, tmp_path) -> None:
    cfg = load_config(
        "discogan-toy",
        [
            f"model.variant={variant}",
            "train.steps=20",
            "train.progress=false",
            "eval.every=10",
            "train.sample_every=20",
            "train.ckpt_every=20",
            "train.log_every=10",
            "data.n_a=2000",
            "data.n_b=2000",
            "model.hidden_g=32",
            "model.hidden_d=32",
        ],
    )
    final = train(cfg, tmp_path)
    for k in ("modes_covered", "modes_distinct", "on_mode_frac", "mode_purity", "d_b_fake"):
        assert k in final and math.isfinite(final[k])
    assert 0 <= final["modes_distinct"] <= final["modes_a_on"] <= 10
    assert (tmp_path / "samples" / "step-0000020.png").is_file()
    assert (tmp_path / "figures" / "landscape.png").is_file()
    assert "landscape" in (tmp_path / "report.html").read_text()


def test_landscape_goes_to_the_artifact_dir_only_when_there_is_one(tmp_path) -> None:
    m = _tiny("discogan")
    fixed = _batch() | {"a_label": torch.arange(32) % 10}
    sample = tmp_path / "run" / "samples" / "step-1.png"
    m.visualize(fixed, sample)  # the Python API: no run, so no figures folder is invented
    assert sample.is_file() and not (tmp_path / "run" / "figures").exists()
    m.artifact_dir = tmp_path / "elsewhere" / "figures"  # wherever the Trainer says
    m.visualize(fixed, sample)
    copy = m.artifact_dir / "landscape.png"
    assert copy.read_bytes() == sample.read_bytes()
    assert sorted(p.name for p in m.artifact_dir.iterdir()) == ["landscape.png"]
