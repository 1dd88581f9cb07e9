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
from typing import Any

import torch
from common import commit

from xdomain.config import load_config
from xdomain.datamodule import build_data
from xdomain.train import Trainer, build_method

OUT = Path(__file__).parent / "results"
VARIANTS = ("gan", "gan_recon", "discogan")
GEOMETRIES = {  # name -> recipe
    "line": "discogan-toy-line",
    "circle": "discogan-toy-circle",
    "paper": "discogan-toy",
}


def machine() -> dict[str, Any]:
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
    torch.set_num_threads(1)
    record, p = run_one(recipe, variant, seed, steps, Path(root), decay)
    return record, {k: v.cpu() for k, v in p["method"].state_dict().items()}


def rebuilt_panel(recipe: str, variant: str, seed: int, weights: dict) -> dict[str, torch.Tensor]:
    """The landscape panel of a run trained in a worker, from its returned weights."""
    cfg = load_config(recipe, [f"model.variant={variant}", f"seed={seed}"])
    data = build_data(cfg.data)
    method = build_method(cfg, data)
    method.load_state_dict(weights)
    method.eval()
    return panel(method, data)


def initial_panel(recipe: str, seed: int) -> dict[str, torch.Tensor]:
    """The untrained model: every variant starts from these weights (the paper's panel a)."""
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


if __name__ == "__main__":
    main()
