"""Shared by several test files: the CLI as a real process, tiny toy overrides, a valid state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# a 20-step 2-D toy run: seconds, one thread, no evaluation but the final one
TOY = [
    "train.steps=20",
    "train.ckpt_every=10",
    "train.sample_every=100",
    "eval.every=100",
    "train.log_every=5",
    "train.progress=false",
    "train.threads=1",
]

# a two-step run that still checkpoints, samples and evaluates once (smoke tests of recipes)
TWO_STEPS = [
    "train.steps=2",
    "train.ckpt_every=2",
    "train.sample_every=2",
    "eval.every=2",
    "train.progress=false",
]


def cli(
    *args: str, cwd: Path | None = None, threads: int = 1, **kw: Any
) -> subprocess.CompletedProcess:
    """`python -m xdomain.cli ARGS` in a fresh process, one thread (paper-scale smoke runs: both
    of this machine's), output captured."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.run(
        [sys.executable, "-m", "xdomain.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        **kw,
    )


def paper_cli(*args: str, **kw: Any) -> subprocess.CompletedProcess:
    """`cli` on both of this machine's threads: for the paper-scale smoke runs, whose 256 px
    steps take seconds each."""
    return cli(*args, threads=2, **kw)


def checkpoint_state(**extra: Any) -> tuple[dict, dict]:
    """(RNG tensors, a minimal state.json mapping that `checkpoint.read_state` accepts)."""
    from xdomain import checkpoint as ckpt

    tensors, rng = ckpt.rng_state()
    state = {
        "method": "dtn",
        "config": {"method": "dtn"},
        "spec": {},
        "optimizers": {},
        "schedulers": {},
        "best": {},
        "rng": rng,
        **extra,
    }
    return tensors, state


def fuzz(max_examples: int) -> Any:
    """Hypothesis settings for `make test`: a fixed number of examples, derandomized, no example
    database, no deadline (a slow CI machine must not turn into a failure)."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
