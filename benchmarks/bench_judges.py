"""The judges' own accuracy: each embedded labelled source's judge on its real held-out split.

    .venv/bin/python benchmarks/bench_judges.py     # about 1-2 min (plus ~1 min per judge cold)
    .venv/bin/python benchmarks/bench_judges.py --seeds 0 --fresh-threads 2 --out /tmp/j.json

For `digits-handwritten` and `digits-printed`, loaded with the data settings of the DTN recipes
(`dtn-digits`: image size, channels, data seed), and `fashion` (all ten Fashion-MNIST classes, the
judge of every fashion recipe) with those of `cyclegan-fashion-shoes`, as `xdomain.evaluate`
loads them:

- `heldout_acc`: the judge every evaluation uses (`xdomain.metrics.get_judge`: trained once with
  seed 0 and cached; loaded here when cached) scored on ALL real test images of the source
  (`label_accuracy`, `n_test` images). `recorded_acc` is what the judge recorded when trained.
- `fresh`: the same judge trained afresh (`train_judge`, not cached) with each of `--seeds` at
  each torch thread count of `--fresh-threads`, scored the same way: how much the number depends
  on the judge's seed and on the thread count it was trained with (training is deterministic for
  one thread count, not across them, and the cache key does not include it: the cached judge is
  whichever the first process to train it produced). Seed 0 is the cached judge's recipe.

Writes `benchmarks/results/judges.json`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from common import commit, dirty, load, load1, load_note, machine, measured

RESULTS = Path(__file__).parent / "results"
# source -> the recipe whose data settings its evaluations use
SOURCES = {
    "digits-handwritten": "dtn-digits",
    "digits-printed": "dtn-digits",
    "fashion": "cyclegan-fashion-shoes",
}


def judge_row(name: str, seeds: list[int], fresh_threads: list[int]) -> dict[str, Any]:
    """Held-out accuracy of the evaluation judge of source `name`, and of fresh seeded judges."""
    import torch

    from xdomain.config import load_config
    from xdomain.data import load_domain
    from xdomain.fingerprint import source_fingerprint
    from xdomain.metrics import get_judge, label_accuracy, train_judge

    cfg = load_config(SOURCES[name]).data  # the data settings its evaluations use
    kw: dict[str, Any] = {"image_size": cfg.image_size, "channels": cfg.channels, "seed": cfg.seed}
    train, test = load_domain(name, "train", **kw), load_domain(name, "test", **kw)
    (xt, yt), (xs, ys) = train.tensors(), test.tensors()
    t0 = time.perf_counter()
    judge = get_judge(name, (xt, yt), (xs, ys), num_classes=train.num_classes)
    row: dict[str, Any] = {
        "source": name,
        "data": source_fingerprint(name),
        "n_train": len(train),
        "n_test": len(test),
        "heldout_acc": label_accuracy(judge, xs, ys),
        "recorded_acc": judge.heldout_accuracy,  # measured when it was trained
        "get_judge_s": round(time.perf_counter() - t0, 1),  # about 0 s when it was cached
        "fresh": [],
    }
    threads = torch.get_num_threads()
    for n in fresh_threads:
        torch.set_num_threads(n)
        for seed in seeds:
            fresh, _ = train_judge(xt, yt, xs, ys, num_classes=train.num_classes, seed=seed)
            acc = label_accuracy(fresh, xs, ys)
            row["fresh"].append({"seed": seed, "threads": n, "acc": acc})
    torch.set_num_threads(threads)
    accs = ", ".join(f"seed {r['seed']}/{r['threads']}t {r['acc']:.4f}" for r in row["fresh"])
    print(f"{name}: {row['heldout_acc']:.4f} on {len(test)} real test images; fresh: {accs}")
    return row


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="fresh judges' seeds")
    ap.add_argument(
        "--fresh-threads", type=int, nargs="*", default=[1, 2], help="fresh judges' thread counts"
    )
    ap.add_argument("--threads", type=int, default=2, help="threads for the rest")
    ap.add_argument("--out", type=Path, default=RESULTS / "judges.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = load1()
    rows = [judge_row(name, args.seeds, args.fresh_threads) for name in SOURCES]
    out = {
        "commit": commit(),
        "dirty": dirty(),
        "machine": machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "seeds": args.seeds,
        "fresh_threads": args.fresh_threads,
        "loadavg_1min": [load_before, load1()],
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


def render(results: Path) -> str:
    """RESULTS.md's judges table, from results/judges.json ('' before the first run)."""
    if (d := load(results, "judges.json")) is None:
        return ""
    seeds, threads = d.get("seeds", []), d.get("fresh_threads", [])
    out = [
        "## Judges: accuracy on real held-out images",
        f"{measured(d)}, torch {d['torch']}"
        + (f"; {load_note(d['loadavg_1min'])}" if "loadavg_1min" in d else ""),
        "",
        "Held-out accuracy: the cached judge every evaluation uses (seed 0) on all real test"
        " images of its source, none of which it trained on.",
    ]
    if seeds and threads:
        out[-1] += (
            f" Fresh judges: the same judge trained afresh with seeds {', '.join(map(str, seeds))}"
            " with the caller at each torch thread count (judges train on one thread since"
            " JUDGE_VERSION 2, so the columns must agree)."
        )
    out += [
        "",
        "| source | data | train | test | held-out accuracy |"
        + "".join(f" fresh, {n} thread(s), seeds {'/'.join(map(str, seeds))} |" for n in threads),
        "| --- | --- | ---: | ---: | ---: |" + " --- |" * len(threads),
    ]
    for r in d["rows"]:
        cells = [
            ", ".join(f"{f['acc']:.4f}" for f in r.get("fresh", []) if f["threads"] == n)
            for n in threads
        ]
        out.append(
            f"| {r['source']} | {r['data']} | {r['n_train']} | {r['n_test']} |"
            f" {r['heldout_acc']:.4f} |" + "".join(f" {c or '-'} |" for c in cells)
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
