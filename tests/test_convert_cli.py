"""`xdomain convert` + `xdomain translate` on files saved in the official formats.

The files are made from the parity fixtures the way the official code saves them (a CycleGAN
state_dict with the stale InstanceNorm keys of old releases; an SKTBrain whole-module pickle),
converted by the CLI in a real process, then translated from the CLI and the Python API. The
converted networks must reproduce the official outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import cli
from parity import ATOL, load_fixture, official_state
from PIL import Image
from test_convert_readers import _quiet, official_model_module

import xdomain


def _cyclegan_file(tmp_path, name: str = "horse2zebra.pth"):
    fx = load_fixture("cyclegan_resnet_9blocks_G")
    state = official_state(fx)
    # old CycleGAN releases left InstanceNorm statistics in the file; upstream drops them
    state["model.2.running_mean"] = torch.zeros(8)
    state["model.2.running_var"] = torch.ones(8)
    path = tmp_path / name
    torch.save(state, path)
    return fx, path


def test_convert_cyclegan_then_translate_any_size(tmp_path):
    fx, path = _cyclegan_file(tmp_path)
    run = tmp_path / "h2z"
    r = cli("convert", "--from", "cyclegan", str(path), "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert "G_ab <- " in r.stdout and "no file for D_a, D_b, G_ba" in r.stdout

    method = xdomain.load(run)
    assert type(method).__name__ == "CycleGAN" and method.cfg.n_blocks == 9
    got = method.translate(fx["input"].clone())
    torch.testing.assert_close(got, fx["output_eval"], atol=ATOL, rtol=ATOL)

    # a photo of its own size (neither square nor a multiple of 4) comes back at that size
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (45, 70, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    out = tmp_path / "out"
    r = cli("translate", str(run), str(tmp_path / "p.png"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out / "p.png") as im:
        assert im.size == (70, 45)
    # no b -> a generator was converted: refused, not a random network's output
    r = cli("translate", str(run), str(tmp_path / "p.png"), "--out", str(out), "--reverse")
    assert r.returncode == 2 and "without the b -> a generator (G_ba)" in r.stderr


def test_convert_cyclegan_refuses_a_non_empty_out_and_a_pickle_that_runs_code(tmp_path):
    _, path = _cyclegan_file(tmp_path)
    run = tmp_path / "run"
    assert cli("convert", "--from", "cyclegan", str(path), "--out", str(run)).returncode == 0
    r = cli("convert", "--from", "cyclegan", str(path), "--out", str(run))
    assert r.returncode == 2 and "is not empty" in r.stderr

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    torch.save({"model.1.weight": Payload()}, evil)
    r = cli("convert", "--from", "cyclegan", str(evil), "--out", str(tmp_path / "e"))
    assert r.returncode == 2 and "refused" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not marker.exists()


def test_convert_discogan_whole_module_pickles(tmp_path):
    """SKTBrain's files: model_gen_B maps A -> B (our G_ab), model_gen_A maps B -> A."""
    fx = load_fixture("discogan_G")
    state = official_state(fx)
    files = []
    with official_model_module() as mod:
        for name in ("model_gen_A-5", "model_gen_B-5"):
            net = mod.Generator()
            net.load_state_dict(state)
            with _quiet():
                torch.save(net, tmp_path / name)
            files.append(str(tmp_path / name))
    run = tmp_path / "disco"
    r = cli("convert", "--from", "discogan", *files, "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert "G_ab <- " in r.stdout and "model_gen_B-5" in r.stdout.split("G_ab <- ")[1]

    method = xdomain.load(run)
    assert method.spec.image_size == 64 and method.cfg.net == "conv"
    # the official networks take and give [0, 1]; ours translate [-1, 1] images
    for reverse in (False, True):
        y = method.translate(fx["input"].clone() * 2 - 1, reverse=reverse)
        torch.testing.assert_close((y + 1) / 2, fx["output_eval"], atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("family", ["cyclegan", "discogan"])
def test_convert_errors_are_one_line(tmp_path, family):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    r = cli("convert", "--from", family, str(junk), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and str(junk) in r.stderr and len(r.stderr.splitlines()) == 1
    r = cli("convert", "--from", family, str(tmp_path / "missing.pth"), "--out", str(tmp_path))
    assert r.returncode == 2 and "is not a file" in r.stderr


def test_convert_ugatit_bundle(tmp_path):
    """UGATIT-pytorch saves the six networks in one file; all six come back under our names."""
    g = load_fixture("ugatit_G")
    d_global, d_local = (
        official_state(load_fixture(n)) for n in ("ugatit_D_global", "ugatit_D_local")
    )
    bundle = {"genA2B": official_state(g), "genB2A": official_state(g)}
    bundle |= {"disGA": d_global, "disGB": d_global, "disLA": d_local, "disLB": d_local}
    path = tmp_path / "selfie2anime_params_latest.pt"
    torch.save(bundle, path)
    run = tmp_path / "u"
    r = cli("convert", "--from", "ugatit", str(path), "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert "no file for" not in r.stdout  # nothing left untrained
    method = xdomain.load(run)
    assert method.spec.image_size == 64 and method.cfg.n_layers_global == 7
    for reverse in (False, True):
        y = method.translate(g["input"].clone(), reverse=reverse)
        torch.testing.assert_close(y, g["output_eval.0"], atol=ATOL, rtol=ATOL)
