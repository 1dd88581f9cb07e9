"""The CLI and the Python API as a user meets them: real processes, real files, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import xdomain
from xdomain.errors import XDomainError

TINY_DTN = [
    "train.steps=6",
    "train.ckpt_every=3",
    "train.sample_every=3",
    "eval.every=3",
    "train.log_every=2",
    "train.progress=false",
    "train.threads=1",
    "data.n_a=300",
    "data.batch_size=8",
    "eval.n_test=40",
    "model.width_f=8",
    "model.width_g=8",
    "model.width_d=8",
    "model.f_steps=20",
]


def xd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "xdomain.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def dtn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "dtn"
    r = xd("train", "dtn-digits", "--out", str(out), *TINY_DTN)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "report:" in r.stdout and "acc" in r.stdout
    return out


def test_recipes_lists_every_recipe_with_a_line():
    r = xd("recipes")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert {"dtn-digits", "discogan-toy"} <= set(names)
    assert all(len(line.split()) > 2 for line in r.stdout.splitlines())


def test_dry_run_prints_resolved_config():
    r = xd("train", "dtn-digits", "--dry-run", "train.steps=123", "model.lambda_tid=0")
    assert r.returncode == 0
    assert "steps: 123" in r.stdout and "lambda_tid: 0.0" in r.stdout and "method: dtn" in r.stdout


def test_misspelt_key_is_a_one_line_error_listing_valid_keys():
    r = xd("train", "dtn-digits", "--dry-run", "model.lamda_tid=0")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "unknown key 'model.lamda_tid'" in r.stderr and "lambda_tid" in r.stderr


def test_run_directory_layout(dtn_run):
    assert (dtn_run / "config.yaml").is_file() and (dtn_run / "report.html").is_file()
    assert (dtn_run / "checkpoints" / "latest").read_text().strip() == "step-0000006"
    assert sorted(p.name for p in (dtn_run / "samples").glob("*.png"))
    assert list((dtn_run / "tb").glob("events.out.tfevents.*"))
    records = [json.loads(x) for x in (dtn_run / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"train", "eval"}
    html = (dtn_run / "report.html").read_text()
    assert "data:image/png;base64" in html and "Final metrics" in html


def test_translate_files_folders_and_globs(dtn_run, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(src / "one.png")
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(src / "sub" / "two.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8)).save(src / "three.png")
    out = tmp_path / "out"
    r = xd(
        "translate",
        str(dtn_run),
        str(src / "sub"),
        str(src / "*.png"),
        "--out",
        str(out),
        "--batch-size",
        "2",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    made = sorted(p.name for p in out.glob("*.png"))
    assert made == ["one.png", "three.png", "two.png"]
    assert Image.open(out / "one.png").size == (32, 32)


def test_translate_bad_inputs_are_one_line_errors(dtn_run, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    r = xd("translate", str(dtn_run), str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "bad.png" in r.stderr and "Traceback" not in r.stderr
    r = xd("translate", str(dtn_run), str(tmp_path / "nothing*.png"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "not a file, folder or matching glob" in r.stderr
    r = xd("translate", str(tmp_path), str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "not an xdomain checkpoint" in r.stderr


def test_evaluate_prints_table_and_json(dtn_run, tmp_path):
    out = tmp_path / "m.json"
    r = xd("evaluate", str(dtn_run), "--json", str(out), "--n-test", "40")
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics["acc"] <= 1.0 and metrics["fid_judge"] >= 0.0
    assert "acc" in r.stdout


def test_python_api_load_and_translate_tensors_and_pil(dtn_run):
    m = xdomain.load(dtn_run)
    assert not m.training and m.checkpoint_step == 6
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    y = m.translate(x)
    assert y.shape == (3, 3, 32, 32) and y.abs().max() <= 1.0
    # a single image gives what it gives in a batch (float kernels differ only by rounding)
    assert torch.allclose(m.translate(x[0]), y[0], atol=1e-5)
    img = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
    out = m.translate(img)
    assert isinstance(out, Image.Image) and out.size == (32, 32)
    assert len(m.translate([img, img])) == 2
    with pytest.raises(XDomainError, match="does not take 'z'"):
        m.translate(x, z=3)


def test_bad_folder_data_error_names_the_file(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(tmp_path / d / f"{i}.png")
    (tmp_path / "a" / "broken.png").write_bytes(b"")
    args = [
        "train",
        "dtn-digits",
        "--out",
        str(tmp_path / "run"),
        f"data.a={tmp_path / 'a'}",
        f"data.b={tmp_path / 'b'}",
        "--dry-run",
    ]
    assert xd(*args).returncode == 0  # the config is fine; the data is read when training
    r = xd(*args[:-1], "train.steps=1", "model.f_steps=1")
    assert r.returncode == 2 and "broken.png" in r.stderr and "on_bad_file=skip" in r.stderr
