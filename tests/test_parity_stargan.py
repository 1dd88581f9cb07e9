"""StarGAN parity: the official yunjey/stargan Generator and Discriminator weights load into our
networks (same keys) and reproduce the official outputs in train and eval mode (the eval output
of G differs: its instance norms track running statistics)."""

from __future__ import annotations

import torch
from parity import ATOL, load_fixture, official_state

from xdomain.nn.stargan import StarDiscriminator, StarGenerator


def test_stargan_generator_matches_official_in_train_and_eval() -> None:
    fx = load_fixture("stargan_G")
    state = official_state(fx)
    g = StarGenerator(conv_dim=16, c_dim=5, repeat_num=6)
    g.load_state_dict(state, strict=True)
    g.train()
    out = g(fx["input"].clone(), fx["c"].clone())
    torch.testing.assert_close(out, fx["output_train"], atol=ATOL, rtol=ATOL)
    g.load_state_dict(state, strict=True)  # the train forward moved the running statistics
    g.eval()
    with torch.no_grad():
        out = g(fx["input"].clone(), fx["c"].clone())
    torch.testing.assert_close(out, fx["output_eval"], atol=ATOL, rtol=ATOL)
    assert not torch.allclose(fx["output_train"], fx["output_eval"], atol=1e-2)


def test_stargan_discriminator_matches_official() -> None:
    fx = load_fixture("stargan_D")
    d = StarDiscriminator(image_size=128, conv_dim=8, c_dim=5, repeat_num=6)
    d.load_state_dict(official_state(fx), strict=True)
    for mode in ("train", "eval"):
        d.train(mode == "train")
        with torch.no_grad():
            src, cls = d(fx["input"].clone())
        assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 5)
        torch.testing.assert_close(src, fx[f"output_{mode}.0"], atol=ATOL, rtol=ATOL)
        torch.testing.assert_close(cls, fx[f"output_{mode}.1"], atol=ATOL, rtol=ATOL)
