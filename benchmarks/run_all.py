"""`make bench`: run every benchmark, then write benchmarks/RESULTS.md from their JSON results.

    python benchmarks/run_all.py            # run all, then render
    python benchmarks/run_all.py --render   # only re-render RESULTS.md from results/*.json

Every number in RESULTS.md comes from a results/*.json file a benchmark wrote; each section
names the commit, machine and wall time of the measurement it shows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
# The toy runs are one thread each, so two run side by side on this 2-core CPU.
# bench_demo times a cold `make demo` in a fresh clone: last, on an otherwise idle machine.
BENCHES = [
    ["bench_speed.py"],
    ["bench_toy.py", "--jobs", "2"],
    ["bench_judges.py"],
    ["bench_dtn.py"],
    ["bench_demo.py"],
]


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _machine(m: object) -> str:
    if isinstance(m, dict):
        cpu, n = m.get("processor", ""), m.get("cpu_count", "?")
        return f"{cpu} x{n}, {m.get('threads', '?')} thread(s), torch {m.get('torch', '?')}"
    return str(m)


def _speed(d: dict) -> list[str]:
    out = [
        "## Training speed (iterations/s, `train_step` only)",
        f"commit {d['commit']}, {d['machine']}, {d['threads']} thread(s), {d['steps']} timed steps"
        + (f", repeated for at least {d['min_s']:g} s" if "min_s" in d else "")
        + (
            f"; 1-min load average {d['loadavg_1min'][0]:.1f} -> {d['loadavg_1min'][1]:.1f} on"
            f" {d['cpus']} CPUs (above the thread count, other work shared the CPU)"
            if max(d.get("loadavg_1min", [0])) > d["threads"] + 0.5
            else ""
        ),
        "",
        "| recipe | method | fp32 it/s | bf16 it/s | bf16 speed-up |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in d["rows"]:
        out.append(
            f"| {r['recipe']} | {r['method']} | {r['fp32']:.2f} | {r['bf16']:.2f} |"
            f" {r['bf16_speedup']:.2f}x |"
        )
    return out


def _iters(d: dict) -> str:
    """'10000' or 'line 10000, paper 40000': the iterations the runs trained, per geometry."""
    per = {r["geometry"]: r["steps"] for r in d.get("runs", [])}
    if len(set(per.values())) == 1:
        return str(next(iter(per.values())))
    return ", ".join(f"{g} {n}" for g, n in per.items()) or str(d.get("steps", "?"))


def _toy(d: dict) -> list[str]:
    out = [
        f"## DiscoGAN toy experiment, {_iters(d)} iterations (modes of B, of 10)",
        f"commit {d['commit']}, {_machine(d['machine'])}; iterations per run: {_iters(d)}"
        + (f"; {d['jobs']} runs at a time, one thread each" if "jobs" in d else ""),
        "",
        d.get("metric_notes", ""),
        "",
        "| geometry (A -> B) | variant | seeds | B modes covered (mean; per seed) |"
        " distinct B modes of A's modes (mean; per seed) | wall s / run |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    data = {r["geometry"]: f"{r['data_a']} -> {r['data_b']}" for r in d.get("runs", [])}
    for s in d["summary"]:
        cov = ", ".join(f"{v:g}" for v in s["modes_covered"])
        dis = ", ".join(f"{v:g}" for v in s["modes_distinct"])
        out.append(
            f"| {s['geometry']} ({data.get(s['geometry'], '?')}) | {s['variant']} |"
            f" {len(s['seeds'])} |"
            f" {s['modes_covered_mean']:.1f}; {cov} | {s['modes_distinct_mean']:.1f}; {dis} |"
            f" {s['wall_s_mean']:.0f} |"
        )
    figure = d.get("figure", "toy_landscapes.png")
    if (RESULTS / figure).is_file():
        out += ["", f"![D_b landscapes](results/{figure})"]
    return out


def _num(r: dict, key: str, digits: int = 4) -> str:
    """A table cell: the number with `digits` decimals, or '-' where the run did not record it."""
    v = r.get(key)
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "-"


def _dtn(d: dict) -> list[str]:
    sp, m = d["speed"], d["main"]
    out = [
        "## DTN: printed -> handwritten digits (judge accuracy on translated printed test digits)",
        f"commit {d['commit']}, {d['cpu']}, {d['threads']} thread(s), torch {d['torch']}",
        "",
        f"Judge held-out accuracy (real handwritten test): {sp['judge_heldout_acc']:.4f}; f on"
        f" printed test {sp['f_acc_printed_test']:.4f}, f on real handwritten test"
        f" {sp['f_acc_handwritten_test']:.4f} (diagnostic only).",
        "",
        f"Main recipe `{m['recipe']}`: final {m['final_acc']:.4f}, max {m['max_acc']:.4f},"
        f" checkpoint selected on the validation judge {m['val_selected_acc']:.4f} (step"
        f" {m['val_selected_step']}); wall {m['wall_s']:.0f} s of a {m['budget_s']:.0f} s budget.",
        "",
        "| step | wall s | acc (test) | val_acc | FID (judge) | KID (judge) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in m["curve"]:
        out.append(
            f"| {r['step']} | {r['wall_s']:.0f} | {_num(r, 'acc')} | {_num(r, 'val_acc')} |"
            f" {_num(r, 'fid_judge', 1)} | {_num(r, 'kid_judge', 1)} |"
        )
    out += ["", _f_phase(m)]
    rows = [m | {"name": f"{m['recipe']} (main)"}]
    rows += [r | {"name": r.get("recipe", "?")} for r in d.get("ablations", {}).values()]
    if isinstance(d.get("reverse"), dict):
        rows.append(d["reverse"] | {"name": d["reverse"].get("recipe", "?")})
    rows += [r | {"name": f"dtn-digits, {k}"} for k, r in d.get("variants", {}).items()]
    if rows:
        out += [
            "",
            "Style columns: the share of bold / italic pairs whose translations differ like the"
            " inputs (0.5: not carried); KID raw (floor: real vs real); diversity: mean pairwise"
            " distance of same-digit translations (real handwritten digits in brackets). All at"
            " the run's last evaluation.",
            "",
            "| run | final acc | max acc | val-selected acc | style bold | style italic | KID"
            " (floor) | diversity (real) | wall s | f phase | data | commit |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
        ]
        for r in rows:
            out.append(
                f"| {r['name']} | {_num(r, 'final_acc')} | {_num(r, 'max_acc')} |"
                f" {_num(r, 'val_selected_acc')} | {_num(r, 'final_style_bold', 2)} |"
                f" {_num(r, 'final_style_italic', 2)} | {_num(r, 'final_kid_judge', 1)}"
                f" ({_num(r, 'final_kid_judge_floor', 1)}) | {_num(r, 'final_diversity', 2)}"
                f" ({_num(r, 'final_diversity_real', 2)}) | {_num(r, 'wall_s', 0)} |"
                f" {_f_cell(r)} | {r.get('data_fingerprint', 'not recorded')} |"
                f" {r.get('commit', d['commit'])} |"
            )
    out += [
        "",
        f"Trainer loop speed ({d['threads']} threads; `train_step` plus data loading, logging,"
        f" samples and checkpoints, no evaluation): fp32 {sp['it_per_s_fp32']:.2f} it/s, bf16"
        f" {sp['it_per_s_bf16']:.2f} it/s. `train_step` alone: the speed section below."
        + (
            f" f's pretraining, cold (empty cache): {sp['f_cold_s']:.0f} s."
            if "f_cold_s" in sp
            else " f's cold pretraining time was not recorded in this measurement."
        ),
    ]
    return out


def _f_cell(r: dict) -> str:
    """How a run's f phase went: cold (its time) or a cache load, or unknown in old results."""
    if r.get("f_from_cache") is None:
        return "not recorded"
    return "cached" if r["f_from_cache"] else f"cold, {r['f_pretrain_s']:.0f} s"


def _f_phase(m: dict) -> str:
    cell = _f_cell(m)
    if cell == "not recorded":
        return (
            "Wall times include every evaluation and f's pretraining phase; this measurement did"
            " not record whether f was pretrained cold or loaded from the cache."
        )
    return f"Wall times include every evaluation and f's pretraining phase (main run: {cell})."


def _judges(d: dict) -> list[str]:
    out = [
        "## Judges: accuracy on real held-out images",
        f"commit {d['commit']}, {d['machine']}, torch {d['torch']}",
        "",
        "| source | data | train | test | held-out accuracy |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in d["rows"]:
        out.append(
            f"| {r['source']} | {r['data']} | {r['n_train']} | {r['n_test']} |"
            f" {r['heldout_acc']:.4f} |"
        )
    return out


def _demo(d: dict) -> list[str]:
    load = d["loadavg_1min"]
    fm = d["final_metrics"]
    metrics = ", ".join(
        f"{k} {v:.4f}" for k, v in fm.items() if isinstance(v, float) and k in ("acc", "val_acc")
    )
    return [
        "## Cold `make demo`",
        f"commit {d['commit']}, {d['machine']}; {d['command']}; 1-min load average"
        f" {load[0]:.1f} -> {load[1]:.1f}",
        "",
        f"`make setup` {d['setup_s']:.0f} s + `make demo` {d['demo_s']:.0f} s ="
        f" {d['total_s'] / 60:.1f} min; the demo ended at {metrics} (data"
        f" {fm.get('data_fingerprint', 'not recorded')}).",
    ]


def render() -> Path:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/run_all.py`) from `benchmarks/results/*.json`;",
        "do not edit by hand. Each section names the commit and machine it was measured on.",
        "",
    ]
    dtn = _load("dtn.json")
    if dtn:
        lines += [*_dtn(dtn), ""]
        if (RESULTS / "dtn_curve.png").is_file():
            lines += ["![DTN accuracy vs time](results/dtn_curve.png)", ""]
    for path in sorted(
        RESULTS.glob("toy*.json"), key=lambda q: (q.name != "toy.json", q.name)
    ):  # toy.json, then tagged runs (toy-TAG.json)
        lines += [*_toy(json.loads(path.read_text())), ""]
    speed = _load("speed.json")
    if speed:
        lines += [*_speed(speed), ""]
    for name, section in (("judges.json", _judges), ("demo.json", _demo)):
        if (d := _load(name)) is not None:
            lines += [*section(d), ""]
    path = HERE / "RESULTS.md"
    path.write_text("\n".join(lines))
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
