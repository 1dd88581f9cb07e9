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


def _official_files(tmp_path):
    """`200000-G.ckpt` / `200000-D.ckpt` as yunjey/stargan's `save_model` writes them."""
    fg, fd = load_fixture("stargan_G"), load_fixture("stargan_D")
    g, d = tmp_path / "200000-G.ckpt", tmp_path / "200000-D.ckpt"
    torch.save(official_state(fg), g)
    torch.save(official_state(fd), d)
    return fg, fd, g, d


def test_convert_stargan_then_translate_with_targets(tmp_path) -> None:
    import numpy as np
    from helpers import cli
    from PIL import Image

    import xdomain

    fg, fd, g, d = _official_files(tmp_path)
    run = tmp_path / "celeba"
    r = cli("convert", "--from", "stargan", str(g), str(d), "--out", str(run))
    assert r.returncode == 0, r.stderr
    method = xdomain.load(run)
    assert type(method).__name__ == "StarGAN" and method.spec.image_size == 128
    assert [a.name for a in method.space.schemas[0].attributes] == ["hair", "male", "young"]
    # the official test script samples with batch statistics (it never calls eval()): default
    with method.evaluating():
        out = method.apply(fg["input"].clone(), fg["c"].clone())
        _, cls = method.D(fd["input"].clone())
    torch.testing.assert_close(out, fg["output_train"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(cls, fd["output_eval.1"], atol=ATOL, rtol=ATOL)
    assert not method.untrained

    # from the CLI: one target, and the official grid (input + 3 hair colours + 2 flips)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (150, 130, 3), dtype=np.uint8)).save(tmp_path / "f.png")
    out_dir = tmp_path / "out"
    r = cli(
        "translate",
        str(run),
        str(tmp_path / "f.png"),
        "--out",
        str(out_dir),
        "--target",
        "hair=blond,male=0",
    )
    assert r.returncode == 0, r.stderr
    with Image.open(out_dir / "f.png") as im:
        assert im.size == (128, 128)
    grid = tmp_path / "grid"
    r = cli("translate", str(run), str(tmp_path / "f.png"), "--out", str(grid), "--all-targets")
    assert r.returncode == 0, r.stderr
    with Image.open(grid / "f.png") as im:
        assert im.size == (6 * 128, 128)
    # a wrong target is one line listing what exists
    r = cli(
        "translate",
        str(run),
        str(tmp_path / "f.png"),
        "--out",
        str(tmp_path / "o2"),
        "--target",
        "hair=green",
    )
    assert r.returncode == 2 and "valid: black, blond, brown" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_convert_stargan_generator_alone_and_bad_c_dim(tmp_path) -> None:
    from helpers import cli

    import xdomain

    fg, _, g, _ = _official_files(tmp_path)
    r = cli("convert", "--from", "stargan", str(g), "--out", str(tmp_path / "g"))
    assert r.returncode == 0, r.stderr
    method = xdomain.load(tmp_path / "g")
    assert method.untrained == ["D"]
    # G's tensors as given: a (B, c_dim) tensor target needs no D
    x = torch.nn.functional.interpolate(fg["input"], size=128)
    y = method.translate(x, target=torch.ones(2, 5))
    assert y.shape == (2, 3, 128, 128)
    # a generator of another c_dim needs --attrs
    state = official_state(fg)
    state["main.0.weight"] = state["main.0.weight"][:, :7]  # 3 + 4 labels
    odd = tmp_path / "odd-G.ckpt"
    torch.save(state, odd)
    r = cli("convert", "--from", "stargan", str(odd), "--out", str(tmp_path / "odd"))
    assert r.returncode == 2 and "--attrs" in r.stderr
