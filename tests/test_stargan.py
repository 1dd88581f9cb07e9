"""StarGAN and the shared layers it grew: the gradient penalty, labelled data sets, the step-
indexed N-source stream, the method's update order, targets and their errors."""

from __future__ import annotations

import pytest
import torch

from xdomain.errors import ConfigError, DataError, XDomainError
from xdomain.losses import gradient_penalty
from xdomain.sections import DataConfig

torch.set_num_threads(1)


class _Scaler:
    """The two methods of torch.amp.GradScaler that the penalty uses."""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return t * 1024.0

    def get_scale(self) -> float:
        return 1024.0


def test_gradient_penalty_is_the_closed_form_with_and_without_a_scaler() -> None:
    # a linear critic D(x) = <w, x>: its input gradient is w everywhere, so the penalty is
    # (||w|| - 1)^2 whatever alpha draws, and its gradient in w is 2 (||w|| - 1) w / ||w||
    w = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)  # ||w|| = 0.5 * sqrt(48)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return (x * w).flatten(1).sum(1, keepdim=True)

    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    norm = 0.5 * 48**0.5
    for scaler in (None, _Scaler()):
        gp = gradient_penalty(critic, real, fake, scaler=scaler)
        assert gp.dtype == torch.float32
        assert float(gp.detach()) == pytest.approx((norm - 1) ** 2, rel=1e-6)
        (grad,) = torch.autograd.grad(gp, w)
        torch.testing.assert_close(grad, torch.full_like(w, 2 * (norm - 1) * 0.5 / norm))


def test_gradient_penalty_under_bf16_autocast_is_close_to_fp32() -> None:
    from xdomain.nn.stargan import StarDiscriminator

    torch.manual_seed(0)
    d = StarDiscriminator(image_size=16, conv_dim=4, c_dim=2, repeat_num=2)
    real, fake = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    g = torch.Generator().manual_seed(1)
    ref = gradient_penalty(lambda v: d(v)[0], real, fake, generator=g)
    g = torch.Generator().manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gradient_penalty(lambda v: d(v)[0], real, fake, generator=g)
    assert low.dtype == torch.float32  # the norm is taken in fp32
    assert float(low.detach()) == pytest.approx(float(ref.detach()), rel=0.05)


def _labelled_cfg(**kw) -> DataConfig:
    base = {
        "sources": ["digits-styled", "digits-handwritten"],
        "n_a": 64,
        "n_b": 64,
        "batch_size": 4,
    }
    return DataConfig(**(base | kw))


def test_styled_digits_carry_the_renderers_exact_labels() -> None:
    from xdomain.data.printed import BG_PALETTE, load_printed, styled_force
    from xdomain.data.sources import load_labelled

    ds = load_labelled("digits-styled", "test", image_size=32, channels=3, seed=0, n=40)
    assert [a.name for a in ds.schema.attributes] == ["bg", "bold", "italic"]
    assert ds.labels.shape == (40, 6)
    colours = list(BG_PALETTE.values())
    for i in range(40):
        want = styled_force(0, "test", i)
        assert int(ds.labels[i, :4].argmax()) == colours.index(want["bg"])
        assert ds.labels[i, 4:].tolist() == [float(want["bold"]), float(want["italic"])]
    # item i is printed item i restyled: the same digit
    assert ds.identity.equal(torch.from_numpy(load_printed(0, "test", 40, 32).labels))
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and y.equal(ds.labels[3])


def test_labelled_stream_is_step_indexed_for_every_source() -> None:
    from xdomain.datamodule import LabelledData, build_data

    data = build_data(_labelled_cfg())
    assert isinstance(data, LabelledData)
    assert [s["dataset"] for s in data.spec.labels] == ["digits-styled", "digits-handwritten"]
    batches = [b for _, b in zip(range(3), data.stream(), strict=False)]
    assert sorted(batches[0]) == ["label0", "label1", "x0", "x1"]
    assert batches[0]["x0"].shape == (4, 3, 32, 32) and batches[0]["label1"].shape == (4, 10)
    resumed = next(data.stream(start_step=2))
    for k in resumed:
        assert resumed[k].equal(batches[2][k])
    fixed = data.fixed()
    assert fixed["x1"].shape == (8, 3, 32, 32)


def test_labelled_config_errors_are_one_line() -> None:
    from xdomain.datamodule import build_data

    with pytest.raises(DataError, match="unknown labelled source 'digits-printd'; valid"):
        build_data(_labelled_cfg(sources=["digits-printd"]))
    with pytest.raises(ConfigError, match="names a data set twice"):
        build_data(_labelled_cfg(sources=["digits-styled", "digits-styled"]))
    with pytest.raises(ConfigError, match="batch_size=100 is larger"):
        build_data(_labelled_cfg(batch_size=100))


def _tiny(sources: list[str]):
    from xdomain.datamodule import build_data
    from xdomain.methods.stargan import StarGAN

    data = build_data(_labelled_cfg(sources=sources))
    cfg = StarGAN.Config(g_conv_dim=4, g_repeat_num=1, d_conv_dim=4, d_repeat_num=3)
    torch.manual_seed(0)
    return StarGAN(cfg, data.spec), data


def test_stargan_update_order_and_golden_losses() -> None:
    method, data = _tiny(["digits-styled", "digits-handwritten"])
    torch.manual_seed(0)
    stream = data.stream()
    g0 = [p.detach().clone() for p in method.G.parameters()]
    logs = [method.train_step(next(stream), step) for step in range(4)]
    # D every step, G only at step 4 ((step + 1) % n_critic == 0), once per data set
    assert all(p.equal(q) for p, q in zip(g0, method.G.parameters(), strict=True))
    logs.append(method.train_step(next(stream), 4))
    assert not all(p.equal(q) for p, q in zip(g0, method.G.parameters(), strict=True))
    assert all("g_rec_0" not in r for r in logs[:4])
    assert sorted(logs[4]) == sorted(
        f"{k}_{i}"
        for i in (0, 1)
        for k in ("d_real", "d_fake", "d_cls", "d_gp", "g_fake", "g_cls", "g_rec")
    )
    got = {k: round(v, 4) for k, v in logs[4].items() if k in ("d_cls_0", "d_cls_1", "g_rec_1")}
    assert got == GOLDEN


# measured at this commit on this CPU; an untrained D_cls is near chance: ln 4 + 2 ln 2 = 2.77
# for the styled labels and ln 10 = 2.30 for the digit class
GOLDEN = {"d_cls_0": 2.7645, "d_cls_1": 2.3035, "g_rec_1": 0.9681}


def test_translate_targets_and_their_errors(tmp_path) -> None:
    from PIL import Image

    method, data = _tiny(["digits-styled", "digits-handwritten"])
    x = data.fixed()["x0"][:3]
    y = method.translate(x, target="bg=red,bold=1")
    assert y.shape == (3, 3, 32, 32)
    grid = method.translate(x, target="all")
    assert grid.shape == (3, 1 + 6 + 10, 3, 32, 32) and grid[:, 0].equal(x)
    assert method.translate(x[0], target="digit=7").shape == (3, 32, 32)
    pil = method.translate(Image.new("RGB", (40, 30), "red"), target="italic=0")
    assert pil.size == (32, 32)
    with pytest.raises(XDomainError, match="unknown attribute 'hair'; valid: digits-styled: bg"):
        method.translate(x, target="hair=blond")
    with pytest.raises(XDomainError, match="mixes attributes of datasets"):
        method.translate(x, target="bg=red,digit=3")
    with pytest.raises(XDomainError, match="translates to a target"):
        method.translate(x)
    with pytest.raises(XDomainError, match=r"this model takes \(3, 18\)"):
        method.translate(x, target=torch.zeros(3, 5))
    with pytest.raises(XDomainError, match="does not take 'z'"):
        method.translate(x, target="bold=1", z=torch.zeros(1))
    method.visualize(data.fixed(), tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size[1] > im.size[0]  # one row per target of both data sets


def test_translation_leaves_the_running_statistics_alone() -> None:
    method, data = _tiny(["digits-styled"])
    before = {k: v.clone() for k, v in method.G.state_dict().items() if "running" in k}
    method.translate(data.fixed()["x0"], target="all")
    after = {k: v for k, v in method.G.state_dict().items() if "running" in k}
    assert all(before[k].equal(after[k]) for k in before)
    assert method.G.training  # back in the mode it was in, norms with their momentum
    assert all(
        m.momentum == 0.1 for m in method.G.modules() if isinstance(m, torch.nn.InstanceNorm2d)
    )


def test_labelled_and_unpaired_methods_refuse_the_other_kind_of_data() -> None:
    from xdomain.datamodule import check_layout

    with pytest.raises(ConfigError, match=r"two unpaired domains .*; remove data\.sources"):
        check_layout("cyclegan", "unpaired", DataConfig(sources=["digits-styled"]))
    with pytest.raises(ConfigError, match=r"labelled data sets: set data\.sources"):
        check_layout("stargan", "labelled", DataConfig())
    check_layout("stargan", "labelled", DataConfig(sources=["digits-styled"]))  # no error


def test_styled_filter_makes_unpaired_domains_for_a_pairwise_model() -> None:
    from xdomain.data import load_domain
    from xdomain.data.sources import load_labelled

    full = load_labelled("digits-styled", "test", image_size=32, channels=3, seed=0, n=200)
    red = load_domain("digits-styled:bg=red,bold=1", "test", n=200)
    want = (full.labels[:, 0] == 1) & (full.labels[:, 4] == 1)
    assert len(red) == int(want.sum()) and red.labels.equal(full.identity[want])
    with pytest.raises(DataError, match="bg='pink' is not a value of bg; valid: red, green"):
        load_domain("digits-styled:bg=pink", "test", n=50)
