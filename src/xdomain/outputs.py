"""Where a command may write: never over a run's own files or over its inputs.

Every command that writes to a path the user gives (`evaluate --json`, `translate --out`,
`convert --out`, `data --grid`) asks here first, before it loads or computes anything:

- A file that belongs to a run is never written over, `--overwrite` or not: a run directory's
  top-level artefacts (`config.yaml`, `metrics.jsonl`, `checkpoints/`, `samples/` ...: the list
  `--overwrite` of `xdomain train` removes) and everything inside a checkpoint directory (a
  folder holding `state.json`).
- A path that is one of the command's inputs is never written over.
- Any other existing file is replaced only when it is an earlier output of the same command
  (`ours`), or with `--overwrite`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from xdomain.errors import XDomainError
from xdomain.rundir import ARTEFACTS, LOCK_NAME


def _is_run_dir(d: Path) -> bool:
    return (d / "config.yaml").is_file() and (d / "checkpoints").is_dir()


def run_owner(path: str | Path) -> str | None:
    """What run `path` belongs to ("the checkpoint X", "the run X (its config.yaml)"), or None.

    `path` need not exist: a new file inside `checkpoints/` still belongs to the run.
    """
    p = Path(os.path.abspath(path))
    for d in (p, *p.parents):
        if d != p and (d / "state.json").is_file():
            return f"the checkpoint '{d}'"
    for d in p.parents:
        if _is_run_dir(d):
            top = p.relative_to(d).parts[0]
            if top in (*ARTEFACTS, LOCK_NAME):
                return f"the run '{d}' (its {top})"
            return None
    return None


def is_run_or_checkpoint_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (_is_run_dir(p) or (p / "state.json").is_file())


def check_output_file(
    path: str | Path,
    *,
    option: str,
    overwrite: bool,
    ours: Callable[[Path], bool] | None = None,
    inputs: Iterable[str | Path] = (),
    what: str = "an earlier output of this command",
) -> Path:
    """Refuse to write `path` (the value of `option`) over a run's file, an input, or, without
    `overwrite`, any existing file that `ours` does not recognise. -> the path."""
    path = Path(path)
    if path.is_dir():
        raise XDomainError(f"{option} '{path}' is a folder; give a file path")
    owner = run_owner(path)
    if owner is not None:
        raise XDomainError(
            f"{option} '{path}' belongs to {owner}; writing there would damage the run:"
            " choose a path outside the run's files"
        )
    real = os.path.realpath(path)
    for item in inputs:
        if os.path.realpath(item) == real:
            raise XDomainError(
                f"{option} '{path}' is one of this command's inputs; choose another path"
            )
    if path.exists() and not overwrite and not (ours is not None and ours(path)):
        raise XDomainError(
            f"{option} '{path}' exists and is not {what}; add --overwrite to replace it, or"
            " choose another path"
        )
    return path


def check_output_dir(path: str | Path, *, option: str) -> Path:
    """Refuse an output folder that is a run or checkpoint directory, or lies in a run's own
    files (`RUN/checkpoints/x`). A new folder inside a run (`RUN/translations`) is fine."""
    path = Path(path)
    if is_run_or_checkpoint_dir(path):
        raise XDomainError(
            f"{option} '{path}' is a run or checkpoint directory, whose files belong to the run;"
            f" choose another folder (e.g. '{path / 'translations'}')"
        )
    owner = run_owner(path)
    if owner is not None:
        raise XDomainError(
            f"{option} '{path}' lies inside {owner}; choose a folder outside the run's files"
        )
    return path


def check_run_out(path: str | Path) -> Path:
    """A run directory to write (`train --out`, `convert --out`) may be a run (to resume or
    overwrite) but may not lie inside another run's files or a checkpoint directory."""
    path = Path(path)
    if (path / "state.json").is_file():
        raise XDomainError(
            f"--out '{path}' is a checkpoint directory, not a run directory; give the run's"
            " folder (the one holding checkpoints/) or a new folder"
        )
    owner = run_owner(path)
    if owner is not None:
        raise XDomainError(
            f"--out '{path}' lies inside {owner}; choose a folder outside the run's files"
        )
    return path
