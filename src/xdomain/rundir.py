"""A run directory belongs to one run: a lock, and the rules for starting, overwriting, resuming.

- One process (rank 0) holds an exclusive `flock` on `<run>/.lock` while it trains; a second
  `xdomain train` on the same directory refuses. The kernel drops the lock when the holder dies,
  so a crashed run never leaves a stale lock behind; the PID in the file is only for the message.
- A fresh run starts only in a missing or empty directory. `--overwrite` removes what xdomain
  writes there (and nothing else) before starting.
- `--resume` continues the checkpoint that `checkpoints/latest` names, with the config stored
  inside that checkpoint (`check_resumable`: only a few keys, such as `train.steps`, may change).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

from xdomain.errors import ConfigError, XDomainError

try:  # POSIX; on other systems runs are not locked (documented in the README)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
# what a run writes at its top level; `--overwrite` removes these and nothing else
ARTEFACTS = (
    "config.yaml",
    "metrics.jsonl",
    "final_metrics.json",
    "report.html",
    "samples",
    "figures",
    "tb",
    "checkpoints",
)


class RunDirError(XDomainError):
    """The run directory cannot be used as asked (busy, not empty, not writable)."""


def _os_problem(out: Path, e: OSError) -> RunDirError:
    if e.errno == errno.EROFS:
        why = "it is on a read-only file system"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        why = "it (or a parent) is a file, not a folder"
    elif e.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif e.errno == errno.ENOSPC:
        why = "the disk is full"
    else:
        why = e.strerror or str(e)
    return RunDirError(f"cannot use --out '{out}' as a run directory: {why}; choose another --out")


class RunLock:
    """An exclusive, non-blocking lock on `<run>/.lock`, released by `release()` or on exit."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _os_problem(self.path.parent, e) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise RunDirError(
                    f"'{self.path.parent}' is in use by another xdomain process (pid {pid});"
                    " one process per run directory: wait for it, stop it, or choose another"
                    " --out"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            if fcntl is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.release()


def open_run_dir(out: Path) -> RunLock:
    """Create `out` if needed, check it is a writable folder and lock it."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out '{out}' is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_problem(out, e) from None
    lock = RunLock(out)
    lock.acquire()
    return lock


def check_fresh(out: Path, *, overwrite: bool, resumable: bool = True) -> None:
    """A fresh run needs an empty folder; `overwrite` first removes a previous run's artefacts.
    `resumable`: the command has `--resume` (train; not convert), so the hint may name it."""
    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    if not present:
        return
    if not overwrite:
        shown = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
        is_run = "checkpoints" in present or "config.yaml" in present
        if is_run and resumable:
            hint = "pass --resume to continue the run in it, --overwrite to replace it"
        elif is_run:
            hint = "pass --overwrite to replace the run in it"
        else:
            hint = "pass --overwrite to write a run into it anyway"
        raise RunDirError(f"--out '{out}' is not empty ({shown}); {hint}, or choose another --out")
    for name in ARTEFACTS:
        p = out / name
        try:
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
        except OSError as e:
            raise _os_problem(out, e) from None


# --------------------------------------------------------------------------- resuming a run

# keys a resumed run may change: extending a run, or watching it differently
RESUMABLE_CHANGES = {"train.steps", "train.progress", "train.log_every"}


def config_diff(saved: Any, now: Any, prefix: str = "") -> str | None:
    """The first dotted key whose value differs (ignoring RESUMABLE_CHANGES), else None.

    Two configs that differ as a whole (one missing, not a mapping) differ at "the whole config":
    an empty key must never read as "no difference".
    """
    if not prefix and not (isinstance(saved, dict) and isinstance(now, dict)):
        return "the whole config"
    if isinstance(saved, dict) and isinstance(now, dict):
        for k in sorted(set(saved) | set(now)):
            d = config_diff(saved.get(k), now.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    key = prefix[:-1]
    if key in RESUMABLE_CHANGES:
        return None
    same = (list(saved) if isinstance(saved, tuple) else saved) == (
        list(now) if isinstance(now, tuple) else now
    )
    return None if same else key


def check_resumable(
    ckpt: Path, state: dict[str, Any], method: str, config: dict, steps: int
) -> None:
    """A resumed run is the stored one continued: the same method and config (only the
    RESUMABLE_CHANGES may differ), and `train.steps` not below the checkpoint's step."""
    diff = "method" if state["method"] != method else config_diff(state["config"], config)
    if diff:
        raise ConfigError(
            f"--resume: the config differs from the one stored in '{ckpt}' at '{diff}';"
            " resume with the same recipe and overrides (only train.steps may grow),"
            " or start a new --out directory"
        )
    if steps < state["step"]:
        raise ConfigError(
            f"--resume: train.steps={steps} is below the step of '{ckpt}' ({state['step']});"
            f" give train.steps >= {state['step']}"
        )
