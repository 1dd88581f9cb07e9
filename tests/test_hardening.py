"""The hostile and careless cases of issue 23 on the command line and the Python API: no command
writes over a run's files or its inputs, every count a user gives is bounded, and the input's
faults are one-line errors, never a traceback or a silently wrong result. Each test reproduced
its case before the fix. (The data-side cases, target strings and folder layouts are in
tests/test_hardening_data.py.)"""

from __future__ import annotations

import resource
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import fuzz
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

import xdomain
from xdomain.cli import main
from xdomain.config import load_config
from xdomain.errors import CheckpointError, XDomainError
from xdomain.limits import MAX_OUTPUT_BYTES
from xdomain.methods import METHODS
from xdomain.methods.base import DataSpec
from xdomain.optim import lost_peer
from xdomain.train import Trainer

torch.set_num_threads(1)

QUIET = ["train.progress=false", "train.threads=1"]
TINY_PAIRED = ["data.n_a=16", "data.batch_size=4", "model.ngf=4", "model.ndf=4"]
TINY_BICYCLE = [*TINY_PAIRED, "model.nef=4", "train.decay_start=null"]
TINY_STAR = ["model.g_conv_dim=4", "model.d_conv_dim=4", "model.g_repeat_num=1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # the session's shared cache: rendered data and judges are built once for every test file
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path.parent / "xdomain-cache-shared"))


def saved_run(out: Path, recipe: str, *overrides: str) -> Path:
    """A run directory with one checkpoint at step 0, written by the Trainer without training:
    a real run's files (config.yaml, checkpoints/, state.json) in a second."""
    trainer = Trainer(load_config(recipe, [*QUIET, *overrides]), out)
    trainer.save()
    trainer.close()
    return out


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """`xdomain ARGS` in this process -> (exit status, stderr); argparse errors exit with 2."""
    try:
        rc = main([*map(str, args)])
    except SystemExit as e:
        rc = int(e.code or 0)
    err = capsys.readouterr().err
    return rc, err


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and "Traceback" not in err and "internal error" not in err, err
    return lines[-1]


def image(path: Path, w: int = 32, h: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def module_run(tmp_path_factory, name: str, recipe: str, *overrides: str) -> Path:
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDOMAIN_CACHE", str(tmp_path_factory.getbasetemp() / "xdomain-cache-shared"))
        return saved_run(root / "run", recipe, *overrides)


@pytest.fixture(scope="module")
def bicycle_run(tmp_path_factory):
    return module_run(tmp_path_factory, "bicycle", "bicyclegan-glyphs", *TINY_BICYCLE)


# ----------------------------------------------------------------------------- data loss


def test_evaluate_json_never_writes_over_a_runs_files_or_a_foreign_file(tmp_path, capsys):
    run = saved_run(tmp_path / "run", "discogan-toy", "train.steps=20")
    ckpt = next((run / "checkpoints").glob("step-*"))
    for victim in (run / "config.yaml", ckpt / "state.json", ckpt / "model.safetensors"):
        before = victim.read_bytes()
        for extra in ([], ["--overwrite"]):  # a run's file: not even with --overwrite
            line = one_line_error(*run_cli(capsys, "evaluate", run, "--json", victim, *extra))
            assert ("belongs to" in line and str(victim.name) in line) or "checkpoint" in line
        assert victim.read_bytes() == before
    assert xdomain.load(run).checkpoint_step == 0  # the run still loads

    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    line = one_line_error(*run_cli(capsys, "evaluate", run, "--json", mine))
    assert "--overwrite" in line and mine.read_text() == '{"my": "notes"}'
    assert run_cli(capsys, "evaluate", run, "--json", mine, "--overwrite")[0] == 0
    # an earlier evaluate output is replaced without --overwrite; a new file inside the run
    # directory (not one of its artefacts) is fine
    inside = run / "eval.json"
    for _ in range(2):
        rc, err = run_cli(capsys, "evaluate", run, "--json", inside)
        assert rc == 0, err
    assert '"written_by": "xdomain evaluate"' in inside.read_text()


def test_translate_never_writes_into_a_run_or_over_a_users_files(bicycle_run, tmp_path, capsys):
    src = image(tmp_path / "in" / "p.png")
    for out in (bicycle_run, bicycle_run / "checkpoints" / "x", bicycle_run / "samples"):
        line = one_line_error(*run_cli(capsys, "translate", bicycle_run, src, "--out", out))
        assert "run" in line
    assert not (bicycle_run / "checkpoints" / "x").exists()
    # a folder of the user's with a file of the output's name: kept unless --overwrite
    mine = tmp_path / "photos"
    image(mine / "p.png", seed=1)
    before = (mine / "p.png").read_bytes()
    line = one_line_error(*run_cli(capsys, "translate", bicycle_run, src, "--out", mine))
    assert "--overwrite" in line and (mine / "p.png").read_bytes() == before
    assert run_cli(capsys, "translate", bicycle_run, src, "--out", mine, "--overwrite")[0] == 0
    assert (mine / "p.png").read_bytes() != before
    # an earlier translate output is rewritten freely (the marker), index.html included
    out = tmp_path / "out"
    for _ in range(2):
        assert run_cli(capsys, "translate", bicycle_run, src, "--out", out, "--html")[0] == 0
    # --html into a user's folder that has an index.html: refused
    page = tmp_path / "site"
    page.mkdir()
    (page / "index.html").write_text("mine")
    line = one_line_error(*run_cli(capsys, "translate", bicycle_run, src, "--out", page, "--html"))
    assert "index.html" in line and (page / "index.html").read_text() == "mine"


def test_data_grid_never_writes_over_inputs_or_foreign_files(tmp_path, capsys):
    folder = tmp_path / "imgs"
    for i in range(3):
        image(folder / f"{i}.png", seed=i)
    before = (folder / "0.png").read_bytes()
    line = one_line_error(*run_cli(capsys, "data", folder, "--grid", folder / "0.png"))
    assert "inside the data folder" in line and (folder / "0.png").read_bytes() == before
    grid = tmp_path / "grid.png"
    for _ in range(2):  # its own earlier grid is replaced
        assert run_cli(capsys, "data", folder, "--grid", grid)[0] == 0
    other = image(tmp_path / "photo.png")
    before = other.read_bytes()
    line = one_line_error(*run_cli(capsys, "data", folder, "--grid", other))
    assert "--overwrite" in line and other.read_bytes() == before
    assert run_cli(capsys, "data", folder, "--grid", other, "--overwrite")[0] == 0


def test_convert_never_deletes_its_own_input_and_hints_overwrite_not_resume(tmp_path, capsys):
    from parity import load_fixture, official_state

    state = official_state(load_fixture("cyclegan_resnet_6blocks_G"))
    run = tmp_path / "run"
    first = tmp_path / "h2z.pth"
    torch.save(state, first)
    assert run_cli(capsys, "convert", "--from", "cyclegan", first, "--out", run)[0] == 0
    line = one_line_error(*run_cli(capsys, "convert", "--from", "cyclegan", first, "--out", run))
    assert "--overwrite" in line and "--resume" not in line
    # the official file kept inside the folder that --overwrite replaces: refused, kept
    inside = run / "checkpoints" / "h2z.pth"
    torch.save(state, inside)
    args = ("convert", "--from", "cyclegan", inside, "--out", run, "--overwrite")
    line = one_line_error(*run_cli(capsys, *args))
    assert "move the official file" in line and inside.is_file()


# ----------------------------------------------------------------------------- unbounded work


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def test_counts_are_bounded_on_the_cli(bicycle_run, tmp_path, capsys):
    src = image(tmp_path / "in" / "p.png")
    out = tmp_path / "out"
    for flag, n in (("--samples", 100000), ("--interpolate", 100000), ("--morph", 1000000)):
        rc, err = run_cli(capsys, "translate", bicycle_run, src, "--out", out, flag, n)
        assert rc == 2 and "at most 256 outputs per input" in err, err
    for seed, why in (("18446744073709551616", "2**63 - 1"), ("-1", ">= 0")):
        rc, err = run_cli(capsys, "translate", bicycle_run, src, "--out", out, "--seed", seed)
        assert rc == 2 and why in err and "internal error" not in err
    rc, err = run_cli(capsys, "translate", bicycle_run, src, "--out", out, "--max-pixels", 10**12)
    assert rc == 2 and "shrink such images" in err
    rc, err = run_cli(capsys, "translate", bicycle_run, src, "--out", out, "--batch-size", 10**9)
    assert rc == 2 and "at most 1024 images per forward pass" in err
    assert not out.exists()


def test_counts_are_bounded_in_python_and_memory_stays_flat(bicycle_run):
    m = xdomain.load(bicycle_run)
    x = torch.zeros(2, 3, 32, 32)
    huge = torch.randn(5_000_000, 8)  # 160 MB of codes: 114 GiB of outputs
    rss = _max_rss_mb()
    with pytest.raises(XDomainError, match="1 to 4096"):
        m.translate(x, z=100000)
    with pytest.raises(XDomainError, match="at most 1 GiB"):
        m.translate(x, z=huge)
    assert _max_rss_mb() - rss < 100  # refused before any output was allocated
    # many codes stream through G in chunks: the result equals the codes sent in two halves
    codes = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    y = m.translate(x, z=codes)  # 200 (input, code) rows: four passes of at most 64
    halves = torch.cat([m.translate(x, z=codes[:50]), m.translate(x, z=codes[50:])], dim=1)
    torch.testing.assert_close(y, halves, atol=1e-6, rtol=0)
    assert MAX_OUTPUT_BYTES == 1 << 30


# ----------------------------------------------------------------------------- tracebacks

TINY = {
    "dtn": {"width_f": 4, "width_g": 4, "width_d": 4, "feat_dim": 8},
    "discogan": {"net": "conv"},
    "cyclegan": {"ngf": 4, "ndf": 4, "n_blocks": 1},
    "ugatit": {"ngf": 4, "ndf": 4, "n_blocks": 1, "n_layers_global": 5, "n_layers_local": 3},
    "stargan": {"g_conv_dim": 4, "g_repeat_num": 1, "d_conv_dim": 4, "d_repeat_num": 3},
    "pix2pix": {"ngf": 4, "ndf": 4, "num_downs": 5},
    "bicyclegan": {"ngf": 4, "ndf": 4, "nef": 4, "num_downs": 5, "e_blocks": 2},
    "morph_ugatit": {"ngf": 4, "ndf": 4, "n_blocks": 1, "n_blocks_d": 4, "mapping_layers": 2},
}
STYLED = [
    {
        "dataset": "digits-styled",
        "attributes": [
            {"name": "bg", "kind": "group", "values": ["red", "blue"]},
            {"name": "bold", "kind": "binary", "values": []},
        ],
    }
]
OPTIONS = {  # every translate option each method declares, and a value for it
    "stargan": [{"target": "bg=red"}, {"target": "all"}],
    "bicyclegan": [{}, {"z": 3}, {"z": torch.zeros(2, 8)}],
    "morph_ugatit": [{}, {"alpha": 0.5}, {"alpha": [0.0, 1.0]}],
}


def tiny_method(name: str):
    cls = METHODS[name]
    spec_kw = {"labels": STYLED} if name == "stargan" else {}
    if name == "dtn":
        spec_kw = {"num_classes_a": 10, "num_classes_b": 10}
    torch.manual_seed(0)
    return cls(cls.Config(**TINY[name]), DataSpec(image_size=32, **spec_kw)).eval()


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_method_translates_an_empty_batch(name):
    m = tiny_method(name)
    s = m.spec
    for kw in OPTIONS.get(name, [{}]):
        x = torch.zeros(0, s.channels, s.image_size, s.image_size)
        y = m.translate(x, **kw)
        full = m.translate(torch.zeros(2, *x.shape[1:]), **kw)
        assert y.shape == (0, *full.shape[1:]), (kw, y.shape, full.shape)


def test_bicyclegan_code_helpers_take_pil_images_and_say_what_is_wrong(bicycle_run):
    m = xdomain.load(bicycle_run)
    ref = Image.new("RGB", (40, 30), (200, 30, 30))
    z = m.encode_style(ref)
    assert z.shape == (1, 8)
    torch.testing.assert_close(z, m.encode_style([ref]))
    with pytest.raises(XDomainError, match="z0 has 8 dimensions and z1 7"):
        m.interpolate_z(torch.zeros(8), torch.zeros(7), 3)
    with pytest.raises(XDomainError, match="steps must be a whole number"):
        m.interpolate_z(torch.zeros(8), torch.zeros(8), 10**9)
    with pytest.raises(XDomainError, match="encode_style takes"):
        m.encode_style(np.zeros((32, 32, 3)))


@pytest.fixture(scope="module")
def mask_run(tmp_path_factory):
    extra = (*TINY_STAR, "data.batch_size=4")
    return module_run(tmp_path_factory, "mask", "stargan-digits-mask", *extra)


def test_evaluate_says_when_the_label_schema_or_source_order_differs(mask_run, tmp_path, capsys):
    swapped = "data.sources=[digits-handwritten,digits-styled]"
    line = one_line_error(*run_cli(capsys, "evaluate", mask_run, swapped))
    assert "another order" in line and "digits-styled, digits-handwritten" in line
    folders = tmp_path / "classes"
    for cls in ("cat", "dog"):
        for i in range(12):
            image(folders / cls / f"{i}.png", seed=i)
    other = f"data.sources=[folders:{folders}]"
    line = one_line_error(*run_cli(capsys, "evaluate", mask_run, other))
    assert "are not the model's" in line and len(line) < 600
    line = one_line_error(*run_cli(capsys, "evaluate", mask_run, "data.image_size=64"))
    assert "the model takes 3x32 images" in line


def test_evaluate_of_a_converted_run_says_which_data_to_give(tmp_path, capsys):
    from parity import load_fixture, official_state

    path = tmp_path / "h2z.pth"
    torch.save(official_state(load_fixture("cyclegan_resnet_6blocks_G")), path)
    run = tmp_path / "run"
    assert run_cli(capsys, "convert", "--from", "cyclegan", path, "--out", run)[0] == 0
    line = one_line_error(*run_cli(capsys, "evaluate", run))
    assert "converted from official weights" in line and "data.a=DIR_A data.b=DIR_B" in line
    assert "unknown source" not in line


@pytest.mark.slow
def test_a_rank_killed_with_kill_9_is_a_lost_peer_naming_the_checkpoint(tmp_path):
    """Two real processes in one process group (the environment torchrun sets, without its
    agent, which would stop the survivor before it can speak): rank 0 is killed with SIGKILL
    after its first checkpoints; rank 1 says so in one line and names the checkpoint."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = tmp_path / "run"
    args = [sys.executable, "-m", "xdomain.cli", "train", "discogan-toy", "--out", str(run)]
    args += [*QUIET, "train.steps=100000", "train.ckpt_every=20", "eval.every=100000"]
    args += ["train.sample_every=100000"]
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank))
        env |= {"WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2"}
        env |= {"OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "latest").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (run / "checkpoints" / "latest").is_file(), "no checkpoint within 120 s"
    procs[0].send_signal(signal.SIGKILL)
    _, err = procs[1].communicate(timeout=120)
    procs[0].wait(timeout=30)
    line = err.strip().splitlines()[-1]
    assert procs[1].returncode == 2 and "Traceback" not in err, err[-2000:]
    assert line.startswith("error: rank 1 of 2 lost a peer process"), line
    kept = sorted((run / "checkpoints").glob("step-*"))
    assert "--resume" in line and any(k.name in line for k in kept), line
    assert not lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# ----------------------------------------------------------------------------- silent wrong


def test_non_finite_weights_are_refused_at_convert_and_at_load(tmp_path, capsys):
    from parity import load_fixture, official_state

    state = official_state(load_fixture("cyclegan_resnet_6blocks_G"))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    # (the error names the weight by xdomain's name for it, after the key conversion)
    state[key] = state[key].clone()
    state[key][0] = float("nan")
    bad = tmp_path / "nan.pth"
    torch.save(state, bad)
    line = one_line_error(
        *run_cli(capsys, "convert", "--from", "cyclegan", bad, "--out", tmp_path / "o")
    )
    assert "NaN/Inf" in line and "nan.pth" in line
    # a checkpoint written with Inf weights (a run whose weights diverged before its losses)
    trainer = Trainer(load_config("discogan-toy", [*QUIET, "train.steps=20"]), tmp_path / "run")
    with torch.no_grad():
        next(trainer.method.parameters()).fill_(float("inf"))
    trainer.save()
    trainer.close()
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="NaN/Inf"):
        xdomain.load(run)


def test_non_finite_codes_and_targets_are_refused():
    b, s = tiny_method("bicyclegan"), tiny_method("stargan")
    x = torch.zeros(2, 3, 32, 32)
    for z in (torch.full((8,), float("nan")), torch.full((2, 3, 8), float("inf"))):
        with pytest.raises(XDomainError, match="NaN or infinite"):
            b.translate(x, z=z)
    with pytest.raises(XDomainError, match="NaN or infinite"):
        s.translate(x, target=torch.full((2, s.space.c_dim), float("nan")))
    m = tiny_method("morph_ugatit")
    for alpha in (float("nan"), [0.0, float("inf")], torch.tensor([0.5, 2.0])):
        with pytest.raises(XDomainError, match="alpha must be"):
            m.translate(x, alpha=alpha)


def test_output_size_input_is_honoured_per_tile(bicycle_run, tmp_path, capsys):
    src = image(tmp_path / "in" / "p.png", w=50, h=40)
    for preprocess, tile in (("crop", (40, 40)), ("resize", (50, 40)), ("pad", (50, 40))):
        out = tmp_path / f"out-{preprocess}"
        args = ("--samples", 3, "--output-size", "input", "--preprocess", preprocess)
        rc, err = run_cli(capsys, "translate", bicycle_run, src, "--out", out, *args)
        assert rc == 0, err
        with Image.open(out / "p.png") as im:
            assert im.size == (3 * tile[0], tile[1]), (preprocess, im.size)


# ----------------------------------------------------------------------------- wrong hints


def test_style_errors_name_the_option_not_data_keys(bicycle_run, tmp_path, capsys):
    src = image(tmp_path / "in" / "p.png")
    broken = tmp_path / "ref.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for ref in (broken, tmp_path / "missing.png"):
        args = ("translate", bicycle_run, src, "--out", tmp_path / "o", "--style", ref)
        line = one_line_error(*run_cli(capsys, *args))
        assert line.startswith("error: --style") and "data.on_bad_file" not in line


# ----------------------------------------------------------------------------- fuzz

CODE = st.one_of(
    st.none(),
    st.integers(-3, 5000),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(1, 9), min_size=0, max_size=4).map(tuple),
)
SHAPES = st.lists(st.integers(0, 9), min_size=0, max_size=4)
DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.bool])


@st.composite
def code_tensors(draw):
    shape = draw(SHAPES)
    dtype = draw(DTYPES)
    t = torch.randn(shape).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
    if t.numel() and t.is_floating_point() and draw(st.booleans()):
        t.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), 1e30]))
    return t


@fuzz(60)
@given(z=st.one_of(CODE, code_tensors()), n=st.integers(0, 3))
@example(z=torch.randn(0, 8), n=2)
@example(z=torch.randn(2, 0, 8), n=2)
@example(z=torch.randn(8).half(), n=1)
def test_fuzz_latent_codes_translate_or_raise_one_line(z, n):
    m = _FUZZ_BICYCLE
    x = torch.zeros(n, 3, 32, 32)
    rss = _max_rss_mb()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = m.translate(x, z=z)
    except XDomainError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 300, msg
    else:
        assert y.shape[0] == n and y.shape[-3:] == (3, 32, 32)
        assert torch.isfinite(y).all()
    assert _max_rss_mb() - rss < 1024  # no case allocates more than 1 GiB


@fuzz(40)
@given(
    alpha=st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.lists(st.floats(-1, 2), max_size=6),
        st.text(max_size=4),
        st.integers(-2, 3),
    )
)
def test_fuzz_morph_alpha_translates_or_raises_one_line(alpha):
    m = _FUZZ_MORPH
    try:
        y = m.translate(torch.zeros(1, 3, 32, 32), alpha=alpha)
    except XDomainError as e:
        assert "\n" not in str(e) and len(str(e)) < 300, str(e)
    else:
        assert torch.isfinite(y).all()


_FUZZ_BICYCLE = tiny_method("bicyclegan")
_FUZZ_MORPH = tiny_method("morph_ugatit")


def test_train_refuses_an_out_inside_another_runs_files(tmp_path):
    run = saved_run(tmp_path / "run", "discogan-toy", "train.steps=20")
    ckpt = next((run / "checkpoints").glob("step-*"))
    for out in (ckpt, run / "checkpoints" / "new", run / "samples" / "x"):
        with pytest.raises(XDomainError, match=r"checkpoint directory|lies inside"):
            Trainer(load_config("discogan-toy", QUIET), out, overwrite=True)
    assert not (ckpt / ".lock").exists() and not (run / "checkpoints" / "new").exists()


def test_data_command_describes_a_labelled_source(tmp_path, capsys):
    folders = tmp_path / "classes"
    for cls in ("cat", "dog"):
        for i in range(11):
            image(folders / cls / f"{i}.png", seed=i)
    rc = main(["data", f"folders:{folders}", "--grid", str(tmp_path / "g.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "20 images" in out and "class (cat|dog)" in out
    assert (tmp_path / "g.png").is_file()
