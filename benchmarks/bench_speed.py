"""Training speed of every built-in recipe, in iterations/s, fp32 and bf16.

Times `train_step` alone (data already in memory, no logging, sampling or evaluation) after a few
warm-up steps, with the recipe's own batch size and networks, on this machine's threads. Paper-
scale recipes on a user's folder (`data.root`) run on a generated folder of random images of the
recipe's size, so their numbers are the real networks at the real resolution.
Also: the time to translate one 256x256 image with CycleGAN's 9-block generator (ngf 64), the
published horse2zebra network's size.

    python benchmarks/bench_speed.py [--steps 30] [--recipes dtn-digits discogan-toy]

`--recipes` re-measures those rows only and keeps the file's other rows, each with its commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from common import commit, load

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
    import torch

    from xdomain.config import load_config
    from xdomain.datamodule import build_data
    from xdomain.optim import Stepper, make_accelerator
    from xdomain.train import build_method

    cfg = load_config(
        recipe,
        [
            f"train.precision={precision}",
            "train.device=cpu",
            f"train.threads={torch.get_num_threads()}",
            *overrides,
        ],
    )
    acc = make_accelerator(cfg.train)
    data = build_data(cfg.data)
    method = build_method(cfg, data).to(acc.device)
    method.attach(Stepper(acc))  # as the Trainer attaches it
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


def _random_root(size: int, channels: int) -> str:
    """An unpaired trainA/trainB/testA/testB folder of 8 random PNGs each, for timing."""
    import tempfile

    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp(prefix="xdomain-speed-"))
    rng = np.random.default_rng(0)
    mode = "RGB" if channels == 3 else "L"
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir()
        for i in range(8):
            px = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(px).convert(mode).save(root / sub / f"{i}.png")
    return str(root)


def _random_aligned(size: int) -> str:
    """A pix2pix-style train/ test/ folder of 8 random aligned AB images each, for timing."""
    import tempfile

    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp(prefix="xdomain-speed-"))
    rng = np.random.default_rng(0)
    for sub in ("train", "test"):
        (root / sub).mkdir()
        for i in range(8):
            px = rng.integers(0, 256, (size, 2 * size, 3), dtype=np.uint8)
            Image.fromarray(px).save(root / sub / f"{i}.png")
    return str(root)


def _random_labelled(source: str, size: int) -> str:
    """A CelebA (`celeba:`) or RaFD-style (`folders:`) layout of random images, for timing:
    8 training images (CelebA: 2007 attribute lines, the official split's test first)."""
    import tempfile

    import numpy as np
    from PIL import Image

    from xdomain.data.celeba import split_lines
    from xdomain.labels import RAFD_EXPRESSIONS

    root = Path(tempfile.mkdtemp(prefix="xdomain-speed-"))
    rng = np.random.default_rng(0)
    if source.startswith("celeba:"):
        names = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
        rows = [f"{i:06d}.jpg " + " ".join(map(str, rng.choice([-1, 1], 5))) for i in range(2007)]
        (root / "images").mkdir()
        (root / "list_attr_celeba.txt").write_text(f"2007\n{' '.join(names)}\n" + "\n".join(rows))
        train, test = split_lines(rows)
        for line in train + test[:8]:
            px = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(px).save(root / "images" / line.split()[0])
        return f"celeba:{root}"
    for split in ("train", "test"):
        for e in RAFD_EXPRESSIONS:
            (root / split / e).mkdir(parents=True)
            px = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(px).save(root / split / e / "0.png")
    return f"folders:{root}"


def overrides_for(recipe: str) -> tuple[str, ...]:
    """What a recipe needs to run here: its folders replaced by random images of its size."""
    from xdomain.config import load_config
    from xdomain.data.paired import is_paired_spec

    cfg = load_config(recipe)
    if any(":" in s for s in cfg.data.sources):  # CelebA / RaFD: layouts of random images
        sources = [
            _random_labelled(s, cfg.data.image_size) if ":" in s else s for s in cfg.data.sources
        ]
        return (
            f"data.sources=[{', '.join(sources)}]",
            "data.on_bad_file=skip",  # the attribute lines without an image
            "data.num_workers=0",
            f"data.batch_size={min(cfg.data.batch_size, 8)}",
        )
    if cfg.data.paired and not is_paired_spec(cfg.data.paired):  # a folder of aligned pairs
        return (
            f"data.paired={_random_aligned(cfg.data.image_size)}",
            "data.num_workers=0",
            f"data.batch_size={min(cfg.data.batch_size, 8)}",
        )
    if not cfg.data.root:
        return ()
    return (
        f"data.root={_random_root(cfg.data.image_size, cfg.data.channels)}",
        "data.num_workers=0",
        f"data.batch_size={min(cfg.data.batch_size, 8)}",
    )


def generator_256(precision: str, reps: int = 5) -> float:
    """Seconds to translate one 256x256 RGB image with a 9-block ResNet generator (ngf 64)."""
    import torch

    from xdomain.nn import ResnetGenerator

    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=64, n_blocks=9).eval()
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.no_grad(), ctx:
        net(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            net(x)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    import torch

    from xdomain.config import load_config, recipe_names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--recipes", nargs="*", default=None)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2 = this CPU)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    # --recipes re-measures those rows and keeps the others (each row names its commit)
    old = json.loads((OUT / "speed.json").read_text()) if args.recipes else {}
    keep = [r for r in old.get("rows", []) if r["recipe"] not in args.recipes] if old else []
    for r in keep:
        r.setdefault("commit", old.get("commit"))
    rows = []
    load_before = os.getloadavg()[0]  # other work on the machine slows every number below
    for recipe in args.recipes or recipe_names():
        row = {"recipe": recipe, "method": load_config(recipe).method, "commit": commit()}
        row["steps"] = args.steps  # timed steps per repeat (paper-scale rows may use fewer)
        extra = overrides_for(recipe)
        if extra:  # a folder recipe: random images, batch capped at 8 (it/s at that batch)
            row["batch_size"] = int(extra[-1].split("=")[1])
        for precision in ("fp32", "bf16"):
            row[precision] = measure(recipe, precision, args.steps, overrides=extra)
        row["bf16_speedup"] = row["bf16"] / row["fp32"]
        print(f"{recipe:<28} fp32 {row['fp32']:8.2f} it/s   bf16 {row['bf16']:8.2f} it/s")
        rows.append(row)
    g256 = {p: generator_256(p) for p in ("fp32", "bf16")}
    print(
        f"ResNet-9 generator, one 256x256 image: fp32 {g256['fp32']:.3f} s,"
        f" bf16 {g256['bf16']:.3f} s"
    )
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
                "rows": sorted(keep + rows, key=lambda r: r["recipe"]),
                "resnet9_256px_s_per_image": g256,
            },
            indent=1,
        )
    )


def render(results: Path) -> str:
    """RESULTS.md's training-speed table, from results/speed.json ('' before the first run)."""
    d = load(results, "speed.json")
    if not d:
        return ""
    out = [
        "## Training speed (iterations/s, `train_step` only)",
        f"last run at commit {d['commit']} (each row names its own), {d['machine']},"
        f" {d['threads']} thread(s), {d['steps']} timed steps"
        + (f", repeated for at least {d['min_s']:g} s" if "min_s" in d else "")
        + (
            f"; 1-min load average {d['loadavg_1min'][0]:.1f} -> {d['loadavg_1min'][1]:.1f} on"
            f" {d['cpus']} CPUs (above the thread count, other work shared the CPU)"
            if max(d.get("loadavg_1min", [0])) > d["threads"] + 0.5
            else ""
        ),
        "",
        "| recipe | method | fp32 it/s | bf16 it/s | bf16 speed-up | commit |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in d["rows"]:
        batch = f" (random {r['batch_size']}-image batches)" if "batch_size" in r else ""
        out.append(
            f"| {r['recipe']}{batch} | {r['method']} | {r['fp32']:.2f} | {r['bf16']:.2f} |"
            f" {r['bf16_speedup']:.2f}x | {r.get('commit', d['commit'])} |"
        )
    if "resnet9_256px_s_per_image" in d:
        g = d["resnet9_256px_s_per_image"]
        out += [
            "",
            "Translating one 256x256 image with CycleGAN's 9-block generator (ngf 64, the"
            f" published models' size), batch 1: fp32 {g['fp32']:.3f} s, bf16 {g['bf16']:.3f} s.",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
