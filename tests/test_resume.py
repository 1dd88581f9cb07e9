"""Exact resume: a run killed with SIGKILL at an arbitrary point and resumed ends with the same
weights, bit for bit, as the same run uninterrupted. Real processes, real kills, real files.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

# Small but real runs; the image ones use tiny widths and a small data cap. CycleGAN's history
# pools (state outside state_dict) must come back exactly: D sees their fakes after the resume.
_IMAGE_RUN = [
    "train.ckpt_every=3",
    "train.sample_every=15",
    "eval.every=30",
    "train.log_every=3",
    "train.progress=false",
    "data.n_a=64",
    "data.n_b=64",
    "data.batch_size=4",
    "eval.n_test=32",
]
RUNS = {
    "cyclegan-digits": ["train.steps=30", "train.decay_start=15", *_IMAGE_RUN],
    "discogan-digits": ["train.steps=30", "model.rate_switch=10", *_IMAGE_RUN],
    # StarGAN with the mask vector: two data sets per step, G every 5th step, the gradient
    # penalty's alpha and the shuffled targets from the global RNG, all restored on resume
    "stargan-digits-mask": ["train.steps=30", "train.decay_start=15", *_IMAGE_RUN],
    # BicycleGAN on pairs: four optimizers stepped in the reference's order, z and the
    # reparameterisation noise from the global RNG
    "bicyclegan-glyphs": ["train.steps=30", "train.decay_start=15", *_IMAGE_RUN],
    "discogan-toy": [
        "train.steps=120",
        "train.ckpt_every=10",
        "train.sample_every=60",
        "eval.every=60",
        "train.log_every=10",
        "train.progress=false",
    ],
    "dtn-digits": [
        "train.steps=40",
        "train.ckpt_every=4",
        "train.sample_every=20",
        "eval.every=20",
        "train.log_every=4",
        "train.progress=false",
        "data.n_a=600",
        "data.batch_size=16",
        "eval.n_test=64",
        "eval.select=val_acc",
        "eval.n_val=100",
    ],
}


def _cmd(recipe: str, out: Path, extra: list[str], resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "xdomain.cli", "train", recipe, "--out", str(out), *extra]
    return [*cmd, "--resume"] if resume else cmd


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("XDOMAIN_CACHE", str(tmp_path.parent / "xdomain-cache-shared"))
    env["OMP_NUM_THREADS"] = "1"
    return env


def _final_weights(run: Path) -> dict:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    return load_file(str(run / "checkpoints" / latest / "model.safetensors"))


def _tiny(recipe: str) -> list[str]:
    if recipe == "dtn-digits":
        return [
            *(f"model.{k}=8" for k in ("width_f", "width_g", "width_d")),
            "model.f_steps=30",
            "model.f_adapt_steps=5",
        ]
    if recipe == "cyclegan-digits":
        return ["model.ngf=4", "model.ndf=4", "model.n_blocks=1", "model.pool_size=6"]
    if recipe == "discogan-digits":
        return ["model.base=4"]
    if recipe == "bicyclegan-glyphs":
        return ["model.ngf=4", "model.ndf=4", "model.nef=4"]
    if recipe == "stargan-digits-mask":
        return [
            "model.g_conv_dim=4",
            "model.d_conv_dim=4",
            "model.g_repeat_num=1",
            "model.d_repeat_num=2",
        ]
    return []


@pytest.mark.parametrize("recipe", sorted(RUNS))
def test_sigkill_then_resume_is_bit_exact(recipe, tmp_path):
    extra = RUNS[recipe] + _tiny(recipe) + ["train.threads=1"]
    env = _env(tmp_path)
    ref = tmp_path / "ref"
    subprocess.run(_cmd(recipe, ref, extra), env=env, check=True, capture_output=True, timeout=600)

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(recipe, run, extra), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 300
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    time.sleep(random.Random(0).uniform(0.0, 0.3))  # somewhere mid-step or mid-save
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = latest.read_text().strip()
    assert killed_at != f"step-{int(extra[0].split('=')[1]):07d}", "killed after the last step"

    done = subprocess.run(
        _cmd(recipe, run, extra, resume=True), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = _final_weights(ref), _final_weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].equal(b[k]), f"{k} differs after resume from {killed_at}"
    # the metrics log has each step once, as if the run had never stopped
    steps = [
        json.loads(x)["step"]
        for x in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "train"
    ]
    assert steps == sorted(set(steps))


def test_resume_without_checkpoint_and_rerun_into_existing_dir(tmp_path):
    extra = [*RUNS["discogan-toy"], "train.steps=10"]
    env = _env(tmp_path)
    run = tmp_path / "r"
    r = subprocess.run(
        _cmd("discogan-toy", run, extra, resume=True), env=env, capture_output=True, text=True
    )
    assert r.returncode == 2 and "has no checkpoint yet" in r.stderr
    subprocess.run(_cmd("discogan-toy", run, extra), env=env, check=True, capture_output=True)
    r = subprocess.run(_cmd("discogan-toy", run, extra), env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "is not empty" in r.stderr and "pass --resume" in r.stderr
    r = subprocess.run(
        _cmd("discogan-toy", run, [*extra, "data.batch_size=7"], resume=True),
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "config differs" in r.stderr and "data.batch_size" in r.stderr
    # extending a finished run is allowed: it continues from its last step
    r = subprocess.run(
        _cmd("discogan-toy", run, [*extra, "train.steps=14"], resume=True),
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000014"
