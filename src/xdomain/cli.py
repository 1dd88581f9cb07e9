"""`xdomain recipes | train | translate | evaluate | data`: one CLI for every method.

Every error prints one line (`error: ...`) and exits with status 2: the user's mistakes name the
file, the field and the fix; an unexpected exception says it is a bug. `--debug` (or
XDOMAIN_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from xdomain.errors import XDomainError, one_line


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

    final = train(cfg, out, resume=args.resume, overwrite=args.overwrite)
    if final:
        print(_table(final))
        print(f"run directory: {out}")
        print(f"report: {out / 'report.html'}")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    import xdomain
    from xdomain import inference

    out = Path(args.out)
    inference.check_out(out, args.inputs)  # before anything is loaded or written
    jobs = inference.plan(inference.expand_inputs(args.inputs), args.format)
    if args.limit:
        jobs = jobs[: args.limit]
    inference.check_destinations(out, jobs, overwrite=args.overwrite, html=args.html)
    method = xdomain.load(args.checkpoint, device=_device(args.device), ckpt=args.ckpt)
    if method.spec.kind == "image" and not method.converted_from:
        from xdomain.config import build_config

        _check_data(method, build_config(method.run_config, str(method.checkpoint_path)))
    preprocess = args.preprocess or ("none" if method.any_size else "crop")
    shared, per_item = _translate_options(method, args, len(jobs), preprocess)
    result = inference.translate_files(
        method,
        jobs,
        out,
        batch_size=args.batch_size,
        max_pixels=args.max_pixels,
        on_bad_file=args.on_bad_file,
        preprocess=preprocess,
        output_size=args.output_size,
        translate_kwargs=shared,
        per_item_kwargs=per_item,
        overwrite=args.overwrite,
    )
    for path, why in result.skipped:
        print(f"skipped: {path}: {why}", file=sys.stderr)
    print(
        f"translated {len(result.written)} image(s) -> {out}"
        + (f" ({len(result.skipped)} skipped)" if result.skipped else "")
        + f" [checkpoint {method.checkpoint_path}, step {method.checkpoint_step}]"
    )
    if args.html:
        print(f"html: {inference.write_html(out, result)}")
    return 0


def _translate_options(
    method: Any, args: argparse.Namespace, n_inputs: int, preprocess: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The method's own translate flags (`Method.cli_options`) -> its `translate` arguments.
    A flag that another method declares, given for this one, is a one-line error."""
    from xdomain.methods import METHODS
    from xdomain.methods.options import Context

    own = {o.dest for o in method.cli_options}
    for opt in _all_options():
        if opt.dest not in own and opt.given(getattr(args, opt.dest, None)):
            having = sorted(n for n, m in METHODS.items() if opt in m.cli_options)
            mine = ", ".join(o.flag for o in method.cli_options) or "none"
            raise XDomainError(
                f"{opt.flag} is an option of {', '.join(having)}; this checkpoint is"
                f" {type(method).__name__} (its options: {mine})"
            )
    values = {o.dest: getattr(args, o.dest, None) for o in method.cli_options}

    def read_reference(path: str, flag: str) -> Any:
        from xdomain.data import read_image
        from xdomain.data.inputs import pil_to_tensor
        from xdomain.errors import DataError

        try:
            ref = read_image(path, max_pixels=args.max_pixels)
        except DataError as e:  # the reason, with the fix for this option (not data.*)
            reason = str(e).split(": ", 2)[-1].split(" — ")[0]
            raise DataError(
                f"{flag} '{path}': {reason}; give a readable image file (PNG, JPEG ...)"
                + (" or raise --max-pixels" if "pixels" in reason else "")
            ) from None
        return pil_to_tensor(ref, method.spec, "crop" if preprocess == "none" else preprocess)

    return method.translate_kwargs(values, Context(n_inputs, read_reference))


def _all_options() -> list[Any]:
    """Every method's translate options, each flag once (shared ones such as --reverse)."""
    from xdomain.methods import METHODS

    seen: dict[str, Any] = {}
    for m in METHODS.values():
        for opt in m.cli_options:
            seen.setdefault(opt.flag, opt)
    return list(seen.values())


def _cmd_convert(args: argparse.Namespace) -> int:
    from xdomain.convert.official import convert

    attrs = [a.strip() for a in args.attrs.split(",") if a.strip()] if args.attrs else None
    done = convert(args.family, args.files, args.out, overwrite=args.overwrite, attrs=attrs)
    for role, path in done["roles"].items():
        print(f"{role} <- {path}")
    if done["untrained"]:
        print(
            "note: no file for " + ", ".join(done["untrained"]) + " (kept at their initial"
            " weights; translate refuses a missing generator)"
        )
    print(f"converted -> {args.out} [checkpoint {done['checkpoint']}]")
    print(f"translate with: xdomain translate {args.out} IMAGES --out OUT")
    return 0


def _device(choice: str) -> str:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise XDomainError("--device cuda: no CUDA device is visible; use --device cpu")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def _table(metrics: dict[str, float]) -> str:
    width = max(len(k) for k in metrics)
    return "\n".join(
        f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}"
        for k, v in metrics.items()
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import xdomain
    from xdomain.config import apply_overrides, build_config
    from xdomain.datamodule import build_data
    from xdomain.evaluate import check_labels_fit, check_size_fits, evaluate, n_scored
    from xdomain.outputs import check_output_file

    json_path = Path(args.json) if args.json else None
    if json_path is not None:  # before anything is loaded: never over a run's or a user's file
        check_output_file(
            json_path,
            option="--json",
            overwrite=args.overwrite,
            ours=_is_evaluate_json,
            what="an earlier xdomain evaluate output",
        )

    bad = [o for o in args.overrides if not o.startswith(("data.", "eval."))]
    if bad:
        raise XDomainError(
            f"evaluate: override '{bad[0]}' is not a data.* or eval.* key; the model is the"
            " checkpoint's (e.g. data.a=digits-printed-system, eval.n_test=500)"
        )
    method = xdomain.load(args.checkpoint, device=_device(args.device), ckpt=args.ckpt)
    where = f"{method.checkpoint_path / 'state.json'}"
    cfg = build_config(apply_overrides(dict(method.run_config), args.overrides), where)
    if args.n_test:
        cfg.eval.n_test = args.n_test
    _check_converted_data(method, cfg, args.checkpoint)
    check_size_fits(method, cfg.data)
    # the data first: a bad data.* override is its one error, not a warning and then an error
    data = build_data(cfg.data, n_val=cfg.eval.n_val if cfg.eval.select else 0)
    check_labels_fit(method, data)
    data_now = _check_data(method, cfg, strict=args.strict)
    n = n_scored(data, cfg.eval)
    if args.n_test and args.n_test > n:
        raise XDomainError(
            f"--n-test {args.n_test} is larger than the test split ({n} items); give at most {n}"
        )
    rule = "checkpoint directory" if _is_ckpt_dir(args.checkpoint) else f"--ckpt {args.ckpt}"
    print(f"checkpoint: {method.checkpoint_path} (step {method.checkpoint_step}, by {rule})")
    print(f"data: {data_now['id']} ({'; '.join(data_now['sources'].values())}); {n} items scored")
    metrics = evaluate(method, data, cfg.eval)
    print(_table(metrics))
    if "kid_judge" in metrics:
        print("(kid_judge is raw KID, not x1000; kid_judge_std: its spread over 50 subsets)")
    if json_path is not None:
        from xdomain.io import atomic_write_text

        report = {
            "written_by": "xdomain evaluate",
            "metrics": metrics,
            "checkpoint": str(method.checkpoint_path),
            "step": method.checkpoint_step,
            "chosen_by": rule,
            "data_fingerprint": data_now["id"],
            "data_sources": data_now["sources"],
            "trained_data_fingerprint": (method.data_fingerprint or {}).get("id"),
            "n_scored": n,
            "kid_scale": "raw (not x1000)",
        }
        atomic_write_text(json_path, json.dumps(report, indent=1))
    return 0


def _is_evaluate_json(path: Path) -> bool:
    """An earlier `evaluate --json` output (which evaluate may replace without --overwrite)."""
    try:
        if path.stat().st_size > 10_000_000:
            return False
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    return doc.get("written_by") == "xdomain evaluate" or {
        "metrics",
        "checkpoint",
        "chosen_by",
        "kid_scale",
    } <= set(doc)


CONVERTED = "converted:no-data"
DATA_KEYS = {  # the data.* a converted run needs, by the method's layout
    "unpaired": "data.a=DIR_A data.b=DIR_B (or data.root=DIR with trainA/ trainB/ testA/ testB/)",
    "labelled": "data.sources=[celeba:DIR] (the data sets the model was trained on, in order)",
    "paired": "data.paired=DIR (aligned AB images in train/ and test/)",
}


def _check_converted_data(method: Any, cfg: Any, run: str) -> None:
    """A converted official checkpoint has no data of its own: say which data.* to give."""
    layout = getattr(method, "layout", "unpaired")
    d = cfg.data
    missing = {
        "unpaired": not d.root and CONVERTED in (d.a, d.b),
        "labelled": not d.sources,
        "paired": not d.paired,
    }[layout]
    if method.converted_from and missing:
        raise XDomainError(
            f"'{run}' was converted from official weights and has no data to score on; give"
            f" them as overrides: xdomain evaluate {run} {DATA_KEYS[layout]}"
        )


def _is_ckpt_dir(path: str) -> bool:
    return (Path(path) / "state.json").is_file()


def _check_data(method: Any, cfg: Any, *, strict: bool = False) -> dict[str, Any]:
    """Warn (or refuse, `strict`) when this machine's data differ from the checkpoint's."""
    from xdomain.fingerprint import compare, data_fingerprint

    now = data_fingerprint(cfg.data)
    changed = compare(method.data_fingerprint, now)
    if changed and strict:
        raise XDomainError(f"--strict: {changed}")
    if changed:
        print(f"warning: {changed}; results may not compare with the run's", file=sys.stderr)
    return now


def _cmd_data(args: argparse.Namespace) -> int:
    from xdomain.data import EMBEDDED
    from xdomain.data.folders import UNPAIRED

    if not args.source:
        print(
            "embedded sources: " + ", ".join(EMBEDDED) + ", fashion:<class>[,<class>...],"
            " toy-gmm:<geometry>"
        )
        print(
            "folders: a folder of images per domain, or data.root=DIR with trainA/ trainB/"
            " testA/ testB/"
        )
        print(
            "paired (pix2pix, BicycleGAN): glyphs2digits, edges2fashion[:<classes>], or a folder"
            " of aligned AB images in train/ and test/ (or val/) with --paired"
        )
        return 0
    if args.source.startswith("toy-gmm:"):
        from xdomain.data.toy import load_toy

        toy = load_toy(args.source, args.split)
        print(
            f"{args.source} [{args.split}]: {len(toy)} points in 2-D, {toy.num_classes} modes,"
            f" sigma {toy.sigma:g}"
        )
        return 0
    from xdomain.data.labelled import PREFIXES
    from xdomain.data.paired import is_paired_spec

    if args.source.startswith(PREFIXES) or args.source == "digits-styled":
        _describe_labelled(args.source, args.split, args)
        return 0
    if args.paired or is_paired_spec(args.source):
        _describe_paired(args.source, args.split, args)
        return 0
    root = Path(args.source)
    if root.is_dir() and all((root / u).is_dir() for u in UNPAIRED):
        # an unpaired root: each of its four folders is its own domain/split
        for name in UNPAIRED:
            if name.startswith(args.split):
                _describe_domain(str(root / name), name, args, grid_suffix=f"-{name}")
        return 0
    _describe_domain(args.source, args.split, args)
    return 0


def _describe_paired(spec: str, split: str, args: argparse.Namespace) -> None:
    """A paired set (`data.paired`): its size, and with --grid rows of a over rows of b."""
    from xdomain.data.paired import load_paired

    kw = {"image_size": 32, "channels": 3, "seed": 0, "max_pixels": 50_000_000}
    pairs = load_paired(spec, split, on_bad_file=args.on_bad_file, augment=False, n=None, **kw)
    print(f"{spec} [{split}]: {len(pairs)} pairs ({pairs.a.name} -> {pairs.b.name}), 3x32px")
    if args.grid and len(pairs):
        import torch

        from xdomain.grid import save_grid

        rows = []
        for r in range(0, min(len(pairs), 40), 10):  # up to 4 row pairs of 10: a, then its b
            items = [pairs[i] for i in range(r, min(len(pairs), r + 10))]
            rows += [torch.stack([it[0] for it in items]), torch.stack([it[2] for it in items])]
        print(f"grid: {save_grid(rows, _grid_path(args, spec))}")


def _describe_labelled(spec: str, split: str, args: argparse.Namespace) -> None:
    """A labelled data set (`data.sources`): its size and label schema; --grid its first images."""
    from xdomain.data.sources import load_labelled
    from xdomain.sections import DataConfig

    d = DataConfig()
    kw = {"image_size": d.image_size, "channels": d.channels, "seed": 0, "n": None}
    kw |= {"on_bad_file": args.on_bad_file, "max_pixels": d.max_pixels, "augment": False}
    ds = load_labelled(spec, split, celeba_attrs=list(d.celeba_attrs), **kw)
    print(
        f"{spec} [{split}]: {len(ds)} images, {d.channels}x{d.image_size}px; labels"
        f" {ds.schema.dataset}: {ds.schema.describe()}"
    )
    if args.grid and len(ds):
        import torch

        from xdomain.grid import save_grid

        n = min(len(ds), 80)
        x, _ = ds.tensors()
        rows = [x[r : min(n, r + 10)] for r in range(0, n, 10)]
        print(f"grid: {save_grid([torch.as_tensor(r) for r in rows], _grid_path(args, spec))}")


def _grid_path(args: argparse.Namespace, source: str, suffix: str = "") -> Path:
    """`--grid` (with a per-domain suffix): never over an input, a run's file or, without
    --overwrite, a file that is not an earlier grid; never inside the data folder itself (it
    would be read as data next time)."""
    from xdomain.grid import is_grid
    from xdomain.outputs import check_output_file

    grid = Path(args.grid)
    grid = grid.with_name(f"{grid.stem}{suffix}{grid.suffix or '.png'}")
    folder = Path(source.split(":", 1)[1] if source.startswith(("folders:", "celeba:")) else source)
    if folder.is_dir():
        real, inside = os.path.realpath(grid), os.path.realpath(folder).rstrip(os.sep) + os.sep
        if real.startswith(inside):
            raise XDomainError(
                f"--grid '{grid}' is inside the data folder '{folder}', where it would be read"
                " as data; write it elsewhere"
            )
    return check_output_file(
        grid, option="--grid", overwrite=args.overwrite, ours=is_grid, what="an earlier grid"
    )


def _describe_domain(
    source: str, split: str, args: argparse.Namespace, grid_suffix: str = ""
) -> None:
    from xdomain.data import load_domain

    ds = load_domain(source, split, on_bad_file=args.on_bad_file)
    print(
        f"{source} [{split}]: {len(ds)} images, {ds.channels}x{ds.image_size}px,"
        f" {ds.num_classes or 'no'} classes, {len(ds.skipped)} skipped"
    )
    for f in ds.skipped:
        print(f"  skipped: {f}")
    if args.grid and len(ds):
        import torch

        from xdomain.grid import save_grid

        n = min(len(ds), 80)  # up to 8 rows of 10; a last, shorter row for small folders
        rows = [torch.stack([ds[i][0] for i in range(r, min(n, r + 10))]) for r in range(0, n, 10)]
        print(f"grid: {save_grid(rows, _grid_path(args, source, grid_suffix))}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _batch_size(text: str) -> int:
    from xdomain.methods.options import whole

    why = "at most 1024 images per forward pass (each pass decodes and holds all of its images)"
    return whole(text, 1, 1024, why)


def _max_pixels(text: str) -> int:
    from xdomain.methods.options import whole

    why = (
        f"over {MAX_DECODE_PIXELS} (a decoded image of that many RGB pixels takes 1.5 GB);"
        " shrink such images first"
    )
    return whole(text, 1, MAX_DECODE_PIXELS, why)


MAX_DECODE_PIXELS = 500_000_000


CKPT_HELP = "which checkpoint of a run directory: latest (default), best or step-N"


def build_parser() -> argparse.ArgumentParser:
    from xdomain.data.images import PREPROCESS
    from xdomain.version import __version__

    p = argparse.ArgumentParser(prog="xdomain", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"xdomain {__version__}")
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also: XDOMAIN_DEBUG=1), for bug reports",
    )
    sub = p.add_subparsers(dest="command", required=True)
    # --debug also after the command (`xdomain train --debug ...`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="as above")

    s = sub.add_parser("recipes", parents=[common], help="list the built-in experiments")
    s.set_defaults(fn=_cmd_recipes)

    s = sub.add_parser(
        "train", parents=[common], help="train a recipe (built-in name, or a path to a .yaml file)"
    )
    s.add_argument("recipe", help="a built-in recipe name (xdomain recipes) or a .yaml path")
    s.add_argument("overrides", nargs="*", help="key=value, e.g. train.steps=1000")
    s.add_argument("--out", help="run directory (default: runs/<recipe>)")
    s.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    s.add_argument("--resume", action="store_true", help="continue the run in --out")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in a non-empty --out, deleting the previous run's files there",
    )
    s.set_defaults(fn=_cmd_train)

    s = sub.add_parser(
        "translate", parents=[common], help="translate image files, folders or globs"
    )
    s.add_argument("checkpoint", help="run directory or checkpoint directory")
    s.add_argument("inputs", nargs="+", help="image files, folders (recursive) or globs")
    s.add_argument(
        "--out", required=True, help="output folder (mirrors the inputs' relative paths)"
    )
    s.add_argument("--ckpt", default="latest", help=CKPT_HELP)
    s.add_argument(
        "--batch-size",
        type=_batch_size,
        default=64,
        help="images per forward pass (at most 1024: all of them are decoded and held at once)",
    )
    s.add_argument(
        "--max-pixels",
        type=_max_pixels,
        default=50_000_000,
        help="refuse larger images before decoding them (decompression bombs)",
    )
    s.add_argument(
        "--on-bad-file",
        default="error",
        choices=["error", "skip"],
        help="a corrupt or unreadable input stops the run (error) or is listed and skipped",
    )
    s.add_argument(
        "--preprocess",
        default=None,
        choices=[*PREPROCESS, "none"],
        help="bring an input to the model's square size: crop (short side + centre crop, as in"
        " training), resize (whole image, aspect not kept) or pad (long side + border colour);"
        " none keeps each image's size (fully convolutional generators such as CycleGAN's; their"
        " default). Default for the others: crop",
    )
    from xdomain.methods import METHODS

    for opt in _all_options():  # each method's own options, declared once in its file
        opt.add_to(s, ", ".join(sorted(n for n, m in METHODS.items() if opt in m.cli_options)))
    s.add_argument(
        "--output-size",
        default="model",
        choices=["model", "input"],
        help="outputs at the model's size, or scaled back to the input's geometry",
    )
    s.add_argument(
        "--format",
        default="png",
        choices=["png", "same"],
        help="write PNG (lossless, default) or the input's own format",
    )
    s.add_argument("--limit", type=_positive_int, help="translate only the first N inputs")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument(
        "--html", action="store_true", help="also write OUT/index.html: inputs beside outputs"
    )
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in an --out that is not an earlier translate output (a run's own"
        " files are never replaced)",
    )
    s.set_defaults(fn=_cmd_translate)

    s = sub.add_parser(
        "evaluate", parents=[common], help="metrics of a checkpoint on its recipe's held-out data"
    )
    s.add_argument("checkpoint", help="run directory or checkpoint directory")
    s.add_argument(
        "overrides",
        nargs="*",
        help="data.*/eval.* key=value: score on other data, e.g. data.a=digits-printed-system"
        " (every font on this machine, style pairs included)",
    )
    s.add_argument("--ckpt", default="latest", help=CKPT_HELP)
    s.add_argument("--json", help="also write the metrics to this JSON file")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --json file that is not an earlier evaluate output (a run's"
        " own files are never replaced)",
    )
    s.add_argument(
        "--n-test", type=_positive_int, help="held-out items to score (default: the recipe's)"
    )
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument(
        "--strict",
        action="store_true",
        help="refuse when this machine's data differ from those the checkpoint was trained on",
    )
    s.set_defaults(fn=_cmd_evaluate)

    from xdomain.convert import registry  # the names and help only: no torch

    s = sub.add_parser(
        "convert",
        parents=[common],
        help="turn published official checkpoints into an xdomain run (--from "
        + "|".join(registry.CONVERTERS)
        + ")",
    )
    s.add_argument(
        "--from",
        dest="family",
        required=True,
        choices=list(registry.CONVERTERS),
        help=registry.help_text(),
    )
    s.add_argument("--attrs", help=registry.attrs_help())
    s.add_argument(
        "files",
        nargs="+",
        help="official files: one generator (e.g. horse2zebra.pth) or the G/D files of a run"
        " (latest_net_G_A.pth ..., model_gen_A-5 ...); roles come from the file names",
    )
    s.add_argument("--out", required=True, help="the xdomain run directory to write")
    s.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    s.set_defaults(fn=_cmd_convert)

    s = sub.add_parser("data", parents=[common], help="inspect a data source or folder")
    s.add_argument("source", nargs="?", help="an embedded source name or a folder of images")
    s.add_argument(
        "--split", default="train", choices=["train", "test"], help="which split to inspect"
    )
    s.add_argument(
        "--on-bad-file",
        default="error",
        choices=["error", "skip"],
        help="stop at a bad image (error) or list and skip it",
    )
    s.add_argument("--grid", help="write a PNG grid of the first images here")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --grid file that is not an earlier grid",
    )
    s.add_argument(
        "--paired",
        action="store_true",
        help="read the folder as paired data (aligned AB images, or trainA/ trainB/ files paired"
        " by name); the built-in paired sets (glyphs2digits, edges2fashion) need no flag",
    )
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
    debug = args.debug or os.environ.get("XDOMAIN_DEBUG", "") not in ("", "0")
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2


def _one_line(e: Exception) -> str:
    """An exception as the one line the user sees (cut: a message never floods the terminal)."""
    if isinstance(e, XDomainError):
        text = str(e)
    elif isinstance(e, OSError):
        where = f"'{e.filename}': " if e.filename else ""
        text = f"{where}{e.strerror or e}"
    else:  # a bug: say so, and how to report it
        text = (
            f"internal error ({type(e).__name__}: {e}); this is a bug in xdomain: rerun with"
            " --debug and report the traceback"
        )
    return one_line(text)


if __name__ == "__main__":
    sys.exit(main())
