"""Closed-form checks of xdomain.losses."""

import math

import pytest
import torch

from xdomain.data.augment import diff_augment
from xdomain.losses import (
    gan_d,
    gan_d_fake,
    gan_d_heads,
    gan_d_real,
    gan_g,
    gan_g_heads,
    tv_loss,
)


def test_gan_losses_closed_form() -> None:
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    # vanilla: softplus(-r) + softplus(f)
    sp = math.log1p  # softplus(t) = log(1 + e^t)
    want = (sp(1) + sp(math.exp(-2))) / 2 + (sp(1) + sp(math.exp(-1))) / 2
    assert gan_d(real, fake, "vanilla").item() == pytest.approx(want, rel=1e-6)
    assert gan_g(fake, "vanilla").item() == pytest.approx(
        (math.log(2) + math.log1p(math.e)) / 2, rel=1e-6
    )
    # lsgan: (r-1)^2 + f^2 ; G: (f-1)^2
    assert gan_d(real, fake, "lsgan").item() == pytest.approx((1 + 1) / 2 + (0 + 1) / 2)
    assert gan_g(fake, "lsgan").item() == pytest.approx((1 + 4) / 2)
    # hinge: relu(1-r) + relu(1+f) ; G: -f
    assert gan_d(real, fake, "hinge").item() == pytest.approx((1 + 0) / 2 + (1 + 0) / 2)
    assert gan_g(fake, "hinge").item() == pytest.approx(0.5)
    for kind in ("vanilla", "lsgan", "hinge"):
        halves = gan_d_real(real, kind) + gan_d_fake(fake, kind)
        assert torch.allclose(gan_d(real, fake, kind), halves)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        gan_g(fake, "wgan")  # type: ignore[arg-type]


def test_tv_loss_closed_form() -> None:
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, :, 1:] = 1.0  # a vertical step: dx = 1 on the first column of differences
    # differences over the (2, 2) top-left grid: dx = [[1, 0], [1, 0]], dy = 0
    assert tv_loss(x, beta=2.0).item() == pytest.approx(0.5)
    assert tv_loss(x, beta=1.0).item() == pytest.approx(0.5, abs=1e-4)
    assert tv_loss(torch.ones(2, 3, 4, 4)).item() == pytest.approx(0.0, abs=1e-3)


def test_diff_augment_shapes_determinism_and_gradient() -> None:
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_()
    assert torch.equal(diff_augment(x, ""), x)
    policy = "color,translation,cutout"
    a = diff_augment(x, policy, torch.Generator().manual_seed(0))
    b = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        diff_augment(x, "flip")


def test_translation_keeps_content_and_cutout_blanks_a_square() -> None:
    x = torch.full((1, 1, 8, 8), -1.0)
    x[0, 0, 3:5, 3:5] = 1.0
    y = diff_augment(x, "translation", torch.Generator().manual_seed(1))
    assert y.sum() == x.sum()  # a shift of at most 1 px keeps the 2x2 blob inside the frame
    z = diff_augment(
        torch.ones(1, 1, 8, 8).clone().sub_(torch.eye(8)),
        "cutout",
        torch.Generator().manual_seed(0),
    )
    assert (z == z.min()).sum() >= 16  # a 4x4 hole at the image minimum


def test_feature_matching_compares_batch_means_per_layer():
    from xdomain.losses import feature_matching

    real = [torch.ones(4, 2, 3, 3), torch.zeros(4, 5)]
    fake = [
        torch.zeros(4, 2, 3, 3, requires_grad=True),
        torch.full((4, 5), 2.0, requires_grad=True),
    ]
    loss = feature_matching(real, fake)
    assert float(loss) == 1.0 + 4.0  # (1 - 0)^2 and (0 - 2)^2, each averaged over its elements
    loss.backward()
    assert fake[0].grad is not None and float(fake[0].grad.abs().sum()) > 0
    # a batch with the same mean matches, whatever its spread (the point of the loss)
    spread = [torch.tensor([[0.0], [2.0]])]
    assert float(feature_matching([torch.ones(2, 1)], spread)) == 0.0


def test_gan_heads_sum_every_present_head_and_skip_absent_ones():
    g = torch.Generator().manual_seed(0)
    r1, r2, f1, f2 = (torch.randn(2, 1, 4, 4, generator=g) for _ in range(4))
    want_d = gan_d_real(r1, "lsgan") + gan_d_fake(f1, "lsgan")
    want_d = want_d + gan_d_real(r2, "lsgan") + gan_d_fake(f2, "lsgan")
    torch.testing.assert_close(gan_d_heads([r1, None, r2], [f1, None, f2], "lsgan"), want_d)
    want_g = gan_g(f1, "lsgan") + gan_g(f2, "lsgan")
    torch.testing.assert_close(gan_g_heads([f1, None, f2], "lsgan"), want_g)
