"""Multi-process training (torchrun; Accelerate picks up its process group): gradients are
averaged across processes and float buffers (batch-norm running statistics) after every step,
so every process ends with bit-identical weights and buffers, and each process took its own
slice of the batch. Covered on the toy's MLPs, a tiny DTN and pix2pix, whose nets use batch
norm, and BicycleGAN, which steps two optimizers after two backward passes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import sys
    from safetensors.torch import save_file
    from xdomain.config import load_config
    from xdomain.train import Trainer

    out, recipe, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    cfg = load_config(recipe, ["train.steps=5", "train.ckpt_every=5", "eval.every=100",
                      "train.sample_every=100", "train.progress=false", "train.threads=1",
                      *extra])
    t = Trainer(cfg, out)
    first = next(t.data.stream(rank=t.acc.process_index, world=t.acc.num_processes))
    t.fit()
    sd = {k: v.contiguous() for k, v in t.method.state_dict().items()}
    sd["first_batch_a"] = first["a"]
    save_file(sd, f"{out}/rank{t.acc.process_index}.safetensors")
    """
)


CASES = {
    "discogan-toy": ["data.batch_size=50"],
    "dtn-digits": [
        "data.batch_size=8",
        "data.n_a=200",
        "model.width_f=8",
        "model.width_g=8",
        "model.width_d=8",
        "model.f_steps=10",
        "model.f_adapt_steps=2",
        "eval.n_test=16",
    ],
    # pix2pix's U-Net has batch norm; BicycleGAN steps E and G together after two backward
    # passes (`Method.backward` / `Method.step`)
    "pix2pix-glyphs": [
        "data.batch_size=4",
        "data.n_a=32",
        "model.ngf=4",
        "model.ndf=4",
        "train.decay_start=null",
    ],
    "bicyclegan-glyphs": [
        "data.batch_size=4",
        "data.n_a=32",
        "model.ngf=4",
        "model.ndf=4",
        "model.nef=4",
        "train.decay_start=null",
    ],
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_two_processes_stay_in_sync_on_different_data(tmp_path, recipe):
    script = tmp_path / "mp.py"
    script.write_text(SCRIPT)
    # the session's shared cache (as tests/test_resume.py): rendered data and judges are built
    # once, not once per test
    cache = os.environ.get("XDOMAIN_CACHE", str(tmp_path.parent / "xdomain-cache-shared"))
    env = dict(os.environ, OMP_NUM_THREADS="1", XDOMAIN_CACHE=cache)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    r = subprocess.run(
        [*launch, str(script), str(tmp_path / "run"), recipe, *CASES[recipe]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    r0 = load_file(str(tmp_path / "run" / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "run" / "rank1.safetensors"))
    assert not r0.pop("first_batch_a").equal(r1.pop("first_batch_a"))  # different slices
    if recipe in ("dtn-digits", "pix2pix-glyphs"):  # the cases that need the buffer all-reduce
        assert any("running_mean" in k for k in r0)
    for k in r0:
        assert r0[k].equal(r1[k]), f"{k} differs between processes: not averaged"
    assert Path(tmp_path / "run" / "checkpoints" / "latest").is_file()
