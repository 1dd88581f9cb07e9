"""The DiscoGAN toy experiment (Kim et al. 2017, Fig. 4): mode collapse of the three models.

For each geometry (recipe) x variant (gan, gan_recon, discogan) x seed, trains the recipe through
the real Trainer on one CPU thread and records, on the test A points, the B modes covered and the
distinct B modes the A modes land in (both of 10), plus wall time. Writes
`benchmarks/results/toy.json` (rewritten after every run, so an interrupted benchmark keeps what it
finished) and `benchmarks/results/toy_landscapes.png`: one row per geometry, the untrained model
(the paper's panel a) and the three variants of the first seed (panels b-d), each over D_b.

    python benchmarks/bench_toy.py                      # line, circle, paper; 3 seeds; 10k steps
    python benchmarks/bench_toy.py --geometries line --seeds 0 --steps 2000   # a quick look
    python benchmarks/bench_toy.py --geometries paper --paper-steps 40000 --tag paper40k --jobs 2
    python benchmarks/bench_toy.py --geometries paper --paper-steps 40000 --decay-start 0.5 \
        --tag paper40k-decay --jobs 2     # the papers' schedule: linear decay over the 2nd half
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import commit, measured

if TYPE_CHECKING:
    import torch

OUT = Path(__file__).parent / "results"
VARIANTS = ("gan", "gan_recon", "discogan")
GEOMETRIES = {  # name -> recipe
    "line": "discogan-toy-line",
    "circle": "discogan-toy-circle",
    "paper": "discogan-toy",
}


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def panel(method: Any, data: Any) -> dict[str, torch.Tensor]:
    """What one landscape panel needs, taken while the trained method is still in memory."""
    fixed = data.fixed()
    return {
        "fake_b": method.translate(fixed["a"]).cpu(),
        "a_label": fixed["a_label"],
        "real_b": fixed["b"],
        "method": method,
    }


def run_one(
    recipe: str, variant: str, seed: int, steps: int, root: Path, decay: float | None = None
) -> tuple[dict, dict]:
    """One run; `decay`: the learning rate decays linearly to 0 from this fraction of the steps
    (`train.decay_start`), None: constant, as the recipes."""
    decay_start = None if decay is None else int(steps * decay)
    overrides = [
        *([f"train.decay_start={decay_start}"] if decay_start is not None else []),
        f"model.variant={variant}",
        f"seed={seed}",
        f"train.steps={steps}",
        "train.threads=1",
        "train.progress=false",
        f"eval.every={steps}",
        f"train.sample_every={steps}",
        f"train.ckpt_every={steps}",
        "train.log_every=100",
    ]
    from xdomain.config import load_config
    from xdomain.train import Trainer

    cfg = load_config(recipe, overrides)
    out = root / f"{recipe}-{variant}-s{seed}"
    t0 = time.perf_counter()
    trainer = Trainer(cfg, out)
    final = trainer.fit()
    wall = time.perf_counter() - t0
    record = {
        "recipe": recipe,
        "variant": variant,
        "seed": seed,
        "steps": steps,
        "decay_start": decay_start,
        "data_a": cfg.data.a,
        "data_b": cfg.data.b,
        "wall_s": round(wall, 1),
        **{k: v for k, v in final.items() if k != "step"},
    }
    return record, panel(trainer.method, trainer.data)


def run_in_worker(
    recipe: str, variant: str, seed: int, steps: int, root: str, decay: float | None
) -> tuple[dict, dict]:
    """`run_one` in a worker process: returns the record and the trained weights (CPU tensors)."""
    import torch

    torch.set_num_threads(1)
    record, p = run_one(recipe, variant, seed, steps, Path(root), decay)
    return record, {k: v.cpu() for k, v in p["method"].state_dict().items()}


def rebuilt_panel(recipe: str, variant: str, seed: int, weights: dict) -> dict[str, torch.Tensor]:
    """The landscape panel of a run trained in a worker, from its returned weights."""
    from xdomain.config import load_config
    from xdomain.datamodule import build_data
    from xdomain.train import build_method

    cfg = load_config(recipe, [f"model.variant={variant}", f"seed={seed}"])
    data = build_data(cfg.data)
    method = build_method(cfg, data)
    method.load_state_dict(weights)
    method.eval()
    return panel(method, data)


def initial_panel(recipe: str, seed: int) -> dict[str, torch.Tensor]:
    """The untrained model: every variant starts from these weights (the paper's panel a)."""
    from xdomain.config import load_config
    from xdomain.datamodule import build_data
    from xdomain.train import build_method

    cfg = load_config(recipe, [f"seed={seed}"])
    data = build_data(cfg.data)
    return panel(build_method(cfg, data), data)


def draw(panels: dict[tuple[str, str], dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xdomain.metrics.toy import plot_landscape

    rows = [g for g in GEOMETRIES if any(k[0] == g for k in panels)]
    cols = ["initial", *VARIANTS]
    titles = {
        "initial": "(a) initial",
        "gan": "(b) GAN",
        "gan_recon": "(c) GAN + recon",
        "discogan": "(d) DiscoGAN",
    }
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(3.2 * len(cols), 3.2 * len(rows)), squeeze=False, dpi=90
    )
    image = None
    for i, g in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            p = panels.get((g, c))
            if p is None:
                ax.axis("off")
                continue
            image = plot_landscape(
                ax,
                p["method"].score_b,
                p["fake_b"],
                p["a_label"],
                p["real_b"],
                title=f"{g}: {titles[c]} {p.get('note', '')}",
                extent=2.8,
            )
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label="D_b(x) (probability real)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--geometries", nargs="+", default=list(GEOMETRIES), choices=list(GEOMETRIES))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--paper-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--paper-steps",
        type=int,
        default=10_000,
        help="steps for the paper geometry (the paper trains 40k; ~4x the time)",
    )
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    ap.add_argument(
        "--tag", default="", help="write toy-TAG.json and its figure beside the default results"
    )
    ap.add_argument(
        "--decay-start",
        type=float,
        default=None,
        help="decay the learning rate linearly to 0 from this fraction of each run's steps"
        " (the papers' schedule, e.g. 0.5); default: constant, as the recipes",
    )
    args = ap.parse_args()
    suffix = f"-{args.tag}" if args.tag else ""
    torch.set_num_threads(1)  # the machine is shared; the toy's MLPs gain nothing from more
    root = Path(tempfile.mkdtemp(prefix="bench_toy_"))
    result: dict[str, Any] = {
        "commit": commit(),
        "machine": machine(),
        "steps": args.steps,
        "paper_steps": args.paper_steps,
        "jobs": args.jobs,
        "decay_start_fraction": args.decay_start,
        "figure": f"toy_landscapes{suffix}.png",
        "metric_notes": "modes_covered: B modes with >= 1% of translated "
        "test points (of 10); modes_distinct: distinct B modes among the A "
        "modes' majority landings (of 10); landing = nearest B centre "
        "within 3 sigma",
        "runs": [],
    }
    panels: dict[tuple[str, str], dict] = {}
    jobs = [
        (GEOMETRIES[g], g, v, seed, args.paper_steps if g == "paper" else args.steps)
        for g in args.geometries
        for seed in (args.paper_seeds if g == "paper" else args.seeds)
        for v in args.variants
    ]
    first_seed = {g: (args.paper_seeds if g == "paper" else args.seeds)[0] for g in args.geometries}
    try:
        for g in args.geometries:
            panels[(g, "initial")] = initial_panel(GEOMETRIES[g], first_seed[g])
        # Each run is one thread; `--jobs 2` runs two at a time on two idle cores (spawned
        # processes, so no OpenMP state is forked).
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            futures = {
                pool.submit(run_in_worker, recipe, v, seed, steps, str(root), args.decay_start): (
                    recipe,
                    g,
                    v,
                    seed,
                )
                for recipe, g, v, seed, steps in jobs
            }
            for fut in as_completed(futures):
                recipe, g, v, seed = futures[fut]
                record, weights = fut.result()
                record["geometry"] = g
                record["jobs"] = args.jobs
                result["runs"].append(record)
                print(json.dumps(record), flush=True)
                if seed == first_seed[g]:
                    p = rebuilt_panel(recipe, v, seed, weights)
                    p["note"] = (
                        f"\n{record['modes_distinct']:.0f} distinct, "
                        f"{record['modes_covered']:.0f} covered"
                    )
                    panels[(g, v)] = p
                result["runs"].sort(key=run_order)
                result["summary"] = summarise(result["runs"])
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"toy{suffix}.json").write_text(json.dumps(result, indent=1))
        draw(panels, args.out / result["figure"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for row in result["summary"]:
        print(row)


def run_order(r: dict) -> tuple[int, int, int]:
    return list(GEOMETRIES).index(r["geometry"]), r["seed"], VARIANTS.index(r["variant"])


def summarise(runs: list[dict]) -> list[dict]:
    """Mean over seeds and per-seed lists, per (geometry, variant)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["geometry"], r["variant"]), []).append(r)
    out = []
    for (g, v), rs in groups.items():
        row: dict[str, Any] = {"geometry": g, "variant": v, "seeds": [r["seed"] for r in rs]}
        for k in ("modes_covered", "modes_distinct", "on_mode_frac", "mode_purity", "wall_s"):
            vals = [r[k] for r in rs]
            row[f"{k}_mean"] = round(sum(vals) / len(vals), 3)
            row[k] = vals
        out.append(row)
    return out


def _iters(d: dict) -> str:
    """'10000' or 'line 10000, paper 40000': the iterations the runs trained, per geometry."""
    per = {r["geometry"]: r["steps"] for r in d.get("runs", [])}
    if len(set(per.values())) == 1:
        return str(next(iter(per.values())))
    return ", ".join(f"{g} {n}" for g, n in per.items()) or str(d.get("steps", "?"))


def _table(d: dict, results: Path) -> list[str]:
    frac = d.get("decay_start_fraction")
    schedule = (
        f"learning rate linear to 0 from {frac:.0%} of the iterations"
        if frac is not None
        else "constant learning rate (the recipes)"
    )
    out = [
        f"## DiscoGAN toy experiment, {_iters(d)} iterations, {schedule} (modes of B, of 10)",
        f"{measured(d)}; iterations per run: {_iters(d)}"
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
    if (results / figure).is_file():
        out += ["", f"![D_b landscapes](results/{figure})"]
    return out


def _schedules(results: Path) -> list[str]:
    """Constant lr against linear decay at 40k iterations, every geometry measured with both
    (the `*40k.json` / `*40k-decay.json` pairs): distinct B modes, mean and per seed."""
    const, decay = {}, {}
    for path in results.glob("toy-*40k*.json"):
        d = json.loads(path.read_text())
        into = decay if d.get("decay_start_fraction") is not None else const
        for s in d["summary"]:
            into[(s["geometry"], s["variant"])] = (s, d["commit"])
    both = sorted(set(const) & set(decay), key=lambda k: (k[0], VARIANTS.index(k[1])))
    if not both:
        return []
    out = [
        "## DiscoGAN toy at 40k iterations: constant lr against linear decay (distinct B modes)",
        "Each cell: mean; per seed (of 10), from the 40k tables above. Decay enters the toy"
        " recipes only where it keeps at least as many modes for every variant of every"
        " geometry.",
        "",
        "| geometry | variant | constant lr | decay from 50% | decay - constant |",
        "| --- | --- | --- | --- | ---: |",
    ]
    worse = []
    for key in both:
        c, dc = const[key][0], decay[key][0]
        diff = dc["modes_distinct_mean"] - c["modes_distinct_mean"]
        if diff < 0:
            worse.append(f"{key[0]}/{key[1]}")

        def cell(x: dict) -> str:
            per = ", ".join(f"{v:g}" for v in x["modes_distinct"])
            return f"{x['modes_distinct_mean']:.2f}; {per}"

        out.append(f"| {key[0]} | {key[1]} | {cell(c)} | {cell(dc)} | {diff:+.2f} |")
    geoms = sorted({k[0] for k in both})
    out += [
        "",
        f"Geometries with both schedules: {', '.join(geoms)}. "
        + (
            "Decay keeps fewer modes for " + ", ".join(worse) + "."
            if worse
            else "Decay keeps at least as many modes for every variant of these geometries."
        ),
    ]
    return out


def render(results: Path) -> str:
    """RESULTS.md's toy sections: one table per results/toy*.json (toy.json, then each tagged
    run, each schedule study's constant-lr table before its decay one), then the schedules."""
    paths = sorted(
        results.glob("toy*.json"), key=lambda q: (q.name != "toy.json", "decay" in q.name, q.name)
    )
    tables = [_table(json.loads(path.read_text()), results) for path in paths]
    return "\n\n".join("\n".join(t) for t in [*tables, _schedules(results)] if t)


if __name__ == "__main__":
    main()
