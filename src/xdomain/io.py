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


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to fill a unique temporary file, then move it to `path` atomically."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide a shared cache from others
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_verified(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`atomic_write`, then record the file's sha256 and size in its sidecar (also atomic)."""
    path = Path(path)
    atomic_write(path, write)
    record = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    atomic_write_text(_sidecar(path), json.dumps(record))
    return path


def verified(path: str | Path) -> bool:
    """True when `path` and its sidecar exist and the file's size and sha256 match it."""
    path = Path(path)
    try:
        record = json.loads(_sidecar(path).read_text())
        return (
            isinstance(record, dict)
            and path.stat().st_size == record.get("bytes")
            and sha256_file(path) == record.get("sha256")
        )
    except (OSError, ValueError):
        return False
