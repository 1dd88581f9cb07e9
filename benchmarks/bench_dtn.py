"""DTN benchmark: printed -> handwritten digits, judge accuracy on translated printed test digits.

    .venv/bin/python benchmarks/bench_dtn.py                 # everything (about an hour, 2 threads)
    .venv/bin/python benchmarks/bench_dtn.py --quick         # short runs, a smoke test (to $TMPDIR)
    .venv/bin/python benchmarks/bench_dtn.py --only speed    # or main, unseen-fonts, ablations,
                                                             # reverse, variants, tradeoff

Writes `benchmarks/results/dtn.json` (merged with earlier sections, so `--only` updates one part)
and `benchmarks/results/dtn_curve.png` (accuracy and style vs wall time).

f's pretraining: every run uses the user's cache (`XDOMAIN_CACHE`), as `xdomain train` does, so
its wall time includes f's phase as it happened there: a cold pretraining (the first run with a
given f) or a cache load. Each run records which (`f_from_cache`) and how long the phase took
(`f_pretrain_s`). The `speed` section times one pretraining of the main recipe's f COLD, in an
empty temporary cache (`f_cold_s`), apart from any run. The judge is cached after its first
training (see bench_judges.py).

Speed: `train_step` alone (`train_step_it_per_s_*`), measured like bench_speed.py: data already
in memory, 5 warm-up steps, then the timed steps repeated for at least 5 s; no data loading,
logging, sampling, checkpoints or evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_speed import measure
from common import commit as git_commit
from common import cpu_name, dirty, load

RESULTS = Path(__file__).parent / "results"
ABLATIONS = [
    "dtn-digits-paper",  # the paper's own configuration: none of the default's additions
    "dtn-digits-probs",  # the class-probability variant: a row beside the paper's feature path
    "dtn-digits-no-const",
    "dtn-digits-no-tid",
    "dtn-digits-no-d",
    "dtn-digits-binary",
]
# the last evaluation's extra columns, carried into each run's summary
FINAL_KEYS = (
    "acc_heldout_fonts",
    "acc_seen_fonts",
    "style_bold",
    "style_italic",
    "kid_judge",
    "kid_judge_std",
    "kid_judge_floor",
    "diversity",
    "diversity_real",
)
# The binary D runs G 10 times and D 3 times per step (the reference code's phases), so it is
# evaluated more often to get a curve inside the same wall-time budget.
EXTRA = {"dtn-digits-binary": ["eval.every=100"]}
# The main recipe again: other seeds (how much of the result is luck) and bf16 autocast.
VARIANTS = {
    "seed 1": ["seed=1"],
    "seed 2": ["seed=2"],
    "bf16": ["train.precision=bf16"],
    # the recipe stops at 1500 steps (the demo); this row trains 4x longer, the learning rate
    # decaying linearly to 0 over the second half, inside the 15-minute budget
    "6000 steps, lr decay": ["train.steps=6000", "train.decay_start=3000", "eval.every=500"],
    # what each addition to the paper brings: the main recipe without it
    "no f adaptation": ["model.f_adapt_rounds=0"],
    "L_TID on recoloured targets only": ["model.tid_augment=colour"],
    "f's 8x8 map (layer 1)": ["model.map_layer=1"],
}
# not rerun by default (`--variants bf16` does): bench_speed.py measures bf16 speed for every recipe
DEFAULT_VARIANTS = [v for v in VARIANTS if v != "bf16"]
# The trade-off between accuracy and style: L_CONST's share for f's feature map (the main recipe:
# 0.03). 0 still decodes the map, but no longer asks G's output to keep it.
TRADEOFF = {f"map weight {w:g}": [f"model.const_map_weight={w:g}"] for w in (0.0, 0.1, 0.3)}
# Unseen fonts: the main recipe with these font families kept out of f's and G's training
# (`dtn-digits-unseen-fonts`); evaluation scores the test digits in them apart.
SECTIONS = ["speed", "main", "unseen-fonts", "ablations", "reverse", "variants", "tradeoff"]


def timed_run(recipe: str, overrides: list[str], budget_s: float, threads: int) -> dict[str, Any]:
    """Train `recipe` for at most `budget_s` of wall time; return eval records with wall time."""
    from xdomain import train as trainer_mod
    from xdomain.config import load_config

    cfg = load_config(recipe, [f"train.threads={threads}", "train.progress=false", *overrides])
    records: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    class Timed(trainer_mod.Trainer):
        def evaluate(self) -> dict[str, float]:
            metrics = super().evaluate()
            records.append({"step": self.step, "wall_s": time.perf_counter() - t0, **metrics})
            print(
                f"  {recipe} step {self.step} {records[-1]['wall_s']:.0f}s "
                f"acc {metrics.get('acc', float('nan')):.4f}",
                flush=True,
            )
            if records[-1]["wall_s"] > budget_s:
                self.cfg.train.steps = self.step  # the budget is spent: stop after this step
            return metrics

    with tempfile.TemporaryDirectory() as out:
        tr = Timed(cfg, out)
        setup_s = time.perf_counter() - t0
        tr.fit()
    best_val = max(records, key=lambda r: r.get("val_acc", -1))
    return {
        "recipe": recipe,
        "overrides": overrides,
        "budget_s": budget_s,
        "setup_s": setup_s,
        "f_pretrain_s": getattr(tr.method, "f_pretrain_seconds", None),
        "f_from_cache": getattr(tr.method, "f_from_cache", None),
        "data_fingerprint": tr.data_fp["id"],
        "wall_s": time.perf_counter() - t0,
        "final_acc": records[-1].get("acc"),
        "max_acc": max(r.get("acc", 0) for r in records),
        "val_selected_acc": best_val.get("acc"),
        "val_selected_step": best_val["step"],
        **{f"final_{k}": records[-1][k] for k in FINAL_KEYS if k in records[-1]},
        "curve": records,
    }


def speed(threads: int, steps: int, overrides: list[str]) -> dict[str, Any]:
    """`train_step` it/s of the main recipe, fp32 and bf16 (`bench_speed.measure`)."""
    over = [*overrides, "train.device=cpu", f"train.threads={threads}"]
    out: dict[str, Any] = {"train_step_steps": steps, "train_step_min_s": 5.0}
    for precision in ("fp32", "bf16"):
        rate = measure("dtn-digits", precision, steps, overrides=tuple(over))
        out[f"train_step_it_per_s_{precision}"] = rate
    return out


def diagnostics(overrides: list[str]) -> dict[str, Any]:
    """The judge's held-out accuracy, f's reach (its accuracy on REAL handwritten test digits)
    and f's pretraining timed cold, in an empty cache of its own."""
    from xdomain.config import load_config
    from xdomain.datamodule import build_data
    from xdomain.metrics import label_accuracy
    from xdomain.metrics.translation import pick_judge
    from xdomain.train import build_method

    cfg = load_config("dtn-digits", overrides)
    data = build_data(cfg.data, n_val=cfg.eval.n_val)
    judge, _ = pick_judge(data.train_a, data.train_b, data.test_a, data.test_b, data.cfg)
    method = build_method(cfg, data)
    # the data and the judge are loaded above, from the user's cache: only f's phase is timed
    with tempfile.TemporaryDirectory(prefix="xdomain-cold-f-") as cold:
        old = os.environ.get("XDOMAIN_CACHE")
        os.environ["XDOMAIN_CACHE"] = cold
        try:
            method.setup(data)
        finally:
            if old is None:
                os.environ.pop("XDOMAIN_CACHE")
            else:
                os.environ["XDOMAIN_CACHE"] = old
    xb, yb = data.test_b.tensors()
    xa, ya = data.test_a.tensors()
    return {
        # None until the DTN method records its f phase; False: it was trained, as intended
        "f_cold_s": getattr(method, "f_pretrain_seconds", None),
        "f_cold_from_cache": getattr(method, "f_from_cache", None),
        "judge_heldout_acc": label_accuracy(judge, xb, yb),
        "f_acc_printed_test": method.f_accuracy(xa, ya),
        "f_acc_handwritten_test": method.f_accuracy(xb, yb),
    }


def plot(results: dict[str, Any], path: Path) -> None:
    """Accuracy and style (mean of the bold and italic scores) against wall time, every run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_style) = plt.subplots(1, 2, figsize=(12, 4.8))
    runs = (
        {"main": results.get("main"), "unseen fonts": results.get("unseen_fonts")}
        | results.get("ablations", {})
        | {"reverse": results.get("reverse")}
        | {f"main, {k}": v for k, v in results.get("variants", {}).items()}
        | {f"main, {k}": v for k, v in results.get("tradeoff", {}).items()}
    )
    colours = plt.get_cmap("tab20").colors
    for i, (name, run) in enumerate((n, r) for n, r in runs.items() if r):
        c = run["curve"]
        minutes = [r["wall_s"] / 60 for r in c]
        style = [(r.get("style_bold", 0) + r.get("style_italic", 0)) / 2 for r in c]
        kw = {
            "marker": ".",
            "label": name,
            "lw": 2.5 if name == "main" else 1,
            "color": "black" if name == "main" else colours[i % len(colours)],
        }
        ax_acc.plot(minutes, [r.get("acc", 0) for r in c], **kw)
        if any(style):
            ax_style.plot(minutes, style, **kw)
    ax_acc.axhline(0.9066, ls="--", c="grey", label="paper 90.66%")
    ax_style.axhline(0.5, ls=":", c="grey", label="0.5: style not carried")
    ax_style.axhline(0.8, ls="--", c="grey", label="target 0.8")
    for ax, label in (
        (ax_acc, "judge accuracy on translated test digits"),
        (ax_style, "style carried (mean of bold and italic pair scores)"),
    ):
        ax.set_xlabel("wall time (min, incl. evaluation and f: cold or cached, see the table)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    import torch

    from xdomain.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    ap.add_argument("--plot", action="store_true", help="only redraw the figure from the results")
    ap.add_argument("--only", choices=SECTIONS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--out",
        type=Path,
        help="results file (default: results/dtn.json; with --quick a file in the temp folder)",
    )
    ap.add_argument(
        "--variants", nargs="*", choices=sorted(VARIANTS), help="only these variants (default: all)"
    )
    ap.add_argument(
        "--ablations", nargs="*", choices=ABLATIONS, help="only these recipes (default: all)"
    )
    ap.add_argument("--budget", type=float, default=900.0, help="main run budget, seconds")
    ap.add_argument(
        "--short-budget",
        type=float,
        default=200.0,
        help="budget of each ablation and of the reverse run, seconds (the main run's length)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    quick = (
        ["train.steps=60", "eval.every=30", "model.f_steps=50", "model.f_adapt_steps=10"]
        if args.quick
        else []
    )
    main_over = quick  # the demo recipe as it is; the budget caps it
    budget = 60.0 if args.quick else args.budget
    short = 40.0 if args.quick else args.short_budget
    # a smoke test never overwrites the real results
    tmp = Path(tempfile.gettempdir())
    path: Path = args.out or (tmp / "dtn-quick.json" if args.quick else RESULTS / "dtn.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    # `--only` (and `--variants`/`--ablations` within it) updates part of the file; a full run
    # starts afresh, so no row of an earlier default survives beside the new ones
    partial = bool(args.only or args.variants or args.ablations)
    results: dict[str, Any] = json.loads(path.read_text()) if partial and path.is_file() else {}
    commit = git_commit()
    # `--only` updates one section; the header keeps describing the last full run
    header = results if args.only and "commit" in results else {}
    results |= {
        "commit": header.get("commit", commit),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "threads": args.threads,
        "quick": args.quick,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    todo = [args.only] if args.only else SECTIONS
    if args.plot:  # the figure again, from the measurements already in the file
        plot(json.loads(path.read_text()), path.with_name(f"{path.stem}_curve.png"))
        return

    def stamped(run: dict[str, Any]) -> dict[str, Any]:
        """A run with the commit and the machine's load when it ended (other work skews time)."""
        return run | {"commit": commit, "dirty": dirty(), "loadavg_1min_end": os.getloadavg()[0]}

    for section in todo:
        if section == "speed":
            sp = speed(args.threads, 10 if args.quick else 30, quick) | diagnostics(quick)
            results["speed"] = stamped(sp)
        elif section == "main":
            results["main"] = stamped(timed_run("dtn-digits", main_over, budget, args.threads))
        elif section == "ablations":
            results["ablations"] = results.get("ablations", {}) | {
                r: stamped(
                    timed_run(
                        r, quick or ["train.steps=100000", *EXTRA.get(r, [])], short, args.threads
                    )
                )
                for r in ABLATIONS
                if r in (args.ablations or ABLATIONS)
            }
        elif section == "reverse":
            results["reverse"] = stamped(
                timed_run(
                    "dtn-digits-reverse", quick or ["train.steps=100000"], short, args.threads
                )
            )
        elif section == "unseen-fonts":
            held = load_config("dtn-digits-unseen-fonts").data.holdout_fonts
            results["unseen_fonts"] = stamped(
                timed_run("dtn-digits-unseen-fonts", main_over, budget, args.threads)
            ) | {"holdout": held}
        elif section == "tradeoff":
            results["tradeoff"] = {
                name: stamped(timed_run("dtn-digits", [*main_over, *over], budget, args.threads))
                for name, over in TRADEOFF.items()
            }
        elif section == "variants":
            chosen = args.variants or DEFAULT_VARIANTS
            results["variants"] = results.get("variants", {}) | {
                name: stamped(timed_run("dtn-digits", [*main_over, *over], budget, args.threads))
                for name, over in VARIANTS.items()
                if name in chosen
            }
        path.write_text(json.dumps(results, indent=1))  # after each section: a crash keeps it
    plot(results, path.with_name(f"{path.stem}_curve.png"))
    print(f"wrote {path}")
    print(
        json.dumps(
            {
                k: v
                for k, v in results.items()
                if k not in ("main", "unseen_fonts", "ablations", "reverse", "variants", "tradeoff")
            },
            indent=1,
        )
    )


def _num(r: dict, key: str, digits: int = 4) -> str:
    """A table cell: the number with `digits` decimals, or '-' where the run did not record it."""
    v = r.get(key)
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "-"


def render(results: Path) -> str:
    """RESULTS.md's DTN section, from results/dtn.json and its curve ('' before the first run)."""
    d = load(results, "dtn.json")
    if not d:
        return ""
    sp, m = d.get("speed", {}), d["main"]
    out = [
        "## DTN: printed -> handwritten digits (judge accuracy on translated printed test digits)",
        f"main run: commit {m.get('commit', d['commit'])}, {d['cpu']}, {d['threads']} thread(s),"
        f" torch {d['torch']}; diagnostics and speed: commit {sp.get('commit', 'not recorded')}."
        " Measurements of the earlier class-probability default: `results/dtn-probs-default.json`.",
        "",
        f"Judge held-out accuracy (real handwritten test): {_num(sp, 'judge_heldout_acc')}; f on"
        f" printed test {_num(sp, 'f_acc_printed_test')}, f on real handwritten test"
        f" {_num(sp, 'f_acc_handwritten_test')} (diagnostic only).",
        "",
        f"Main recipe `{m['recipe']}`: final {m['final_acc']:.4f}, max {m['max_acc']:.4f},"
        f" checkpoint selected on the validation judge {m['val_selected_acc']:.4f} (step"
        f" {m['val_selected_step']}); wall {m['wall_s']:.0f} s of a {m['budget_s']:.0f} s budget.",
        "",
        "| step | wall s | acc (test) | val_acc | style bold | style italic | FID (judge) |"
        " KID (judge) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in m["curve"]:
        out.append(
            f"| {r['step']} | {r['wall_s']:.0f} | {_num(r, 'acc')} | {_num(r, 'val_acc')} |"
            f" {_num(r, 'style_bold', 2)} | {_num(r, 'style_italic', 2)} |"
            f" {_num(r, 'fid_judge', 1)} | {_num(r, 'kid_judge', 1)} |"
        )
    out += ["", _f_phase(m, sp)]
    u = d.get("unseen_fonts")
    if isinstance(u, dict):
        out += [
            "",
            f"Unseen fonts (`{u.get('recipe')}`:"
            f" {u.get('holdout', 'six families').replace(',', ', ')} kept out of"
            f" f's and G's training): accuracy on the test digits in the held-out fonts"
            f" {_num(u, 'final_acc_heldout_fonts')}, in the fonts it trained on"
            f" {_num(u, 'final_acc_seen_fonts')}, all test digits {_num(u, 'final_acc')}"
            " (last evaluation).",
        ]
    rows = [m | {"name": f"{m['recipe']} (main)"}]
    if isinstance(u, dict):
        rows.append(u | {"name": u.get("recipe", "?")})
    rows += [r | {"name": r.get("recipe", "?")} for r in d.get("ablations", {}).values()]
    if isinstance(d.get("reverse"), dict):
        rows.append(d["reverse"] | {"name": d["reverse"].get("recipe", "?")})
    rows += [r | {"name": f"dtn-digits, {k}"} for k, r in d.get("variants", {}).items()]
    rows += [r | {"name": f"dtn-digits, {k}"} for k, r in d.get("tradeoff", {}).items()]
    out += [
        "",
        "Style columns: the share of bold / italic pairs whose translations differ like the"
        " inputs (0.5: not carried); KID raw (floor: real vs real); diversity: mean pairwise"
        " distance of same-digit translations (real handwritten digits in brackets). All at"
        " the run's last evaluation. Wall s: the whole run, every evaluation and f's phase"
        " included; f pretrain s (cold): the seconds f's pretraining took inside that wall time"
        " when the run trained f cold, `cached` when it loaded f from the cache instead.",
        "",
        "| run | final acc | max acc | val-selected acc | style bold | style italic | KID"
        " (floor) | diversity (real) | wall s | f pretrain s (cold) | data | commit |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
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
    out += ["", _speed_line(d, sp)]
    if (results / "dtn_curve.png").is_file():
        out += ["", "![DTN accuracy and style vs time](results/dtn_curve.png)"]
    return "\n".join(out)


def _speed_line(d: dict, sp: dict) -> str:
    """What the DTN speed figures measured: `train_step` alone, or (older results) the loop."""
    if "train_step_it_per_s_fp32" in sp:
        line = (
            f"`train_step` alone ({d['threads']} threads; batches already in memory, 5 warm-up"
            f" steps, then {sp['train_step_steps']} timed steps repeated for at least"
            f" {sp['train_step_min_s']:g} s; no data loading, logging or evaluation): fp32"
            f" {sp['train_step_it_per_s_fp32']:.2f} it/s, bf16"
            f" {sp['train_step_it_per_s_bf16']:.2f} it/s."
        )
    elif "it_per_s_fp32" in sp:
        line = (
            f"Trainer loop it/s, data loading included ({d['threads']} threads; the Trainer's"
            f" logged rate from the first step, evaluation switched off): fp32"
            f" {sp['it_per_s_fp32']:.2f} it/s, bf16 {sp['it_per_s_bf16']:.2f} it/s."
        )
    else:
        line = "Speed: not measured."
    if "loadavg_1min_end" in sp:
        line += f" 1-min load average at the end: {sp['loadavg_1min_end']:.1f}."
    return line


def _f_cell(r: dict) -> str:
    """A run's f phase: the seconds of a cold pretraining, `cached`, or unknown (old results)."""
    if r.get("f_from_cache") is None:
        return "not recorded"
    return "cached" if r["f_from_cache"] else f"{r['f_pretrain_s']:.0f}"


def _f_phase(m: dict, sp: dict) -> str:
    cold = (
        f" The main recipe's f pretraining timed alone, cold (an empty cache; data and judge"
        f" already loaded): {sp['f_cold_s']:.0f} s."
        if isinstance(sp.get("f_cold_s"), (int, float)) and sp.get("f_cold_from_cache") is False
        else " f's pretraining was not timed cold in this measurement."
    )
    if m.get("f_from_cache") is None:
        return (
            "Wall times include every evaluation and f's phase (a cache load or a cold"
            " pretraining); this measurement did not record"
            " whether f was pretrained cold or loaded from the cache." + cold
        )
    how = (
        "f loaded from the cache, no pretraining"
        if m["f_from_cache"]
        else f"f pretrained cold, {m['f_pretrain_s']:.0f} s"
    )
    return (
        "Wall times include every evaluation and f's phase (a cache load or a cold pretraining;"
        f" main run: {how}).{cold}"
    )


if __name__ == "__main__":
    main()
