"""The CLI and the Python API as a user meets them: real processes, real files, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli
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
    "model.f_adapt_steps=2",
]


xd = cli


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


def test_metrics_log_starts_with_the_data_fingerprint(dtn_run):
    header = json.loads((dtn_run / "metrics.jsonl").read_text().splitlines()[0])
    assert header["kind"] == "header" and len(header["data_fingerprint"]) == 16
    assert header["data_sources"]["a"].startswith("digits-printed v1 manifest-")
    final = json.loads((dtn_run / "final_metrics.json").read_text())
    assert final["data_fingerprint"] == header["data_fingerprint"]


def test_run_directory_layout(dtn_run):
    assert (dtn_run / "config.yaml").is_file() and (dtn_run / "report.html").is_file()
    assert (dtn_run / "checkpoints" / "latest").read_text().strip() == "step-0000006"
    assert sorted(p.name for p in (dtn_run / "samples").glob("*.png"))
    assert list((dtn_run / "tb").glob("events.out.tfevents.*"))
    records = [json.loads(x) for x in (dtn_run / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"header", "train", "eval"}
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
    # relative paths from the inputs' common folder are mirrored, not flattened
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == ["one.png", "sub/two.png", "three.png"]
    assert Image.open(out / "one.png").size == (32, 32)
    assert "translated 3 image(s)" in r.stdout and "step 6" in r.stdout


def _img(path: Path, size=(32, 32), value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_translate_never_writes_into_its_inputs(dtn_run, tmp_path):
    src = tmp_path / "in"
    original = _img(src / "a.png", value=7).read_bytes()
    for out in (src, tmp_path):  # the input folder itself, and a folder containing it
        r = xd("translate", str(dtn_run), str(src), "--out", str(out))
        assert r.returncode == 2 and "is or contains the input" in r.stderr, r.stderr
    assert (src / "a.png").read_bytes() == original
    # an output folder inside the input folder is never read back as input
    inner = src / "translated"
    for _ in range(2):
        r = xd("translate", str(dtn_run), str(src), "--out", str(inner))
        assert r.returncode == 0 and "translated 1 image(s)" in r.stdout, r.stderr
    assert sorted(p.name for p in inner.rglob("*.png")) == ["a.png"]


def test_translate_same_names_from_two_folders_one_output_each(dtn_run, tmp_path):
    inputs = [
        _img(tmp_path / "x" / "img.png"),
        _img(tmp_path / "x" / "img-2.png"),
        _img(tmp_path / "y" / "img.png"),
        _img(tmp_path / "y" / "img.jpg"),  # same stem as y/img.png
    ]
    out = tmp_path / "out"
    args = [str(tmp_path / "x"), str(tmp_path / "y"), str(inputs[0])]  # x/img.png given twice
    r = xd("translate", str(dtn_run), *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == ["x/img-2.png", "x/img.png", "y/img.jpg.png", "y/img.png"]
    assert "translated 4 image(s)" in r.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--batch-size", "-1"), ("--batch-size", "0"), ("--max-pixels", "0"), ("--limit", "x")],
)
def test_translate_validates_its_options(dtn_run, tmp_path, option, value):
    _img(tmp_path / "in" / "a.png")
    r = xd(
        "translate", str(dtn_run), str(tmp_path / "in"), "--out", str(tmp_path / "o"), option, value
    )
    assert r.returncode == 2 and f"argument {option}" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_translate_skips_bad_files_on_request_and_counts_what_it_wrote(dtn_run, tmp_path):
    _img(tmp_path / "in" / "good.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    out = tmp_path / "o"
    r = xd("translate", str(dtn_run), str(tmp_path / "in"), "--out", str(out))
    assert r.returncode == 2 and "--on-bad-file skip" in r.stderr and "data.on_bad" not in r.stderr
    r = xd(
        "translate", str(dtn_run), str(tmp_path / "in"), "--out", str(out), "--on-bad-file", "skip"
    )
    assert r.returncode == 0 and "translated 1 image(s)" in r.stdout and "1 skipped" in r.stdout
    assert "bad.png" in r.stderr and [p.name for p in out.glob("*.png")] == ["good.png"]


def test_translate_preprocess_output_size_format_limit_html(dtn_run, tmp_path):
    tall = _img(tmp_path / "in" / "tall.jpg", size=(20, 300), value=200)
    _img(tmp_path / "in" / "z.png")
    out = tmp_path / "o"
    r = xd(
        "translate",
        str(dtn_run),
        str(tall),
        "--out",
        str(out),
        "--preprocess",
        "pad",
        "--output-size",
        "input",
        "--format",
        "same",
        "--html",
    )
    assert r.returncode == 0, r.stderr
    assert Image.open(out / "tall.jpg").size == (20, 300)
    assert "tall.jpg" in (out / "index.html").read_text()
    r = xd(
        "translate",
        str(dtn_run),
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "o2"),
        "--limit",
        "1",
    )
    assert "translated 1 image(s)" in r.stdout


def test_evaluate_option_errors_are_one_line(dtn_run, tmp_path):
    r = xd("evaluate", str(dtn_run), "--json", str(tmp_path))
    assert r.returncode == 2 and "is a folder; give a file path" in r.stderr
    assert r.stderr.count("\n") == 1
    r = xd("evaluate", str(dtn_run), "--n-test", "-5")
    assert r.returncode == 2 and "argument --n-test: -5 must be > 0" in r.stderr
    r = xd("evaluate", str(dtn_run), "model.width_g=8")
    assert r.returncode == 2 and "'model.width_g=8' is not a data.* or eval.* key" in r.stderr
    r = xd("evaluate", str(dtn_run), "data.holdout_fonts=Nope")
    assert r.returncode == 2 and "unknown font family 'Nope'" in r.stderr
    assert r.stderr.count("\n") == 1


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
    report = json.loads(out.read_text())
    metrics = report["metrics"]
    assert 0.0 <= metrics["acc"] <= 1.0 and metrics["fid_judge"] >= 0.0
    assert metrics["kid_judge_std"] >= 0.0 and report["kid_scale"] == "raw (not x1000)"
    assert report["step"] == 6 and report["chosen_by"] == "--ckpt latest"
    assert report["n_scored"] == 40
    assert report["data_fingerprint"] == report["trained_data_fingerprint"]
    assert "acc" in r.stdout and "step 6, by --ckpt latest" in r.stdout
    assert "40 items scored" in r.stdout and "warning" not in r.stderr
    r = xd("evaluate", str(dtn_run), "--ckpt", "step-3", "--n-test", "99999")
    assert r.returncode == 2 and "larger than the test split" in r.stderr
    # other data on the command line: here the test digits in two font families apart
    out2 = tmp_path / "m2.json"
    r = xd("evaluate", str(dtn_run), "data.holdout_fonts=Lato,Roboto", "--json", str(out2))
    assert r.returncode == 0, r.stderr[-2000:]
    m2 = json.loads(out2.read_text())["metrics"]
    assert 0.0 <= m2["acc_heldout_fonts"] <= 1.0 and 0.0 <= m2["acc_seen_fonts"] <= 1.0
    assert "warning: the data differ" in r.stderr  # the run trained on every font


def test_evaluate_and_translate_warn_when_the_data_changed(dtn_run, tmp_path):
    """A checkpoint trained on other data (here: other pinned fonts) warns; --strict refuses."""
    import shutil

    ck = tmp_path / "ck"
    shutil.copytree(dtn_run / "checkpoints" / "step-0000006", ck)
    state = json.loads((ck / "state.json").read_text())
    state["data"]["id"] = "0" * 16
    state["data"]["sources"]["a"] = "digits-printed v1 manifest-0123456789abcdef"
    (ck / "state.json").write_text(json.dumps(state))
    r = xd("evaluate", str(ck), "--n-test", "20")
    assert r.returncode == 0 and "warning: the data differ" in r.stderr
    assert "manifest-0123456789abcdef" in r.stderr
    r = xd("evaluate", str(ck), "--n-test", "20", "--strict")
    assert r.returncode == 2 and "--strict: the data differ" in r.stderr
    _img(tmp_path / "in" / "a.png")
    r = xd("translate", str(ck), str(tmp_path / "in"), "--out", str(tmp_path / "o"))
    assert r.returncode == 0 and "warning: the data differ" in r.stderr


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


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda: torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "x.float\\(\\) / 127.5 - 1"),
        (lambda: torch.zeros(2, 1, 32, 32), "got shape \\(2, 1, 32, 32\\)"),
        (lambda: torch.zeros(3, 28, 28), "got shape"),
        (lambda: torch.full((1, 3, 32, 32), 255.0), "from 0..255: x / 127.5 - 1"),
        (lambda: torch.full((1, 3, 32, 32), math.nan), "NaN"),
        (lambda: [torch.zeros(3, 32, 32)], "torch.stack"),
        (lambda: np.zeros((32, 32, 3), np.uint8), "PIL.Image.fromarray"),
    ],
)
def test_python_api_refuses_what_it_cannot_translate(dtn_run, make, expect):
    m = xdomain.load(dtn_run)
    with pytest.raises(XDomainError, match=expect):
        m.translate(make())


def test_python_api_warns_on_zero_one_images(dtn_run):
    m = xdomain.load(dtn_run)
    with pytest.warns(UserWarning, match="x \\* 2 - 1"):
        m.translate(torch.rand(2, 3, 32, 32))


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
    r = xd(*args[:-1], "train.steps=1", "model.f_steps=1", "model.f_adapt_steps=1")
    assert r.returncode == 2 and "broken.png" in r.stderr and "on_bad_file=skip" in r.stderr


def test_data_command_on_toy_specs_small_folders_and_unpaired_roots(tmp_path):
    r = xd("data", "toy-gmm:line10")
    assert r.returncode == 0 and "10 modes" in r.stdout, r.stderr
    for name in ("trainA", "trainB", "testA", "testB"):
        for i in range(3):
            _img(tmp_path / "root" / name / f"{i}.png", value=30 * i)
    r = xd("data", str(tmp_path / "root" / "trainA"), "--grid", str(tmp_path / "g.png"))
    assert r.returncode == 0 and "3 images" in r.stdout, r.stderr  # < 10 images: no crash
    assert Image.open(tmp_path / "g.png").size[0] > 0
    r = xd("data", str(tmp_path / "root"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["[trainA]:", "[trainB]:"]
    r = xd("data", str(tmp_path / "root"), "--split", "test")
    assert "[testA]" in r.stdout and "[testB]" in r.stdout


def test_evaluation_is_unchanged_by_an_extra_system_font(dtn_run, tmp_path, install_extra_font):
    """The issue's experiment: a font installed between training and evaluation changes nothing."""
    before = xd("evaluate", str(dtn_run), "--n-test", "60", "--json", str(tmp_path / "1.json"))
    install_extra_font()
    after = xd("evaluate", str(dtn_run), "--n-test", "60", "--json", str(tmp_path / "2.json"))
    assert before.returncode == after.returncode == 0, after.stderr[-2000:]
    one, two = (json.loads((tmp_path / f"{i}.json").read_text()) for i in (1, 2))
    assert one["metrics"] == two["metrics"] and one["data_fingerprint"] == two["data_fingerprint"]
    assert "warning" not in after.stderr
