"""Do the methods still train to the same weights? A guard for refactors (issue 24).

Trains one short run of every method (`train.steps=20`, fixed seed, each recipe's networks,
small data) in this process, in the Trainer's own loop, and prints the sha256 of its final
state_dict (keys and bytes, sorted by key) and of its optimizers' state. `--save F` writes
them; `--check F` retrains and compares, exit status 1 on any difference. Evaluation is
skipped (it never changes weights), so a run takes seconds.

    python benchmarks/same_weights.py --save benchmarks/results/same_weights.json   # before
    python benchmarks/same_weights.py --check benchmarks/results/same_weights.json  # after
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

QUICK = [
    "train.steps=20",
    "train.ckpt_every=20",
    "train.sample_every=1000",
    "eval.every=1000",
    'eval.select=""',
    "train.progress=false",
    "train.threads=1",
    "train.decay_start=10",
    "seed=0",
]
RUNS: dict[str, list[str]] = {
    "dtn-digits": ["data.n_a=256", "model.f_steps=20", "model.f_adapt_steps=2"],
    "discogan-toy": [],
    "discogan-digits": ["data.n_a=256", "data.n_b=256"],
    "cyclegan-digits": ["data.n_a=256", "data.n_b=256"],
    "ugatit-digits": ["data.n_a=256", "data.n_b=256"],
    "stargan-digits": ["data.n_a=256"],
    "stargan-digits-mask": ["data.n_a=256", "data.n_b=256"],
    "pix2pix-glyphs": ["data.n_a=256"],
    "bicyclegan-glyphs": ["data.n_a=256"],
    "morph-ugatit-digits": ["data.n_a=256", "data.n_b=256"],
}


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].detach().contiguous().cpu()
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.float().numpy().tobytes())
    return h.hexdigest()


def train_one(recipe: str, out: Path) -> dict[str, str]:
    from xdomain.config import load_config
    from xdomain.train import Trainer

    torch.manual_seed(0)
    trainer = Trainer(load_config(recipe, [*QUICK, *RUNS[recipe]]), out)
    trainer.evaluate = lambda: {}  # type: ignore[method-assign]  # scores never move weights
    trainer.fit()
    optim: dict[str, torch.Tensor] = {}
    for name, opt in trainer.method.optimizers().items():
        for i, (_, st) in enumerate(sorted(opt.state_dict()["state"].items())):
            for key, v in st.items():
                if isinstance(v, torch.Tensor):
                    optim[f"{name}/{i}/{key}"] = v
    return {"weights": digest(trainer.method.state_dict()), "optimizers": digest(optim)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--save", type=Path)
    p.add_argument("--check", type=Path)
    p.add_argument("--only", nargs="*", help="recipes to run (default: all)")
    args = p.parse_args()
    torch.set_num_threads(1)
    recipes = args.only or list(RUNS)
    got: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in recipes:
            got[r] = train_one(r, Path(tmp) / r)
            print(
                f"{r:<22} weights {got[r]['weights'][:16]}  optimizers {got[r]['optimizers'][:16]}"
            )
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps({"steps": 20, "runs": got}, indent=1) + "\n")
    if args.check:
        want = json.loads(args.check.read_text())["runs"]
        bad = [r for r in recipes if want.get(r) != got[r]]
        for r in bad:
            print(f"DIFFERENT: {r}: {want.get(r)} != {got[r]}", file=sys.stderr)
        print(f"{len(recipes) - len(bad)} same, {len(bad)} different")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
