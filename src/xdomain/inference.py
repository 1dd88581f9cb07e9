"""Translate image files on disk: the `xdomain translate` command, as a function.

Rules (the README's "Translate" section):
- Inputs are files, folders (searched recursively) and globs. The same file reached twice is
  translated once. Folders that hold a translate output (the marker file `.xdomain-translate`)
  are never read as input, so an output folder inside an input folder is safe to rerun.
- `--out` may not be an input folder or contain an input: that would overwrite the inputs.
- Outputs mirror the inputs' relative paths under `--out`, from the inputs' common folder
  (`in/x/a.jpg` -> `out/x/a.png`). With `--format png`, a name that two inputs would share
  (`a.jpg` and `a.png` in one folder) keeps its old suffix (`a.jpg.png`): one output per input.
- Every output is written atomically; the count printed is the count written.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from glob import glob, has_magic
from pathlib import Path
from typing import Any

from xdomain.data.images import IMAGE_EXTENSIONS
from xdomain.errors import DataError, XDomainError

MARKER = ".xdomain-translate"


@dataclass
class Job:
    """One input file and where its translation goes (relative to the output folder)."""

    src: Path
    rel: Path


@dataclass
class Result:
    written: list[Job] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _walk(folder: Path) -> list[Path]:
    """Image files under `folder`, sorted, skipping folders that hold a translate output."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        if MARKER in filenames:
            dirnames[:] = []
            continue
        dirnames.sort()
        images = [f for f in filenames if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        found += [Path(dirpath, f) for f in images]
    return sorted(found)


def _in_output(path: Path) -> bool:
    return any((p / MARKER).is_file() for p in path.parents)


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """Files, folders and globs -> sorted, de-duplicated (file, the folder it was found from)."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += [(f, p) for f in _walk(p)]
        elif p.is_file():
            found.append((p, p.parent))
        elif has_magic(item):  # a glob the shell did not expand (quoted, or no match)
            parts = Path(item).parts
            fixed = next(i for i, part in enumerate(parts) if has_magic(part))
            root = Path(*parts[:fixed]) if fixed else Path(".")  # `in/**/*.png` -> `in`
            matches = sorted(Path(m) for m in glob(item, recursive=True))
            if not matches:
                raise XDomainError(f"input '{item}' is not a file, folder or matching glob")
            found += [(m, root) for m in matches if m.is_file() and not _in_output(m)]
        else:
            raise XDomainError(f"input '{item}' is not a file, folder or matching glob")
    seen: set[str] = set()
    unique = []
    for f, root in found:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append((f, root))
    if not unique:
        raise XDomainError(
            f"no images found in {' '.join(inputs)[:200]} (image suffixes:"
            f" {' '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return unique


def check_out(out: Path, inputs: list[str]) -> None:
    """Refuse an output folder that is an input folder or contains an input."""
    if out.exists() and not out.is_dir():
        raise XDomainError(f"--out '{out}' is a file; give a folder for the translations")
    real_out = os.path.realpath(out)
    for item in inputs:
        p = Path(item)
        root = p if p.is_dir() else p.parent if p.is_file() else None
        if root is None:
            continue
        real = os.path.realpath(root)
        if real == real_out or real.startswith(real_out.rstrip(os.sep) + os.sep):
            raise XDomainError(
                f"--out '{out}' is or contains the input '{item}': the translations would"
                " overwrite or mix with the inputs; choose an --out outside the inputs"
            )


def plan(files: list[tuple[Path, Path]], fmt: str) -> list[Job]:
    """Output paths mirroring the inputs' relative paths; one distinct output per input.

    With `png`, `a.jpg` becomes `a.png`, unless another input claims that name: then the input
    already called `a.png` keeps it and the others keep their suffix (`a.jpg.png`). The rule
    depends on the set of inputs, never on their order.
    """
    common = os.path.commonpath([os.path.abspath(r) for _, r in files])
    rels = [Path(os.path.relpath(os.path.abspath(src), common)) for src, _ in files]
    wanted = [rel if fmt == "same" else rel.with_suffix(".png") for rel in rels]
    claims: dict[Path, int] = {}
    for w in wanted:
        claims[w] = claims.get(w, 0) + 1
    jobs: list[Job] = []
    taken: set[Path] = set()
    for (src, _), rel, w in zip(files, rels, wanted, strict=True):
        out = w if claims[w] == 1 or rel == w else Path(f"{rel}.png")
        n = 2
        while out in taken:  # only for contrived names (`a.jpg.png` beside `a.jpg`, `a.png`)
            out, n = rel.with_name(f"{rel.name}-{n}.png"), n + 1
        taken.add(out)
        jobs.append(Job(src, out))
    return jobs


def translate_files(
    method: Any,
    jobs: list[Job],
    out: Path,
    *,
    batch_size: int,
    max_pixels: int,
    on_bad_file: str = "error",
    preprocess: str = "crop",
    output_size: str = "model",
    translate_kwargs: dict[str, Any] | None = None,
    per_item_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Result:
    """Translate every job's file; write `out/<rel>`; -> what was written and what skipped.

    `per_item_kwargs`: translate arguments with one entry per job (BicycleGAN's codes, one set
    per input: a (len(jobs), K, nz) tensor), sliced to the inputs of each forward pass, so an
    input gets its codes whatever the batch size and whichever files are skipped."""
    import torch
    from tqdm.auto import tqdm

    from xdomain.data import read_image
    from xdomain.data.inputs import pil_to_tensor, tensor_to_pil
    from xdomain.io import atomic_write

    if method.spec.kind != "image":
        raise XDomainError(
            f"this checkpoint is a {method.spec.dims}-D point method ({type(method).__name__}"
            " toy); it translates point tensors through the Python API, not image files"
        )
    if preprocess == "none" and not method.any_size:
        raise XDomainError(
            f"--preprocess none keeps each image's own size, but {type(method).__name__} was"
            f" built for {method.spec.image_size}x{method.spec.image_size} inputs; use crop,"
            " resize or pad"
        )
    if preprocess == "none":  # images of different sizes do not stack: one per forward pass
        batch_size = 1
    # K outputs per input (samples, targets, morph steps): fewer inputs per forward pass, so
    # one pass holds about `batch_size` outputs
    first = {k: v[:1] for k, v in (per_item_kwargs or {}).items()}
    per_input = method.outputs_per_input(**(translate_kwargs or {}), **first)
    batch_size = max(1, batch_size // max(1, per_input))
    check_destinations(out, jobs, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("xdomain translate output: never read back as input\n")
    result = Result()
    bar = tqdm(total=len(jobs), desc="translate", unit="img", disable=not progress, delay=1.0)
    for i in range(0, len(jobs), batch_size):
        chunk, images, kept = [], [], []
        for j, job in enumerate(jobs[i : i + batch_size], start=i):
            try:
                images.append(read_image(job.src, max_pixels=max_pixels))
                chunk.append(job)
                kept.append(j)
            except DataError as e:
                if on_bad_file != "skip":
                    raise DataError(
                        str(e)
                        .replace("data.on_bad_file=skip", "--on-bad-file skip")
                        .replace("data.max_pixels", "--max-pixels")
                    ) from None
                result.skipped.append((job.src, str(e)))
        bar.update(len(jobs[i : i + batch_size]) - len(chunk))
        if not chunk:
            continue
        x = torch.stack([pil_to_tensor(im, method.spec, preprocess) for im in images])
        sliced = {k: v[kept] for k, v in (per_item_kwargs or {}).items()}
        y = method.translate(x, **(translate_kwargs or {}), **sliced)
        for job, im, t in zip(chunk, images, y, strict=True):
            if output_size == "input" and preprocess != "none":
                pil = _at_input_size(t, im.size, preprocess, max_pixels, job.src)
            else:
                pil = tensor_to_pil(t)
            dest = out / job.rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fmt = "PNG" if dest.suffix.lower() == ".png" else None
            atomic_write(dest, lambda tmp, pil=pil, fmt=fmt, dest=dest: _save(pil, tmp, dest, fmt))
            result.written.append(job)
            bar.update(1)
    bar.close()
    return result


def check_destinations(out: Path, jobs: list[Job], *, overwrite: bool, html: bool = False) -> None:
    """Before anything is written: no output may land in a run's own files, and in a folder
    that is not an earlier translate output (no marker) an existing file is replaced only with
    `overwrite`; with `html`, `index.html` counts as an output."""
    from xdomain.outputs import check_output_dir, run_owner

    check_output_dir(out, option="--out")
    ours = (out / MARKER).is_file()
    for rel in [*(j.rel for j in jobs), *([Path("index.html")] if html else [])]:
        dest = out / rel
        owner = run_owner(dest)
        if owner is not None:
            raise XDomainError(
                f"--out: the output '{dest}' would land in {owner}; choose an --out outside it"
            )
        if dest.exists() and not ours and not overwrite:
            raise XDomainError(
                f"--out '{out}' already holds '{rel}' and is not an earlier translate output;"
                " add --overwrite to replace such files, or choose an empty --out"
            )


def _at_input_size(t: Any, size: tuple[int, int], preprocess: str, max_pixels: int, src: Path):
    """`--output-size input`: each tile of an output ((C, H, W), or (K, C, H, W) side by side)
    mapped back to the input's geometry; a strip larger than `max_pixels` is refused."""
    from PIL import Image

    from xdomain.data.images import unfit_square
    from xdomain.data.inputs import tensor_to_pil

    tiles = list(t) if t.dim() == 4 else [t]
    w, h = size
    tw, th = (min(w, h),) * 2 if preprocess == "crop" else (w, h)
    if len(tiles) * tw * th > max_pixels:
        raise XDomainError(
            f"--output-size input: the strip for '{src}' would be {len(tiles)} tiles of"
            f" {tw}x{th} px, over --max-pixels {max_pixels}; ask for fewer outputs per input"
            " or use --output-size model"
        )
    pils = [unfit_square(tensor_to_pil(tile), size, preprocess) for tile in tiles]
    if len(pils) == 1:
        return pils[0]
    strip = Image.new(pils[0].mode, (tw * len(pils), th))
    for i, p in enumerate(pils):
        strip.paste(p, (i * tw, 0))
    return strip


def _save(pil: Any, tmp: Path, dest: Path, fmt: str | None) -> None:
    # the temporary name has no image suffix: give PIL the format of the final name
    from PIL import Image

    ext = dest.suffix.lower()
    pil.save(tmp, format=fmt or Image.registered_extensions().get(ext, "PNG"))


def write_html(out: Path, result: Result) -> Path:
    """`out/index.html`: each input beside its translation, like the official results pages."""
    rows = []
    for job in result.written:
        src = html.escape(os.path.relpath(os.path.abspath(job.src), os.path.abspath(out)))
        dst = html.escape(job.rel.as_posix())
        rows.append(
            f'<tr><td>{html.escape(str(job.src))}</td><td><img src="{src}"></td>'
            f'<td><img src="{dst}"></td></tr>'
        )
    skipped = "".join(
        f"<li>{html.escape(str(p))}: {html.escape(why)}</li>" for p, why in result.skipped
    )
    page = (
        "<!doctype html><meta charset='utf-8'><title>xdomain translate</title>"
        "<style>img{height:128px;image-rendering:pixelated}td{padding:4px;font:12px sans-serif}"
        "</style>"
        f"<h1>{len(result.written)} translation(s)</h1>"
        "<table><tr><th>file</th><th>input</th><th>output</th></tr>"
        + "".join(rows)
        + "</table>"
        + (f"<h2>skipped</h2><ul>{skipped}</ul>" if skipped else "")
    )
    path = out / "index.html"
    path.write_text(page)
    return path
