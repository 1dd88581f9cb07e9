"""What every benchmark stamps on its results (the commit it measured, the machine) and the
helpers its `render` shares to write that stamp into RESULTS.md.

Light on purpose: `run_all.py --render` imports every benchmark, so neither this module nor a
benchmark's top level may import torch or xdomain (they import them inside the functions that
measure).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).parent.parent
RUNS = Path(__file__).parent / "runs"  # training runs of the benchmarks (not committed)


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=REPO)
    return out.stdout.strip()


def commit() -> str:
    """The short hash of HEAD, or 'unknown' outside a git checkout (e.g. an sdist)."""
    try:
        return _git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def dirty() -> bool | None:
    """Whether the checkout has uncommitted changes to tracked files (None outside git): then the
    code measured is HEAD plus those changes, not exactly `commit()`."""
    try:
        return bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: CPU model, logical CPU count, OS and Python."""
    return (
        f"{cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}"
    )


def load1() -> float:
    """The 1-minute load average (other work running beside a timing slows it)."""
    return round(os.getloadavg()[0], 2)


def _finished(run_dir: Path, steps: int) -> bool:
    final = run_dir / "final_metrics.json"
    return final.is_file() and json.loads(final.read_text()).get("step") == steps


def train(
    recipe: str,
    steps: int | None,
    reuse: bool,
    run_dir: Path | None = None,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Train `recipe` (+ `extra` overrides) into `run_dir` (default RUNS/recipe), evaluated
    once at the end; -> timing of the run."""
    from xdomain.config import load_config
    from xdomain.train import Trainer

    base = load_config(recipe, extra or [])
    n = steps or base.train.steps
    over = [f"train.steps={n}", f"eval.every={n}", f"train.ckpt_every={n}", "train.progress=false"]
    if base.train.decay_start is not None and steps:
        over.append(f"train.decay_start={int(n * base.train.decay_start / base.train.steps)}")
    cfg = load_config(recipe, [*(extra or []), *over])
    run_dir = run_dir or RUNS / recipe
    if reuse and _finished(run_dir, n):
        print(f"{recipe}: reusing the finished run in {run_dir}", flush=True)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        RUNS.mkdir(exist_ok=True)
        load0, t0 = load1(), time.perf_counter()
        Trainer(cfg, run_dir).fit()
        timing = {"wall_s": round(time.perf_counter() - t0, 1), "loadavg_1min": [load0, load1()]}
        (run_dir / "bench_timing.json").write_text(json.dumps(timing))
    rates = [
        r["it_per_s"]
        for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if r.get("kind") == "train" and "it_per_s" in r
    ]
    timing_file = run_dir / "bench_timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    return {"recipe": str(run_dir.name), "steps": n, "it_per_s": round(rates[-1], 2), **timing}


def load(results: Path, name: str, needs: str | None = None) -> dict[str, Any] | None:
    """The JSON a benchmark wrote to `results/name`; None where it has not run, or where its
    entry `needs` is missing or empty (nothing to render)."""
    path = results / name
    d = json.loads(path.read_text()) if path.is_file() else None
    return None if d is None or (needs is not None and not d.get(needs)) else d


def measured(d: dict[str, Any]) -> str:
    """'commit abc1234 + uncommitted changes, <machine>': what a results file measured, and on
    what (the uncommitted part only when the measured checkout was dirty)."""
    changes = " + uncommitted changes" if d.get("dirty") else ""
    return f"commit {d['commit']}{changes}, {machine_line(d['machine'])}"


def machine_line(m: object) -> str:
    """A results file's machine: a `machine()` line as it is, or a dict of its parts (the toy's)."""
    if isinstance(m, dict):
        cpu, n = m.get("processor", ""), m.get("cpu_count", "?")
        return f"{cpu} x{n}, {m.get('threads', '?')} thread(s), torch {m.get('torch', '?')}"
    return str(m)


def load_note(load: list[float], peak: float | None = None) -> str:
    """The 1-min load average around a measurement (other work running beside it slows it)."""
    text = f"1-min load average {load[0]:.1f} before, {load[1]:.1f} after"
    return text + (f", peak {peak:.1f} during" if peak is not None else "")
