"""`xdomain recipes | train | translate | evaluate | data`: one CLI for every method.

Errors in the user's input print one line (`error: ...`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

from xdomain.errors import XDomainError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _cmd_recipes(args: argparse.Namespace) -> int:
    from xdomain.config import read_recipe, recipe_names

    names = recipe_names()
    width = max((len(n) for n in names), default=0)
    for name in names:
        data, _ = read_recipe(name)
        print(f"{name:<{width}}  {data.get('method', '?'):<9} {data.get('description', '')}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from xdomain.config import load_config, to_yaml

    cfg = load_config(args.recipe, args.overrides)
    if args.dry_run:
        print(to_yaml(cfg), end="")
        return 0
    out = Path(args.out or Path("runs") / Path(args.recipe).stem)
    from xdomain.train import train

    final = train(cfg, out, resume=args.resume)
    if final:
        print(_table(final))
        print(f"run directory: {out}")
        print(f"report: {out / 'report.html'}")
    return 0


def _expand_inputs(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            files.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise XDomainError(f"input '{item}' is not a file, folder or matching glob")
            files += [m for m in matches if m.is_file()]
    if not files:
        raise XDomainError(f"no images found in {' '.join(inputs)}")
    return files


def _cmd_translate(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    import xdomain
    from xdomain.data import read_image
    from xdomain.methods.base import pil_to_tensor, tensor_to_pil

    method = xdomain.load(args.checkpoint)
    files = _expand_inputs(args.inputs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names: dict[str, int] = {}
    kwargs = {"target": args.target} if args.target else {}
    for i in tqdm(
        range(0, len(files), args.batch_size),
        desc="translate",
        unit="batch",
        disable=len(files) <= args.batch_size,
    ):
        chunk = files[i : i + args.batch_size]
        x = torch.stack(
            [pil_to_tensor(read_image(f, max_pixels=args.max_pixels), method.spec) for f in chunk]
        )
        y = method.translate(x, **kwargs)
        for f, t in zip(chunk, y, strict=True):
            stem = f.stem
            names[stem] = names.get(stem, 0) + 1
            if names[stem] > 1:  # same file name in two input folders: keep both
                stem = f"{stem}-{names[stem]}"
            tensor_to_pil(t).save(out / f"{stem}.png")
    print(f"translated {len(files)} image(s) -> {out}")
    return 0


def _table(metrics: dict[str, float]) -> str:
    width = max(len(k) for k in metrics)
    return "\n".join(
        f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}"
        for k, v in metrics.items()
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import xdomain
    from xdomain.config import build_config
    from xdomain.datamodule import build_data
    from xdomain.evaluate import evaluate

    method = xdomain.load(args.checkpoint)
    cfg = build_config(method.run_config, "checkpoint config")
    if args.n_test:
        cfg.eval.n_test = args.n_test
    data = build_data(cfg.data, n_val=cfg.eval.n_val if cfg.eval.select else 0)
    metrics = evaluate(method, data, cfg.eval)
    print(_table(metrics))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from xdomain.data import EMBEDDED, load_domain

    if not args.source:
        print("embedded sources: " + ", ".join(EMBEDDED) + ", toy-gmm:<geometry>")
        print(
            "folders: a folder of images per domain, or data.root=DIR with trainA/ trainB/"
            " testA/ testB/"
        )
        return 0
    ds = load_domain(args.source, args.split, on_bad_file=args.on_bad_file)
    print(
        f"{args.source} [{args.split}]: {len(ds)} images, {ds.channels}x{ds.image_size}px,"
        f" {ds.num_classes or 'no'} classes, {len(ds.skipped)} skipped"
    )
    for f in ds.skipped:
        print(f"  skipped: {f}")
    if args.grid:
        import torch

        from xdomain.report import save_grid

        rows = [
            torch.stack([ds[i][0] for i in range(r * 10, min(len(ds), r * 10 + 10))])
            for r in range(min(8, len(ds) // 10))
        ]
        print(f"grid: {save_grid(rows, args.grid)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xdomain", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("recipes", help="list the built-in experiments")
    s.set_defaults(fn=_cmd_recipes)

    s = sub.add_parser("train", help="train a recipe (name or .yaml path)")
    s.add_argument("recipe")
    s.add_argument("overrides", nargs="*", help="key=value, e.g. train.steps=1000")
    s.add_argument("--out", help="run directory (default: runs/<recipe>)")
    s.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    s.add_argument("--resume", action="store_true", help="continue the run in --out")
    s.set_defaults(fn=_cmd_train)

    s = sub.add_parser("translate", help="translate image files, folders or globs")
    s.add_argument("checkpoint", help="run directory or checkpoint directory")
    s.add_argument("inputs", nargs="+")
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--target", help="target domain or label, for methods that take one")
    s.add_argument("--max-pixels", type=int, default=50_000_000)
    s.set_defaults(fn=_cmd_translate)

    s = sub.add_parser("evaluate", help="metrics of a checkpoint on its recipe's held-out data")
    s.add_argument("checkpoint")
    s.add_argument("--json", help="also write the metrics to this JSON file")
    s.add_argument("--n-test", type=int, default=0, help="held-out items (default: the recipe's)")
    s.set_defaults(fn=_cmd_evaluate)

    s = sub.add_parser("data", help="inspect a data source or folder")
    s.add_argument("source", nargs="?")
    s.add_argument("--split", default="train")
    s.add_argument("--on-bad-file", default="error", choices=["error", "skip"])
    s.add_argument("--grid", help="write a PNG grid of the first images here")
    s.set_defaults(fn=_cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `key=value` overrides may stand anywhere after the recipe, also after options like --out
    args, rest = parser.parse_known_args(argv)
    if rest:
        if args.command != "train" or any(r.startswith("-") or "=" not in r for r in rest):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.overrides = [*args.overrides, *rest]
    try:
        return args.fn(args)
    except XDomainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
