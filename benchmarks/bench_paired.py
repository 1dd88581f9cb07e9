"""pix2pix and BicycleGAN with the paper's baselines on glyph mask -> coloured digit: diversity
and realism, the BicycleGAN paper's Table 1 protocol with our own judges.

Trains every recipe of `ROWS` into `benchmarks/runs/<recipe>` (or reuses finished runs with
`--reuse`), then scores each with `xdomain.metrics.paired` on the held-out pairs: for 100 test
masks, 20 codes each (the same codes for every model), diversity = mean distance between
consecutive outputs in the digit judge's normalised features (our LPIPS stand-in) and in
pixels; realism = KID of the 2000 outputs against real coloured test digits in the judge's
features; `acc` = the share of outputs whose digit the judge reads as the mask's; `l1` = |b -
G(a, E(b))| over 1000 test pairs, the code encoded from the ground truth. The ceiling row is
pairs of different real test digits (diversity) and real train vs real test digits (KID). A
sample figure per model: 8 test masks, then 6 outputs each from shared codes.

Then the same for pix2pix, pix2pix+noise and BicycleGAN on Fashion-MNIST edges -> item.

    python benchmarks/bench_paired.py [--reuse] [--steps N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common import RUNS, commit, dirty, load, machine, measured, train

HERE = Path(__file__).parent
OUT = HERE / "results"
# per task, (row name, recipe, overrides): the paper's baselines are variants of the one
# BicycleGAN file. Fashion-MNIST edges -> item is the second task: there the L1-optimal output
# (the mean shading inside an outline) is itself a plausible item, as on the paper's maps.
TASKS = {
    "glyphs2digits": (
        ("pix2pix", "pix2pix-glyphs", ()),
        ("pix2pix+noise", "bicyclegan-glyphs-pix2pix-noise", ()),
        ("cAE-GAN", "bicyclegan-glyphs-cae-gan", ()),
        ("cVAE-GAN", "bicyclegan-glyphs-cvae-gan", ()),
        ("cLR-GAN", "bicyclegan-glyphs-clr-gan", ()),
        ("BicycleGAN", "bicyclegan-glyphs", ()),
    ),
    "edges2fashion": (
        ("pix2pix", "pix2pix-edges2fashion", ()),
        ("pix2pix+noise", "bicyclegan-edges2fashion", ("model.variant=pix2pix+noise",)),
        ("BicycleGAN", "bicyclegan-edges2fashion", ()),
    ),
}
# maps -> satellite in the paper (Table 1; quoted for context, not like for like): LPIPS
# diversity and the human fooling rate (%)
PAPER = {
    "pix2pix+noise": (0.013, 27.93),
    "cVAE-GAN": (0.095, 24.93),
    "cLR-GAN": (0.089, 29.23),
    "BicycleGAN": (0.110, 34.33),
    "real": (0.262, None),
}
N_TEST = 1000  # test pairs for l1; diversity and KID use the metric's 100 inputs x 20 codes


def run_name(recipe: str, extra: tuple[str, ...]) -> str:
    """benchmarks/runs/<name>: the recipe, plus the variant an override picks."""
    variants = [
        e.split("=", 1)[1].replace("+", "-") for e in extra if e.startswith("model.variant=")
    ]
    return "-".join([recipe, *variants])


def score(recipe: str) -> dict[str, float]:
    import torch

    import xdomain
    from xdomain.config import build_config
    from xdomain.datamodule import build_data
    from xdomain.metrics.paired import evaluate_paired
    from xdomain.sections import EvalConfig

    method = xdomain.load(RUNS / recipe, device="cpu")
    cfg = build_config(method.run_config, recipe)
    data = build_data(cfg.data)
    with torch.random.fork_rng():
        return evaluate_paired(method, data, EvalConfig(n_test=N_TEST))


def figure(recipe: str, path: Path) -> None:
    """8 test masks, their targets, then 6 outputs each from 6 codes shared by all models."""
    import torch

    import xdomain
    from xdomain.config import build_config
    from xdomain.datamodule import build_data
    from xdomain.grid import save_grid

    method = xdomain.load(RUNS / recipe, device="cpu")
    fixed = build_data(build_config(method.run_config, recipe).data).fixed(8)
    a, b = fixed["a"], fixed["b"]
    if "z" in method.translate_options:
        z = torch.randn(6, method.cfg.nz, generator=torch.Generator().manual_seed(7))
        y = method.translate(a, z=z)  # (8, 6, C, H, W)
    else:
        y = method.translate(a)[:, None]
    save_grid([a, b, y], path, scale=3)


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reuse", action="store_true", help="keep finished runs in benchmarks/runs")
    p.add_argument("--steps", type=int, default=None, help="train this many steps (smoke runs)")
    args = p.parse_args()
    torch.set_num_threads(2)
    tasks = []
    for task, rows_spec in TASKS.items():
        rows: list[dict[str, Any]] = []
        for name, recipe, extra in rows_spec:
            run = run_name(recipe, extra)
            timing = train(recipe, args.steps, args.reuse, run_dir=RUNS / run, extra=list(extra))
            fig = OUT / f"paired_samples-{run}.png"
            row = {"row": name, **timing, "recipe": recipe, "overrides": list(extra)}
            rows.append({**row, "scores": score(run), "figure": fig.name})
            figure(run, fig)
            print(json.dumps(rows[-1]), flush=True)
        last = rows[-1]["scores"]
        real = {
            "diversity": last["diversity_real"],
            "diversity_l1": last["diversity_real_l1"],
            "kid_judge": last["kid_judge_floor"],
        }
        tasks.append({"task": task, "rows": rows, "real": real})
    result = {
        "tasks": tasks,
        "paper": PAPER,
        "commit": commit(),
        "dirty": dirty(),
        "machine": machine(),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "paired.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


# each task's line above its table in RESULTS.md
TASK_NOTES = {
    "glyphs2digits": "glyph mask -> coloured digit (ink and plate in random colours); digit ="
    " the share of outputs the digit judge reads as the mask's digit",
    "edges2fashion": "Fashion-MNIST edges -> item (grey); class = the share of outputs the"
    " ten-class fashion judge reads as the item's class",
}


def render(results: Path) -> str:
    """RESULTS.md's pix2pix and BicycleGAN section: diversity and realism against the paper's
    baselines, from results/paired.json ('' before the first run)."""
    if (d := load(results, "paired.json", needs="tasks")) is None:
        return ""
    out = [
        "## pix2pix and BicycleGAN: one input, many outputs",
        f"{measured(d)}. Each recipe as shipped. The BicycleGAN paper's protocol"
        " with our judges: 100 test inputs x 20 codes (the same codes for every model);"
        " diversity = mean distance between consecutive outputs of one input in the judge's"
        " unit-length penultimate features (our stand-in for LPIPS) and in pixels (L1, [-1, 1]"
        " units); KID of the 2000 outputs against the real test targets in the same features"
        " (x1, not x1000); L1 to the ground truth with the code encoded from it (pix2pix: its"
        " one output), over 1000 test pairs. The judges are trained to read classes, so their"
        " features move little when only colours or shading change and much when a class"
        " breaks: the pixel column shows the colourings.",
    ]
    paper = d.get("paper", {})
    for t in d["tasks"]:
        out += [
            "",
            f"`{t['task']}`: {TASK_NOTES.get(t['task'], '')}.",
            "",
            "| model | steps | train s | diversity (judge) | diversity (pixels) | KID |"
            " digit / class | L1 to truth | paper LPIPS | paper fooling % | samples |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in t["rows"]:
            s = r["scores"]
            lp, fool = paper.get(r["row"], (None, None))
            out.append(
                f"| {r['row']} (`{' '.join([r['recipe'], *r.get('overrides', [])])}`) |"
                f" {r['steps']} | {r.get('wall_s', '-')} | {s['diversity']:.3f} |"
                f" {s['diversity_l1']:.3f} | {s['kid_judge']:.2f} |"
                f" {s.get('acc', float('nan')):.3f} | {s['l1']:.3f} |"
                f" {'-' if lp is None else f'{lp:.3f}'} |"
                f" {'-' if fool is None else f'{fool:.2f}'} | [png](results/{r['figure']}) |"
            )
        real = t["real"]
        lp_real = paper.get("real", (None, None))[0]
        out.append(
            f"| real pairs (ceiling) | - | - | {real['diversity']:.3f} |"
            f" {real.get('diversity_l1', float('nan')):.3f} | {real['kid_judge']:.2f} | - | - |"
            f" {'-' if lp_real is None else f'{lp_real:.3f}'} | - | - |"
        )
        best = t["rows"][-1]
        out += ["", f"{best['row']} (`{best['recipe']}`): ![samples](results/{best['figure']})"]
    out += [
        "",
        "The paper's numbers are maps -> satellite at 256 px (LPIPS and the human fooling rate),"
        " quoted for context, not like for like. Sample figures: rows are 8 test inputs, their"
        " ground truth, then one row per shared code.",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
