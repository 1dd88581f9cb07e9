"""Morph smoothness of Morph-UGATIT, configurations B (no mapping MLP) and C (mapping MLP).

For 100 test images of domain a, the 9-step strip alpha = 0, 1/8, ..., 1 (`generate(x, alpha=
[...])`, the mean latents w_a -> w_b) is scored by judges trained on real images only:

- `domain`: a judge that tells real a from real b (`evaluate.domain_judge`); its probability of
  b should rise monotonically from alpha 0 to alpha 1;
- `target` (sneaker <-> ankle boot): the all-ten-classes Fashion-MNIST judge's probability of the
  target class(es), the same judge as the image table's target-class accuracy;
- `label` (digits): the handwritten judge's probability of the input's digit: a strip that
  morphs the style should keep it (it is not expected to rise).

Per strip: the number of steps where the probability falls (`non_monotone`, 8 steps; also
counting only falls of more than 0.05, `non_monotone_05`) and the largest single rise or fall
(`max_jump`: 1.0 means the whole change happens in one step, 1/8 an even ramp). Means over the
100 strips go to `results/morph.json`, a figure of the first strips to `results/morph_strips-
<recipe>.png`.

It reads the checkpoints that `bench_image.py` leaves under `benchmarks/runs/<recipe>`:

    python benchmarks/bench_image.py --recipes morph-ugatit-fashion-shoes morph-ugatit-b-...
    python benchmarks/bench_morph.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import commit, dirty, load, machine, measured

if TYPE_CHECKING:
    from torch import Tensor

HERE = Path(__file__).parent
OUT = HERE / "results"
RUNS = HERE / "runs"
RECIPES = (
    "morph-ugatit-b-fashion-shoes",
    "morph-ugatit-fashion-shoes",
    "morph-ugatit-b-digits",
    "morph-ugatit-digits",
)
STEPS = 9
N = 100
FIGURE_ROWS = 8


def probabilities(judge: Any, x: Tensor, classes: Tensor) -> Tensor:
    """(N, C, H, W) -> (N,): the judge's softmax mass on `classes` (one per image, or a shared
    set of class indices)."""
    import torch

    from xdomain.metrics.translation import judge_view

    judge.eval()
    with torch.no_grad():
        chunks = range(0, len(x), 256)
        p = torch.cat([judge(judge_view(x[i : i + 256])).softmax(1) for i in chunks])
        if classes.dim() == 1 and len(classes) == len(x):  # one class per image
            return p.gather(1, classes[:, None])[:, 0]
        return p[:, classes].sum(1)


def smoothness(p: Tensor) -> dict[str, float]:
    """(N, K) probabilities along N strips of K steps -> the means over the strips."""
    d = p.diff(dim=1)  # (N, K - 1)
    return {
        "non_monotone": float((d < 0).sum(1).float().mean()),
        "non_monotone_05": float((d < -0.05).sum(1).float().mean()),
        "max_jump": float(d.abs().amax(1).mean()),
        "start": float(p[:, 0].mean()),
        "end": float(p[:, -1].mean()),
        "mean_curve": [round(float(v), 4) for v in p.mean(0)],
    }


def measure(recipe: str, runs: Path, tag: str = "") -> dict[str, Any]:
    import torch

    import xdomain
    from xdomain.config import build_config
    from xdomain.datamodule import build_data
    from xdomain.grid import save_grid
    from xdomain.metrics.translation import domain_judge, pick_judge

    run = runs / recipe
    if not (run / "checkpoints").is_dir():
        sys.exit(
            f"bench_morph: no run at '{run}': train it first with"
            f" `python benchmarks/bench_image.py --recipes {recipe}`"
        )
    method = xdomain.load(run)
    cfg = build_config(method.run_config, str(run))
    data = build_data(cfg.data)
    xa, ya = data.test_a.tensors()
    xa, ya = xa[:N], ya[:N]
    alphas = [k / (STEPS - 1) for k in range(STEPS)]
    with method.evaluating():
        strips = method.generate(xa, alpha=alphas)  # (N, K, C, H, W)
    flat = strips.flatten(0, 1)  # (N * K, C, H, W), strip-major
    per_step = {"n": len(xa), "steps": STEPS}
    dj = domain_judge(data.train_a, data.train_b, data.test_a, data.test_b)
    p_b = probabilities(dj, flat, torch.tensor([1])).view(len(xa), STEPS)
    row: dict[str, Any] = {"recipe": recipe, **per_step, "domain": smoothness(p_b)}
    judge, kind = pick_judge(data.train_a, data.train_b, data.test_a, data.test_b, data.cfg)
    if kind == "classes":
        wanted = torch.tensor(data.train_b.classes)
        p_t = probabilities(judge, flat, wanted).view(len(xa), STEPS)
        row["target"] = smoothness(p_t)
    elif kind == "labels":
        labels = ya.repeat_interleave(STEPS)
        p_l = probabilities(judge, flat, labels).view(len(xa), STEPS)
        row["label"] = smoothness(p_l)
    fig = OUT / f"morph_strips-{recipe}{'-' + tag if tag else ''}.png"
    # one row per step (alpha 0 at the top), one column per input: strips read top to bottom
    save_grid([strips[:FIGURE_ROWS, k] for k in range(STEPS)], fig, scale=3)
    row["figure"] = fig.name
    row["checkpoint_step"] = method.checkpoint_step
    return row


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="*", default=list(RECIPES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=Path, default=RUNS, help="where the runs are, one per recipe")
    p.add_argument("--tag", default="", help="write morph-TAG.json instead of morph.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for recipe in args.recipes:
        row = measure(recipe, args.runs, args.tag)
        print(json.dumps({k: v for k, v in row.items() if k != "mean_curve"}), flush=True)
        rows.append(row)
    out = OUT / (f"morph-{args.tag}.json" if args.tag else "morph.json")
    stamp = {"commit": commit(), "dirty": dirty(), "machine": machine(), "cpus": os.cpu_count()}
    out.write_text(json.dumps({**stamp, "rows": rows}, indent=1))
    print(f"wrote {out}")


def render(results: Path) -> str:
    """RESULTS.md's morph-smoothness table of configurations B and C, from results/morph.json
    ('' before the first run)."""
    if (d := load(results, "morph.json", needs="rows")) is None:
        return ""
    out = [
        "## Morph-UGATIT: how smoothly a 9-step strip moves from a to b (configurations B, C)",
        f"{measured(d)}. {d['rows'][0]['n']} test inputs of domain a, each decoded at alpha 0,"
        " 1/8, ..., 1 (the domains' mean latents w, interpolated). P(b): a judge of"
        " real a vs real b; P(target): the ten-class Fashion-MNIST judge's mass on the target"
        " class; P(digit): the handwritten judge's probability of the input's digit (kept, not"
        " rising, is what a style morph should do). Falls: steps (of 8) where the probability"
        " drops, and drops of more than 0.05; jump: the largest single-step change (1/8 for an"
        " even ramp from 0 to 1, 1 when all of it happens in one step). Means over the strips.",
        "",
        "| recipe | config | judge | mean curve, alpha 0 -> 1 | falls | falls > 0.05 |"
        " largest jump |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    names = {"domain": "P(b)", "target": "P(target)", "label": "P(digit)"}
    for r in d["rows"]:
        config = "B" if r["recipe"].startswith("morph-ugatit-b-") else "C"
        for key, name in names.items():
            if key not in r:
                continue
            m = r[key]
            curve = " ".join(f"{v:.2f}" for v in m["mean_curve"])
            out.append(
                f"| {r['recipe']} | {config} | {name} | {curve} | {m['non_monotone']:.2f} |"
                f" {m['non_monotone_05']:.2f} | {m['max_jump']:.3f} |"
            )
    out.append("")
    for r in d["rows"]:
        if (results / r["figure"]).is_file():
            out.append(
                f"`{r['recipe']}` (a column per input, alpha 0 at the top):"
                f" ![strips](results/{r['figure']})"
            )
    return "\n".join(out)


if __name__ == "__main__":
    main()
