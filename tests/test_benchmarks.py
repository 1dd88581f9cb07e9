"""benchmarks/: each benchmark renders its own RESULTS.md section from results/*.json, run_all.py
puts them in order, and rendering needs neither torch nor xdomain (`run_all.py --render` runs on a
bare Python). Each check runs in a subprocess: the benchmark scripts import each other by bare
names (`common`, `bench_speed`) that must not land in this process's `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks"


def _run(code: str) -> str:
    """`code` run with benchmarks/ first on sys.path; -> its stdout."""
    prelude = f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=BENCH
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_committed_results_md_is_what_the_results_render_to():
    # RESULTS.md is generated: a hand edit, or a results file changed without re-rendering,
    # shows here (re-render with `python benchmarks/run_all.py --render`)
    rendered = _run("import run_all; sys.stdout.write(run_all.markdown())")
    assert rendered == (BENCH / "RESULTS.md").read_text()


def test_rendering_imports_neither_torch_nor_xdomain():
    code = (
        "import json, run_all; run_all.markdown()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('torch', 'xdomain', 'numpy', 'matplotlib'))))"
    )
    assert json.loads(_run(code)) == []


def test_a_benchmark_without_results_renders_no_section(tmp_path):
    # an empty results folder: every section is '' and RESULTS.md is the header alone; an image
    # file without rows (a benchmark that wrote its header and no run yet) renders nothing too
    (tmp_path / "image.json").write_text(json.dumps({"tasks": {}, "rows": []}))
    code = (
        "import json, run_all\n"
        f"results = run_all.Path({str(tmp_path)!r})\n"
        "print(json.dumps([r(results) for r in run_all.SECTIONS] + [run_all.markdown(results)]))"
    )
    *sections, md = json.loads(_run(code))
    assert sections == [""] * 9
    assert md.startswith("# Benchmark results\n") and "##" not in md
