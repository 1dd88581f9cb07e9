"""Multi-process training (torchrun; Accelerate picks up its process group): gradients are
averaged across processes, so every process ends with bit-identical weights, and each process
took its own slice of the batch."""

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

    out = sys.argv[1]
    cfg = load_config("discogan-toy", ["train.steps=5", "train.ckpt_every=5", "eval.every=100",
                      "train.sample_every=100", "train.progress=false", "train.threads=1",
                      "data.batch_size=50"])
    t = Trainer(cfg, out)
    first = next(t.data.stream(rank=t.acc.process_index, world=t.acc.num_processes))
    t.fit()
    sd = {k: v.contiguous() for k, v in t.method.state_dict().items()}
    sd["first_batch_a"] = first["a"]
    save_file(sd, f"{out}/rank{t.acc.process_index}.safetensors")
    """
)


def test_two_processes_stay_in_sync_on_different_data(tmp_path):
    script = tmp_path / "mp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    r = subprocess.run(
        [*launch, str(script), str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    r0 = load_file(str(tmp_path / "run" / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "run" / "rank1.safetensors"))
    assert not r0.pop("first_batch_a").equal(r1.pop("first_batch_a"))  # different slices
    for k in r0:
        assert r0[k].equal(r1[k]), f"{k} differs between processes: gradients not averaged"
    assert Path(tmp_path / "run" / "checkpoints" / "latest").is_file()
