"""Training speed of every built-in recipe, in iterations/s, fp32 and bf16.

Times `train_step` alone (data already in memory, no logging, sampling or evaluation) after a few
warm-up steps, with the recipe's own batch size and networks, on this machine's threads.

    python benchmarks/bench_speed.py [--steps 30] [--recipes dtn-digits discogan-toy]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from common import commit

from xdomain.config import load_config, recipe_names
from xdomain.datamodule import build_data
from xdomain.train import build_method, make_accelerator

OUT = Path(__file__).parent / "results"


def measure(
    recipe: str,
    precision: str,
    steps: int,
    warmup: int = 5,
    min_s: float = 5.0,
    overrides: tuple[str, ...] = (),
) -> float:
    """`train_step` it/s alone: batches in memory, `warmup` steps, then the timed batches repeated
    until `min_s` have passed (no data loading, logging or evaluation). `overrides` come last."""
    cfg = load_config(
        recipe,
        [
            f"train.precision={precision}",
            "train.device=cpu",
            f"train.threads={torch.get_num_threads()}",
            *overrides,
        ],
    )
    acc = make_accelerator(cfg)
    data = build_data(cfg.data)
    method = build_method(cfg, data).to(acc.device)
    method.attach(acc)
    method.setup(data)
    method.train()
    stream = data.stream()
    batches = [next(stream) for _ in range(warmup + steps)]
    for i, b in enumerate(batches[:warmup]):
        with acc.autocast():
            method.train_step(b, i)
    # Repeat the timed batches until `min_s` have passed: a toy step takes ~10 ms, so 30 steps
    # alone would time mostly noise.
    done, t0 = 0, time.perf_counter()
    while True:
        for i, b in enumerate(batches[warmup:]):
            with acc.autocast():
                method.train_step(b, warmup + done + i)
        done += steps
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return done / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--recipes", nargs="*", default=None)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 = this CPU)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    load_before = os.getloadavg()[0]  # other work on the machine slows every number below
    for recipe in args.recipes or recipe_names():
        row = {"recipe": recipe, "method": load_config(recipe).method}
        for precision in ("fp32", "bf16"):
            row[precision] = measure(recipe, precision, args.steps)
        row["bf16_speedup"] = row["bf16"] / row["fp32"]
        print(f"{recipe:<28} fp32 {row['fp32']:8.2f} it/s   bf16 {row['bf16']:8.2f} it/s")
        rows.append(row)
    OUT.mkdir(exist_ok=True)
    (OUT / "speed.json").write_text(
        json.dumps(
            {
                "commit": commit(),
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "threads": torch.get_num_threads(),
                "loadavg_1min": [load_before, os.getloadavg()[0]],
                "cpus": os.cpu_count(),
                "steps": args.steps,
                "min_s": 5.0,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
