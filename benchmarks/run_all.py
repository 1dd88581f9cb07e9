"""`make bench`: run every benchmark, then write benchmarks/RESULTS.md from their JSON results.

    python benchmarks/run_all.py            # run all, then render
    python benchmarks/run_all.py --skip-demo  # all but the cold `make demo` (bench_demo.py)
    python benchmarks/run_all.py --render   # only re-render RESULTS.md from results/*.json

Every number in RESULTS.md comes from a results/*.json file a benchmark wrote; each section
names the commit, machine and wall time of the measurement it shows. Each benchmark renders its
own section (`bench_*.render(results)`); this file only runs them and puts the sections in order.
Rendering needs neither torch nor xdomain: the benchmarks import them only where they measure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import bench_demo
import bench_dtn
import bench_image
import bench_judges
import bench_morph
import bench_paired
import bench_speed
import bench_stargan
import bench_toy

HERE = Path(__file__).parent
RESULTS = HERE / "results"
# The toy runs are one thread each, so two run side by side on this 2-core CPU.
# bench_demo times a cold `make demo` in a fresh clone: last, on an otherwise idle machine.


def _toy40k(geometries: list[str], tag: str, decay: bool) -> list[str]:
    """The toy at the paper's 40k iterations, at the recipes' constant lr or the papers' decay."""
    steps = ["--paper-steps"] if geometries == ["paper"] else ["--steps"]
    flags = ["--decay-start", "0.5"] if decay else []
    return [
        "bench_toy.py",
        "--geometries",
        *geometries,
        *steps,
        "40000",
        *flags,
        "--tag",
        tag,
        "--jobs",
        "2",
    ]


BENCHES = [
    ["bench_speed.py"],
    ["bench_toy.py", "--jobs", "2"],
    # the paper's 40k iterations with the recipes' constant learning rate and with the papers'
    # usual linear decay over the second half (issue 7: decay only where 3 seeds support it)
    _toy40k(["paper"], "paper40k", decay=False),
    _toy40k(["paper"], "paper40k-decay", decay=True),
    _toy40k(["line", "circle"], "lc40k", decay=False),
    _toy40k(["line", "circle"], "lc40k-decay", decay=True),
    ["bench_judges.py"],
    ["bench_dtn.py"],
    ["bench_image.py"],
    ["bench_morph.py"],  # reads the Morph-UGATIT runs bench_image.py leaves in benchmarks/runs
    ["bench_stargan.py"],
    ["bench_paired.py"],
    ["bench_demo.py"],
]


# RESULTS.md's sections in reading order (not the order BENCHES runs them): each renders from
# results/ alone and gives '' where its benchmark has not run yet.
SECTIONS: list[Callable[[Path], str]] = [
    bench_dtn.render,
    bench_toy.render,
    bench_image.render,  # its digits rows include DTN's, from dtn.json
    bench_morph.render,
    bench_stargan.render,
    bench_paired.render,
    bench_speed.render,
    bench_judges.render,
    bench_demo.render,
]
HEADER = [
    "# Benchmark results",
    "",
    "Written by `make bench` (`benchmarks/run_all.py`) from `benchmarks/results/*.json`;",
    "do not edit by hand. Each section names the commit and machine it was measured on.",
    "",
]


def markdown(results: Path = RESULTS) -> str:
    """RESULTS.md: the header, then every benchmark's section that has results, a blank line
    after each."""
    sections = [text for render in SECTIONS if (text := render(results))]
    return "\n".join([*HEADER, *(line for text in sections for line in (text, ""))])


def render() -> Path:
    path = HERE / "RESULTS.md"
    path.write_text(markdown())
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--render", action="store_true", help="only render RESULTS.md")
    p.add_argument("--skip-demo", action="store_true", help="do not time a cold make demo")
    args = p.parse_args()
    if not args.render:
        for script, *flags in BENCHES:
            if args.skip_demo and script == "bench_demo.py":
                continue
            print(f"== {script} {' '.join(flags)}", flush=True)
            subprocess.run([sys.executable, str(HERE / script), *flags], check=True)
    print(f"wrote {render()}")


if __name__ == "__main__":
    main()
