"""A cold `make demo`, timed the way a new user meets it: a fresh clone, a fresh venv, empty caches.

    .venv/bin/python benchmarks/bench_demo.py      # about 4 min on the 2-core CPU; run it idle
    .venv/bin/python benchmarks/bench_demo.py --overrides train.steps=20 model.f_steps=20 \
        model.f_adapt_steps=5                      # smoke test: prints, writes no results file

Clones the committed HEAD (uncommitted changes are NOT measured) into a temporary folder and,
inside the clone, with `XDOMAIN_CACHE` pointing at an empty folder (digit rendering, f's
pretraining and the judge all run cold; pip's own cache is left alone):

1. `make setup` (fonts when root and missing; the venv; the pinned CPU torch; xdomain), timed;
2. `make demo`, timed. With `--overrides`, instead the demo's command with those overrides,
   `.venv/bin/xdomain train dtn-digits --out runs/demo --overwrite KEY=VALUE ...`.

Writes `benchmarks/results/demo.json` (real mode only, unless `--out`): the wall time of each
phase, the demo's final metrics (the clone's `runs/demo/final_metrics.json`), the commit, the
machine, and the 1-minute load average before, after and at its peak during the run (sampled
every 5 s): the demo itself keeps about `cpus` threads busy, so a peak well above that means
other work shared the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import dirty, load, load1, load_note, machine

HERE = Path(__file__).parent
REPO = HERE.parent
RESULTS = HERE / "results"
DEMO = ["make", "demo"]


class LoadSampler(threading.Thread):
    """The peak 1-minute load average while it runs, sampled every `every` seconds."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every, self.peak = every, load1()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.peak = max(self.peak, load1())


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    print(f"== {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True)
    return round(time.perf_counter() - t0, 1)


def clean_env(cache: Path) -> dict[str, str]:
    """This environment without this checkout's venv, with an empty xdomain cache."""
    venv = str(REPO / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "XDOMAIN_CACHE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv)
    env["XDOMAIN_CACHE"] = str(cache)
    return env


def measure(overrides: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xdomain-demo-") as tmp:
        clone = Path(tmp) / "xdomain"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=clone,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        env = clean_env(Path(tmp) / "cache")
        demo = DEMO
        if overrides:
            demo = [".venv/bin/xdomain", "train", "dtn-digits", "--out", "runs/demo"]
            demo += ["--overwrite", *overrides]
        load_before = load1()
        sampler = LoadSampler()
        sampler.start()
        setup_s = timed(["make", "setup"], clone, env)
        demo_s = timed(demo, clone, env)
        sampler.done.set()
        final = json.loads((clone / "runs" / "demo" / "final_metrics.json").read_text())
    return {
        "commit": head,
        "worktree_dirty": dirty(),  # the clone measured HEAD, without these changes
        "machine": machine(),
        "cpus": os.cpu_count(),
        "command": "git clone; make setup; " + " ".join(demo) + " (empty XDOMAIN_CACHE)",
        "overrides": overrides,
        "setup_s": setup_s,
        "demo_s": demo_s,
        "total_s": round(setup_s + demo_s, 1),
        "final_metrics": final,
        "loadavg_1min": [load_before, load1()],
        "loadavg_1min_peak": sampler.peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="smoke test: run the demo's xdomain command with these overrides, not `make demo`",
    )
    ap.add_argument(
        "--out", type=Path, help="results file (default: results/demo.json, none with --overrides)"
    )
    args = ap.parse_args()
    out: Path | None = args.out or (None if args.overrides else RESULTS / "demo.json")
    result = measure(args.overrides)
    print(json.dumps(result, indent=1))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"wrote {out}")


def render(results: Path) -> str:
    """RESULTS.md's cold `make demo` section, from results/demo.json ('' before the first run)."""
    if (d := load(results, "demo.json")) is None:
        return ""
    fm = d["final_metrics"]
    metrics = ", ".join(
        f"{k} {fm[k]:.4f}" for k in ("acc", "val_acc") if isinstance(fm.get(k), (int, float))
    )
    smoke = d.get("overrides")
    section = [
        "## Cold `make demo`" + (" (SMOKE TEST, not the demo)" if smoke else ""),
        f"commit {d['commit']}, {d['machine']}; {d['command']}; "
        + load_note(d["loadavg_1min"], d.get("loadavg_1min_peak")),
        "",
        "A fresh `git clone` of that commit; in it `make setup` (fonts when root and missing, a"
        " new venv, the pinned CPU torch, xdomain), then "
        + (f"the demo's command with {' '.join(smoke)}" if smoke else "`make demo`")
        + " with an empty `XDOMAIN_CACHE`: digit rendering, f's pretraining and the judge all"
        " cold.",
        "",
        f"`make setup` {d['setup_s']:.0f} s + {'the demo' if smoke else '`make demo`'}"
        f" {d['demo_s']:.0f} s ="
        f" {d['total_s'] / 60:.1f} min; the demo ended at {metrics or 'no accuracy recorded'}"
        f" (data {fm.get('data_fingerprint', 'not recorded')}).",
    ]
    return "\n".join(section)


if __name__ == "__main__":
    main()
