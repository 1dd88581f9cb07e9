"""Durable file writes, in one place: atomic replace, content hashes, verified caches.

- `atomic_write(path, write)`: `write` fills a temporary file in the same folder under a unique
  name (two torchrun processes writing the same cache at once never collide); it is fsynced and
  renamed over `path`, so a reader sees the old file or the new one, never half of one. On any
  error (disk full, file size limit) the temporary file is removed before the error propagates.
- `write_verified` / `verified`: a cache file plus a `<name>.sha256` sidecar holding its hash and
  size. A cache that fails the check (truncated, flipped bytes, sidecar missing) is rebuilt by
  its caller instead of crashing every later run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Read once at import (os.umask can only be read by setting it, which would race with threads
# creating files later): temporary files get the permissions an ordinary open() would give.
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (caches and checkpoints can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | Path) -> None:
    """fsync a folder, so that a rename into it survives a power cut (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to fill a unique temporary file, then move it to `path` atomically.

    `write` must write to exactly the path it is given (`np.savez` appends `.npz` to a name:
    give it an open file instead). Returns `path`.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide a shared cache from others
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave a stray temporary file
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """`atomic_write` of `data`."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write` of `text` (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sidecar_path(path: str | Path) -> Path:
    """Where `write_verified` records `path`'s hash and size: `<path>.sha256`."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_verified(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`atomic_write`, then record the file's sha256 and size in its sidecar (also atomic).

    The record is taken from the temporary file before the rename: it describes the bytes this
    writer wrote. Should two writers race, the worst outcome is a file and a sidecar from
    different writers, which `verified` refuses: one more rebuild, never a wrong load.
    """
    path = Path(path)
    record: dict[str, object] = {}

    def write_and_hash(tmp: Path) -> None:
        write(tmp)
        record.update(sha256=sha256_file(tmp), bytes=tmp.stat().st_size)

    atomic_write(path, write_and_hash)
    atomic_write_text(sidecar_path(path), json.dumps(record))
    return path


def verified(path: str | Path) -> bool:
    """True when `path` and its sidecar exist and the file's size and sha256 match the record.

    False (never an exception) for a missing file or sidecar, a garbled sidecar, or a file whose
    size or content differs: the caller rebuilds the cache.
    """
    path = Path(path)
    try:
        record = json.loads(sidecar_path(path).read_text())
        return (
            isinstance(record, dict)
            and path.stat().st_size == record.get("bytes")
            and sha256_file(path) == record.get("sha256")
        )
    except (OSError, ValueError):  # ValueError: JSON and UnicodeDecodeError
        return False


def cached_safetensors(
    path: str | Path,
    build: Callable[[], dict[str, Any]],
    what: str,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], bool]:
    """A content-addressed cache of tensors: -> (the tensors, whether they came from the cache).

    A cache file that passes `verified` is loaded (and handed to `check`, which raises when it
    does not fit); one that fails, or any error reading it, is rebuilt with a warning, never
    fatal. A cache that cannot be written (full or read-only disk) costs the next run a rebuild,
    with a warning. `what` names the cache in those warnings ("f", "judge").
    """
    import warnings

    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    path = Path(path)
    if verified(path):
        try:
            tensors = load_file(str(path))
            if check is not None:
                check(tensors)
            return tensors, True
        except (SafetensorError, OSError, RuntimeError, ValueError) as e:
            warnings.warn(f"cached {what} {path} is unusable ({e}); retraining", stacklevel=3)
    elif path.exists():
        warnings.warn(
            f"cached {what} {path} fails its sha256 check (truncated, damaged or no sidecar);"
            " retraining",
            stacklevel=3,
        )
    tensors = {k: v.contiguous() for k, v in build().items()}
    try:
        write_verified(path, lambda tmp: save_file(tensors, str(tmp)))
    except OSError as e:
        warnings.warn(f"could not cache {what} at {path} ({e}); continuing", stacklevel=3)
    return tensors, False
