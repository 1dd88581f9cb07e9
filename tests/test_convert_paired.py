"""`xdomain convert --from pix2pix|bicyclegan` on files saved in the official format (made from
the parity fixtures), then `xdomain translate` with the latent-code options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cli
from parity import ATOL, load_fixture, official_state
from PIL import Image
from test_parity_bicyclegan import _OfficialE

import xdomain
from xdomain.convert.official import convert
from xdomain.errors import XDomainError


def _save(tmp_path, fixture: str, name: str):
    fx = load_fixture(fixture)
    path = tmp_path / name
    torch.save(official_state(fx), path)  # what the official `save_networks` writes
    return fx, path


def _photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "edges.png"
    Image.fromarray(rng.integers(0, 255, (140, 170, 3), dtype=np.uint8)).save(path)
    return path


def test_convert_bicyclegan_g_and_d_then_translate_samples(tmp_path):
    fg, g = _save(tmp_path, "bicyclegan_G_unet_128_add_all", "latest_net_G.pth")
    fd, d = _save(tmp_path, "bicyclegan_D_basic_256_multi", "latest_net_D.pth")
    run = tmp_path / "bicycle"
    r = cli("convert", "--from", "bicyclegan", str(g), str(d), "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert "E, D2" in r.stdout or "D2, E" in r.stdout  # no file for them: untrained, said so
    method = xdomain.load(run)
    assert type(method).__name__ == "BicycleGAN" and method.spec.image_size == 128
    with method.evaluating():
        out = method.G(fg["input"], fg["z"])
        scales = method.D(fd["input"])
    torch.testing.assert_close(out, fg["output_eval"], atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(scales[1], fd["output_eval.1"], atol=ATOL, rtol=ATOL)
    # the Python API: the fixture's codes, one per input
    y = method.translate(fg["input"], z=fg["z"][:, None])
    torch.testing.assert_close(y[:, 0], fg["output_eval"], atol=ATOL, rtol=ATOL)

    photo = _photo(tmp_path)
    r = cli("translate", str(run), str(photo), "--out", str(tmp_path / "o"), "--samples", "3")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "o" / "edges.png") as im:
        assert im.size == (3 * 128, 128)
    r = cli("translate", str(run), str(photo), "--out", str(tmp_path / "s"), "--style", str(photo))
    assert r.returncode != 0 and "without the encoder (E)" in r.stderr
    assert "Traceback" not in r.stderr


def test_convert_bicyclegan_encoder_of_another_size_is_one_line(tmp_path):
    _, g = _save(tmp_path, "bicyclegan_G_unet_128_add_all", "latest_net_G.pth")
    _, e = _save(tmp_path, "bicyclegan_E_resnet_256", "latest_net_E.pth")  # a 256 px encoder
    r = cli("convert", "--from", "bicyclegan", str(g), str(e), "--out", str(tmp_path / "x"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "e_blocks" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_convert_bicyclegan_refuses_an_n_layer_encoder(tmp_path):
    """The key converter reads an official E_NLayers (`--netE conv_*`, tested against the
    official layout in test_parity_bicyclegan), but xdomain's BicycleGAN builds the ResNet
    encoder: converting a run with one is a one-line refusal, before anything is written."""
    _, g = _save(tmp_path, "bicyclegan_G_unet_128_add_all", "latest_net_G.pth")
    e = tmp_path / "latest_net_E.pth"
    torch.save(_OfficialE("conv", 8, 8, 4, "instance", True).state_dict(), e)
    run = tmp_path / "x"
    with pytest.raises(XDomainError, match="holds a NLayerEncoder; xdomain's bicyclegan uses") as x:
        convert("bicyclegan", [g, e], run)
    assert "--netE resnet_128 / resnet_256" in str(x.value) and "\n" not in str(x.value)
    assert not run.exists()


def test_convert_pix2pix_generator_then_translate(tmp_path):
    fg, g = _save(tmp_path, "pix2pix_unet_128_G", "latest_net_G.pth")
    run = tmp_path / "p2p"
    r = cli("convert", "--from", "pix2pix", str(g), "--out", str(run))
    assert r.returncode == 0, r.stderr
    method = xdomain.load(run)
    assert type(method).__name__ == "Pix2Pix" and method.untrained == ["D"]
    y = method.translate(fg["input"])  # eval mode: batch norm's running statistics
    torch.testing.assert_close(y, fg["output_eval"], atol=ATOL, rtol=ATOL)
    r = cli("translate", str(run), str(_photo(tmp_path)), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    # an unconditional PatchGAN is not pix2pix's D (it sees input and output stacked)
    _, d = _save(tmp_path, "patchgan_basic_D_batch", "latest_net_D.pth")
    r = cli("convert", "--from", "pix2pix", str(g), str(d), "--out", str(tmp_path / "bad"))
    assert r.returncode != 0 and "takes 3 channels" in r.stderr and "Traceback" not in r.stderr
